// libFuzzer target: the backend's JWT verifier (backend/jwt_verifier.hpp).
// Input: one selector byte (which verifier), then the token.
//   sel % 3 == 0: HS256, fixed secret
//   sel % 3 == 1: HS256, fixed secret, issuer and audience required
//   sel % 3 == 2: RS256, the fixed public key below (private half in
//                 tests/fuzz/keys/, used only to sign seeds)
// Time is fixed (kNow) so seeds stay valid forever.
// Invariants: never crashes; a refusal names a reason; an accepted token
// has three segments, a header whose alg is the configured one, a signature
// that an independent OpenSSL check (HMAC-SHA256 / RSASSA-PKCS1-v1_5 SHA-256
// over "header.payload") accepts -- i.e. it was signed with our key -- and a
// non-empty sub.

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "backend/jwt_verifier.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace wsgate::backend;

namespace {

constexpr std::int64_t kNow = 1700000000;
const std::string kSecret = "fuzz-secret-0123456789abcdef0123456789";
const char* const kPublicPem = R"PEM(-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEApQ2n9vfCd2ESvc96z0JU
LCAIS8ToSZxRdAiaAhyUhVDEHqph/S7vqQu15PcONLnzDk2KNs/Xvzg7igMy8gkS
w/bDddqhwxOr2ovsYNX/jQqryPKZLXgESCxFCyrfMsd8jRaP8OhQpqyuBRK43E6Q
kKdmmCGs+8v6vnmJD4XkHn0FzuZ6X7XTTFOgpz5zDz5c9u3BqobQgjSwJdK44AL4
bMirwlCKHsApd7dQyv8qvXAbvAc4WAzdEKdZwKJn9hauoAFDSPuZP/E6Fei3lNsP
aqiqCZYYI1mIjQNs50I9l2vgra3dDT1dgbJ3HDsRoRGhmU9ndZYMhvkS+d/lNXDM
3wIDAQAB
-----END PUBLIC KEY-----
)PEM";

// Strict base64url (RFC 7515 2): alphabet only, no padding; independent of
// the verifier's own decoder.
std::optional<std::string> b64url(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
  };
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = val(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

bool hmac_ok(std::string_view signing_input, const std::string& sig) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac, &len);
  return sig.size() == len && std::memcmp(sig.data(), mac, len) == 0;
}

bool rsa_ok(std::string_view signing_input, const std::string& sig) {
  static EVP_PKEY* key = [] {
    BIO* bio = BIO_new_mem_buf(kPublicPem, -1);
    EVP_PKEY* k = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    return k;
  }();
  FUZZ_CHECK(key != nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(signing_input.data()),
                             signing_input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

const JwtVerifier& verifier(int which) {
  static const JwtVerifier hs{JwtConfig{JwtAlg::HS256, kSecret, "", "", std::chrono::seconds(30)}};
  static const JwtVerifier hs_iss{
      JwtConfig{JwtAlg::HS256, kSecret, "wsgate-issuer", "wsgate-backend", std::chrono::seconds(30)}};
  static const JwtVerifier rs{JwtConfig{JwtAlg::RS256, kPublicPem, "", "", std::chrono::seconds(30)}};
  return which == 0 ? hs : which == 1 ? hs_iss : rs;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int which = data[0] % 3;
  const std::string_view token(reinterpret_cast<const char*>(data + 1), size - 1);
  const VerifyResult r = verifier(which).verify(token, kNow);
  if (!r.ok()) {
    FUZZ_CHECK(r.failure.has_value());
    // The detail goes to logs: it must never carry a token back out (only
    // checked for token-shaped inputs: short ones may be a substring of a
    // fixed message such as "not three segments").
    if (token.size() >= 24 && std::count(token.begin(), token.end(), '.') == 2)
      FUZZ_CHECK(r.detail.find(token) == std::string::npos);
    return 0;
  }
  // Accepted: it must be a token we signed.
  FUZZ_CHECK(token.size() <= kMaxTokenBytes);
  const auto d1 = token.find('.');
  FUZZ_CHECK(d1 != std::string_view::npos);
  const auto d2 = token.find('.', d1 + 1);
  FUZZ_CHECK(d2 != std::string_view::npos);
  FUZZ_CHECK(token.find('.', d2 + 1) == std::string_view::npos);
  const std::string_view signing_input = token.substr(0, d2);
  const auto header = b64url(token.substr(0, d1));
  FUZZ_CHECK(header.has_value());
  const std::string alg = which == 2 ? "\"RS256\"" : "\"HS256\"";
  FUZZ_CHECK(header->find(alg) != std::string::npos);
  auto sig = b64url(token.substr(d2 + 1));
  if (!sig) {
    // Not strict base64url (padding, '+' or '/'): malleable but still ours
    // only if the leniently decoded bytes verify.
    std::string s(token.substr(d2 + 1));
    while (!s.empty() && s.back() == '=') s.pop_back();
    for (char& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
    sig = b64url(s);
    FUZZ_CHECK(sig.has_value());
  }
  FUZZ_CHECK(which == 2 ? rsa_ok(signing_input, *sig) : hmac_ok(signing_input, *sig));
  FUZZ_CHECK(!r.claims.sub.empty());
  return 0;
}
