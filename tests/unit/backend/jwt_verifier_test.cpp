// The RFC 8725 matrix: every way a token can lie, and the reason each one
// is refused with.
#include "backend/jwt_verifier.hpp"

#include <gtest/gtest.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <memory>
#include <nlohmann/json.hpp>

using namespace wsgate::backend;
using json = nlohmann::json;

namespace {

constexpr std::int64_t kNow = 1'700'000'000;
const std::string kSecret = "0123456789abcdef0123456789abcdef-test-secret";

std::string hmac_sha256(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

Pkey make_rsa() { return Pkey(EVP_RSA_gen(2048)); }

std::string public_pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  return pem;
}

std::string rsa_sha256(EVP_PKEY* key, const std::string& data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
  std::size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                 data.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(data.data()), data.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  return sig;
}

std::string signing_input(const std::string& header, const std::string& payload) {
  return base64url_encode(header) + "." + base64url_encode(payload);
}

std::string hs_token(const json& header, const json& payload, const std::string& key = kSecret) {
  auto input = signing_input(header.dump(), payload.dump());
  return input + "." + base64url_encode(hmac_sha256(key, input));
}

std::string rs_token(const json& header, const json& payload, EVP_PKEY* key) {
  auto input = signing_input(header.dump(), payload.dump());
  return input + "." + base64url_encode(rsa_sha256(key, input));
}

json claims(std::int64_t exp = kNow + 600) {
  return {{"sub", "staging-e2e-user-001"}, {"thread_id", "thread-1"}, {"exp", exp}};
}

const json kHs = {{"alg", "HS256"}, {"typ", "JWT"}};
const json kRs = {{"alg", "RS256"}, {"typ", "JWT"}};

JwtVerifier hs_verifier(std::string issuer = "", std::string audience = "",
                        std::chrono::seconds leeway = std::chrono::seconds(30)) {
  return JwtVerifier({JwtAlg::HS256, kSecret, std::move(issuer), std::move(audience), leeway});
}

std::optional<AuthFailure> hs_verify(const std::string& token) {
  return hs_verifier().verify(token, kNow).failure;
}

class RsaKeys : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    key_ = make_rsa().release();
    other_ = make_rsa().release();
    pem_ = public_pem(key_);
  }
  static void TearDownTestSuite() {
    EVP_PKEY_free(key_);
    EVP_PKEY_free(other_);
  }
  static JwtVerifier rs_verifier() { return JwtVerifier({JwtAlg::RS256, pem_, "", "", {}}); }
  static inline EVP_PKEY* key_ = nullptr;
  static inline EVP_PKEY* other_ = nullptr;
  static inline std::string pem_;
};

}  // namespace

TEST(JwtVerifier, ValidHs256TokenYieldsClaims) {
  auto r = hs_verifier().verify(hs_token(kHs, claims()), kNow);
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(r.claims.sub, "staging-e2e-user-001");
  EXPECT_EQ(r.claims.thread_id, "thread-1");
  EXPECT_FALSE(r.claims.thread_id_wrong_type);
}

TEST(JwtVerifier, ThreadIdOfWrongTypeIsFlagged) {
  auto c = claims();
  c["thread_id"] = 42;
  auto r = hs_verifier().verify(hs_token(kHs, c), kNow);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.claims.thread_id.has_value());
  EXPECT_TRUE(r.claims.thread_id_wrong_type);
}

TEST(JwtVerifier, AlgNoneIsRefusedInEverySpelling) {
  for (const char* alg : {"none", "None", "NONE", "nOnE"}) {
    auto input = signing_input(json{{"alg", alg}}.dump(), claims().dump());
    EXPECT_EQ(hs_verify(input + "."), AuthFailure::bad_alg) << alg;
    // ... also when a (meaningless) signature is attached.
    EXPECT_EQ(hs_verify(input + "." + base64url_encode("x")), AuthFailure::bad_alg) << alg;
  }
}

TEST(JwtVerifier, MissingOrNonStringAlgIsRefused) {
  EXPECT_EQ(hs_verify(hs_token(json{{"typ", "JWT"}}, claims())), AuthFailure::bad_alg);
  EXPECT_EQ(hs_verify(hs_token(json{{"alg", 256}}, claims())), AuthFailure::bad_alg);
  EXPECT_EQ(hs_verify(hs_token(json{{"alg", nullptr}}, claims())), AuthFailure::bad_alg);
}

TEST(JwtVerifier, OtherAlgorithmsAreRefusedEvenIfWellSigned) {
  for (const char* alg : {"HS384", "HS512", "ES256", "PS256", "hs256", "HS256 ", "foo"})
    EXPECT_EQ(hs_verify(hs_token(json{{"alg", alg}}, claims())), AuthFailure::bad_alg) << alg;
}

TEST_F(RsaKeys, ValidRs256TokenIsAccepted) {
  auto r = rs_verifier().verify(rs_token(kRs, claims(), key_), kNow);
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(r.claims.sub, "staging-e2e-user-001");
}

TEST_F(RsaKeys, Rs256SignedByAnotherKeyIsBadSignature) {
  EXPECT_EQ(rs_verifier().verify(rs_token(kRs, claims(), other_), kNow).failure,
            AuthFailure::bad_signature);
}

// The classic confusion: an RS256 verifier, a token claiming HS256 and
// "signed" with the public key PEM as the HMAC secret.
TEST_F(RsaKeys, HsTokenMacedWithThePublicKeyIsRefused) {
  auto forged = hs_token(kHs, claims(), pem_);
  EXPECT_EQ(rs_verifier().verify(forged, kNow).failure, AuthFailure::bad_alg);
}

// Why the header is checked before the library: libjwt 1.10 trusts the
// token's alg and would accept the forgery above on its own.
TEST_F(RsaKeys, LibjwtAloneWouldAcceptTheConfusion) {
  auto forged = hs_token(kHs, claims(), pem_);
  jwt_t* raw = nullptr;
  int rc = jwt_decode(&raw, forged.c_str(), reinterpret_cast<const unsigned char*>(pem_.data()),
                      static_cast<int>(pem_.size()));
  jwt_free(raw);
  EXPECT_EQ(rc, 0) << "libjwt no longer accepts alg confusion; the pre-check is still required";
}

TEST_F(RsaKeys, HsVerifierRefusesRs256Token) {
  EXPECT_EQ(hs_verify(rs_token(kRs, claims(), key_)), AuthFailure::bad_alg);
}

TEST(JwtVerifier, WrongSecretOrTamperedPayloadIsBadSignature) {
  EXPECT_EQ(hs_verify(hs_token(kHs, claims(), "another-secret-another-secret-0123")),
            AuthFailure::bad_signature);
  auto token = hs_token(kHs, claims());
  auto dot1 = token.find('.');
  auto dot2 = token.find('.', dot1 + 1);
  auto c = claims();
  c["sub"] = "admin";
  auto tampered = token.substr(0, dot1 + 1) + base64url_encode(c.dump()) + token.substr(dot2);
  EXPECT_EQ(hs_verify(tampered), AuthFailure::bad_signature);
  // Signature stripped.
  EXPECT_EQ(hs_verify(token.substr(0, dot2 + 1)), AuthFailure::bad_signature);
}

TEST(JwtVerifier, ExpiryHonoursLeewayExactly) {
  auto v = hs_verifier("", "", std::chrono::seconds(30));
  EXPECT_TRUE(v.verify(hs_token(kHs, claims(kNow + 1)), kNow).ok());
  EXPECT_TRUE(v.verify(hs_token(kHs, claims(kNow - 29)), kNow).ok());  // inside leeway
  EXPECT_EQ(v.verify(hs_token(kHs, claims(kNow - 30)), kNow).failure, AuthFailure::expired);
  EXPECT_EQ(v.verify(hs_token(kHs, claims(kNow - 3600)), kNow).failure, AuthFailure::expired);
}

TEST(JwtVerifier, LeewayIsCappedAtSixtySeconds) {
  auto v = hs_verifier("", "", std::chrono::seconds(3600));
  EXPECT_EQ(v.config().leeway, std::chrono::seconds(60));
  EXPECT_TRUE(v.verify(hs_token(kHs, claims(kNow - 59)), kNow).ok());
  EXPECT_EQ(v.verify(hs_token(kHs, claims(kNow - 61)), kNow).failure, AuthFailure::expired);
}

TEST(JwtVerifier, NotBeforeInTheFutureIsRefused) {
  auto v = hs_verifier("", "", std::chrono::seconds(30));
  auto c = claims();
  c["nbf"] = kNow + 30;  // at the edge of the leeway: accepted
  EXPECT_TRUE(v.verify(hs_token(kHs, c), kNow).ok());
  c["nbf"] = kNow + 31;
  EXPECT_EQ(v.verify(hs_token(kHs, c), kNow).failure, AuthFailure::not_yet_valid);
}

TEST(JwtVerifier, ExpIsRequiredAndMustBeANumber) {
  auto c = claims();
  c.erase("exp");
  EXPECT_EQ(hs_verify(hs_token(kHs, c)), AuthFailure::missing_exp);
  c["exp"] = "tomorrow";
  EXPECT_EQ(hs_verify(hs_token(kHs, c)), AuthFailure::malformed);
}

TEST(JwtVerifier, IssuerIsCheckedWhenConfigured) {
  auto v = hs_verifier("https://auth.example", "");
  auto c = claims();
  EXPECT_EQ(v.verify(hs_token(kHs, c), kNow).failure, AuthFailure::bad_issuer);
  c["iss"] = "https://evil.example";
  EXPECT_EQ(v.verify(hs_token(kHs, c), kNow).failure, AuthFailure::bad_issuer);
  c["iss"] = "https://auth.example";
  EXPECT_TRUE(v.verify(hs_token(kHs, c), kNow).ok());
  // Not configured: not checked.
  c["iss"] = "anyone";
  EXPECT_TRUE(hs_verifier().verify(hs_token(kHs, c), kNow).ok());
}

TEST(JwtVerifier, AudienceMayBeStringOrArray) {
  auto v = hs_verifier("", "wsgate");
  auto c = claims();
  EXPECT_EQ(v.verify(hs_token(kHs, c), kNow).failure, AuthFailure::bad_audience);
  c["aud"] = "other";
  EXPECT_EQ(v.verify(hs_token(kHs, c), kNow).failure, AuthFailure::bad_audience);
  c["aud"] = json::array({"other", "also-other"});
  EXPECT_EQ(v.verify(hs_token(kHs, c), kNow).failure, AuthFailure::bad_audience);
  c["aud"] = "wsgate";
  EXPECT_TRUE(v.verify(hs_token(kHs, c), kNow).ok());
  c["aud"] = json::array({"other", "wsgate"});
  EXPECT_TRUE(v.verify(hs_token(kHs, c), kNow).ok());
}

TEST(JwtVerifier, SubIsRequiredNonEmptyString) {
  auto c = claims();
  c.erase("sub");
  EXPECT_EQ(hs_verify(hs_token(kHs, c)), AuthFailure::missing_sub);
  c["sub"] = "";
  EXPECT_EQ(hs_verify(hs_token(kHs, c)), AuthFailure::missing_sub);
  c["sub"] = 12345;
  EXPECT_EQ(hs_verify(hs_token(kHs, c)), AuthFailure::missing_sub);
}

TEST(JwtVerifier, MalformedSegmentsAreRefused) {
  auto good = hs_token(kHs, claims());
  EXPECT_EQ(hs_verify(""), AuthFailure::missing_token);
  EXPECT_EQ(hs_verify("abc"), AuthFailure::malformed);
  EXPECT_EQ(hs_verify("a.b"), AuthFailure::malformed);
  EXPECT_EQ(hs_verify(good + ".extra"), AuthFailure::malformed);
  EXPECT_EQ(hs_verify("." + good.substr(good.find('.') + 1)), AuthFailure::malformed);
  EXPECT_EQ(hs_verify("e30=.e30.c2ln"), AuthFailure::malformed);  // padding
  EXPECT_EQ(hs_verify("e3+/.e30.c2ln"), AuthFailure::malformed);  // base64, not base64url
  EXPECT_EQ(hs_verify(base64url_encode("not json") + ".e30.c2ln"), AuthFailure::malformed);
  EXPECT_EQ(hs_verify(base64url_encode("[1,2]") + ".e30.c2ln"), AuthFailure::malformed);
  auto input = signing_input(kHs.dump(), "[\"array\"]");
  EXPECT_EQ(hs_verify(input + "." + base64url_encode(hmac_sha256(kSecret, input))),
            AuthFailure::malformed);
  EXPECT_EQ(hs_verify(std::string(kMaxTokenBytes + 1, 'a')), AuthFailure::malformed);
}

TEST(JwtVerifier, DuplicateHeaderMembersAreRefused) {
  std::string header = R"({"alg":"HS256","alg":"none"})";
  auto input = signing_input(header, claims().dump());
  EXPECT_EQ(hs_verify(input + "." + base64url_encode(hmac_sha256(kSecret, input))),
            AuthFailure::malformed);
}

TEST(JwtVerifier, KidNeverSelectsAKey) {
  // A path-traversal kid changes nothing: the one configured key verifies.
  json header = {{"alg", "HS256"}, {"kid", "../../../../dev/null"}};
  EXPECT_FALSE(hs_verify(hs_token(header, claims())).has_value());
  // An empty HMAC key ("the contents of /dev/null") does not work.
  EXPECT_EQ(hs_verify(hs_token(header, claims(), "")), AuthFailure::bad_signature);
  header["kid"] = json{{"inject", true}};
  EXPECT_EQ(hs_verify(hs_token(header, claims())), AuthFailure::bad_header);
}

TEST(JwtVerifier, CritAndEmbeddedKeysAreRefused) {
  EXPECT_EQ(hs_verify(hs_token({{"alg", "HS256"}, {"crit", {"exp"}}, {"exp", 1}}, claims())),
            AuthFailure::bad_header);
  for (const char* h : {"jwk", "jku", "x5u", "x5c"})
    EXPECT_EQ(hs_verify(hs_token({{"alg", "HS256"}, {h, "https://evil.example/key"}}, claims())),
              AuthFailure::bad_header)
        << h;
}

TEST(JwtVerifier, MintedTokenRoundTrips) {
  MintOptions m;
  m.sub = "staging-e2e-user-001";
  m.thread_id = "t-9";
  m.ttl_seconds = 120;
  m.issuer = "iss-a";
  m.audience = "aud-b";
  auto token = mint_hs256(kSecret, m, kNow);
  auto r = hs_verifier("iss-a", "aud-b").verify(token, kNow);
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(r.claims.sub, "staging-e2e-user-001");
  EXPECT_EQ(r.claims.thread_id, "t-9");
  EXPECT_EQ(hs_verifier().verify(token, kNow + 120 + 30).failure, AuthFailure::expired);
  m.ttl_seconds = -100;
  EXPECT_EQ(hs_verifier().verify(mint_hs256(kSecret, m, kNow), kNow).failure, AuthFailure::expired);
}

TEST(Base64Url, RoundTripsAndRejectsNonCanonical) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00\x01"}) {
    auto back = base64url_decode(base64url_encode(s));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_FALSE(base64url_decode("Zm9=").has_value());
  EXPECT_FALSE(base64url_decode("A").has_value());
  EXPECT_FALSE(base64url_decode("Zh").has_value());  // non-zero trailing bits
}
