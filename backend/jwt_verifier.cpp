#include "backend/jwt_verifier.hpp"

#include <jwt.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace wsgate::backend {
namespace {

using json = nlohmann::json;

VerifyResult fail(AuthFailure f, std::string detail) {
  VerifyResult r;
  r.failure = f;
  r.detail = std::move(detail);
  return r;
}

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// Parses a JSON object, refusing duplicate member names at any depth: two
// parsers that disagree on {"alg":"HS256","alg":"none"} must never meet.
std::optional<json> parse_object_strict(const std::string& text) {
  bool duplicate = false;
  std::vector<std::vector<std::string>> seen;
  auto callback = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        seen.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!seen.empty()) seen.pop_back();
        break;
      case json::parse_event_t::key: {
        auto key = parsed.get<std::string>();
        auto& keys = seen.back();
        if (std::find(keys.begin(), keys.end(), key) != keys.end()) duplicate = true;
        keys.push_back(std::move(key));
        break;
      }
      default:
        break;
    }
    return true;
  };
  json j = json::parse(text, callback, /*allow_exceptions=*/false);
  if (duplicate || j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

// A NumericDate (RFC 7519 section 2): a JSON number.
std::optional<double> numeric_date(const json& claims, const char* name, bool& wrong_type) {
  auto it = claims.find(name);
  if (it == claims.end()) return std::nullopt;
  if (!it->is_number()) {
    wrong_type = true;
    return std::nullopt;
  }
  return it->get<double>();
}

struct JwtDeleter {
  void operator()(jwt_t* j) const { jwt_free(j); }
};

}  // namespace

std::string_view jwt_alg_name(JwtAlg alg) { return alg == JwtAlg::HS256 ? "HS256" : "RS256"; }

std::string_view auth_failure_name(AuthFailure f) {
  switch (f) {
    case AuthFailure::missing_token:
      return "missing_token";
    case AuthFailure::malformed:
      return "malformed";
    case AuthFailure::bad_alg:
      return "bad_alg";
    case AuthFailure::bad_header:
      return "bad_header";
    case AuthFailure::bad_signature:
      return "bad_signature";
    case AuthFailure::expired:
      return "expired";
    case AuthFailure::not_yet_valid:
      return "not_yet_valid";
    case AuthFailure::missing_exp:
      return "missing_exp";
    case AuthFailure::bad_issuer:
      return "bad_issuer";
    case AuthFailure::bad_audience:
      return "bad_audience";
    case AuthFailure::missing_sub:
      return "missing_sub";
  }
  return "unknown";
}

std::optional<std::string> base64url_decode(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = b64_value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Leftover bits must be zero (canonical encoding).
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string base64url_encode(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 0x3f]);
  return out;
}

JwtVerifier::JwtVerifier(JwtConfig config) : config_(std::move(config)) {
  config_.leeway = std::clamp(config_.leeway, std::chrono::seconds(0), kMaxLeeway);
  if (config_.key.empty()) throw std::invalid_argument("JWT key is empty");
}

VerifyResult JwtVerifier::verify(std::string_view token) const {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  return verify(token, now);
}

VerifyResult JwtVerifier::verify(std::string_view token, std::int64_t now) const {
  if (token.empty()) return fail(AuthFailure::missing_token, "no token");
  if (token.size() > kMaxTokenBytes) return fail(AuthFailure::malformed, "token too long");

  // 1. Shape: exactly three base64url segments, none empty (no unsecured JWS).
  auto dot1 = token.find('.');
  auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return fail(AuthFailure::malformed, "not three segments");
  auto header_b64 = token.substr(0, dot1);
  auto payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  auto signature_b64 = token.substr(dot2 + 1);
  if (header_b64.empty() || payload_b64.empty())
    return fail(AuthFailure::malformed, "empty segment");
  auto header_text = base64url_decode(header_b64);
  auto payload_text = base64url_decode(payload_b64);
  auto signature = base64url_decode(signature_b64);
  if (!header_text || !payload_text || !signature)
    return fail(AuthFailure::malformed, "segment is not base64url");

  // 2. Header, parsed by us, before any library decides anything.
  auto header = parse_object_strict(*header_text);
  if (!header) return fail(AuthFailure::malformed, "header is not a JSON object");
  auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string())
    return fail(AuthFailure::bad_alg, "header has no alg");
  if (alg->get<std::string>() != jwt_alg_name(config_.alg))
    return fail(AuthFailure::bad_alg, "alg is not " + std::string(jwt_alg_name(config_.alg)));
  if (header->contains("crit"))
    return fail(AuthFailure::bad_header, "crit header: no extensions are understood");
  for (const char* embedded : {"jwk", "jku", "x5u", "x5c"})
    if (header->contains(embedded))
      return fail(AuthFailure::bad_header,
                  std::string("header carries a key reference: ") + embedded);
  // kid is never used to find a key (there is one key); it only has to be a string.
  if (auto kid = header->find("kid"); kid != header->end() && !kid->is_string())
    return fail(AuthFailure::bad_header, "kid is not a string");
  if (signature->empty()) return fail(AuthFailure::bad_signature, "empty signature");

  auto claims = parse_object_strict(*payload_text);
  if (!claims) return fail(AuthFailure::malformed, "payload is not a JSON object");

  // 3. Signature, by libjwt, with the one key and the alg already pinned.
  std::string token_z(token);
  jwt_t* raw = nullptr;
  int rc =
      jwt_decode(&raw, token_z.c_str(), reinterpret_cast<const unsigned char*>(config_.key.data()),
                 static_cast<int>(config_.key.size()));
  std::unique_ptr<jwt_t, JwtDeleter> decoded(raw);
  if (rc != 0 || !decoded) return fail(AuthFailure::bad_signature, "signature check failed");
  jwt_alg_t expected = config_.alg == JwtAlg::HS256 ? JWT_ALG_HS256 : JWT_ALG_RS256;
  if (jwt_get_alg(decoded.get()) != expected)
    return fail(AuthFailure::bad_alg, "library saw a different alg");

  // 4. Claims.
  const std::int64_t leeway = config_.leeway.count();
  bool wrong_type = false;
  auto exp = numeric_date(*claims, "exp", wrong_type);
  auto nbf = numeric_date(*claims, "nbf", wrong_type);
  if (wrong_type) return fail(AuthFailure::malformed, "exp or nbf is not a number");
  if (!exp) return fail(AuthFailure::missing_exp, "no exp claim");
  if (static_cast<double>(now) >= *exp + static_cast<double>(leeway))
    return fail(AuthFailure::expired, "token expired");
  if (nbf && static_cast<double>(now) + static_cast<double>(leeway) < *nbf)
    return fail(AuthFailure::not_yet_valid, "token not valid yet (nbf)");
  if (!config_.issuer.empty()) {
    auto iss = claims->find("iss");
    if (iss == claims->end() || !iss->is_string() || iss->get<std::string>() != config_.issuer)
      return fail(AuthFailure::bad_issuer, "issuer mismatch");
  }
  if (!config_.audience.empty()) {
    auto aud = claims->find("aud");
    bool match = false;
    if (aud != claims->end() && aud->is_string()) {
      match = aud->get<std::string>() == config_.audience;
    } else if (aud != claims->end() && aud->is_array()) {
      for (const auto& a : *aud)
        if (a.is_string() && a.get<std::string>() == config_.audience) match = true;
    }
    if (!match) return fail(AuthFailure::bad_audience, "audience mismatch");
  }
  auto sub = claims->find("sub");
  if (sub == claims->end() || !sub->is_string() || sub->get<std::string>().empty())
    return fail(AuthFailure::missing_sub, "no sub claim");

  VerifyResult r;
  r.detail = "verified " + std::string(jwt_alg_name(config_.alg));
  r.claims.sub = sub->get<std::string>();
  if (auto tid = claims->find("thread_id"); tid != claims->end()) {
    if (tid->is_string())
      r.claims.thread_id = tid->get<std::string>();
    else
      r.claims.thread_id_wrong_type = true;
  }
  return r;
}

std::string mint_hs256(const std::string& secret, const MintOptions& options, std::int64_t now) {
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) throw std::runtime_error("jwt_new failed");
  std::unique_ptr<jwt_t, JwtDeleter> token(raw);
  auto check = [](int rc, const char* what) {
    if (rc != 0) throw std::runtime_error(std::string("libjwt: ") + what + " failed");
  };
  check(jwt_add_grant(token.get(), "sub", options.sub.c_str()), "sub");
  if (!options.thread_id.empty())
    check(jwt_add_grant(token.get(), "thread_id", options.thread_id.c_str()), "thread_id");
  if (!options.issuer.empty())
    check(jwt_add_grant(token.get(), "iss", options.issuer.c_str()), "iss");
  if (!options.audience.empty())
    check(jwt_add_grant(token.get(), "aud", options.audience.c_str()), "aud");
  check(jwt_add_grant_int(token.get(), "iat", static_cast<long>(now)), "iat");
  check(jwt_add_grant_int(token.get(), "exp", static_cast<long>(now + options.ttl_seconds)), "exp");
  check(
      jwt_set_alg(token.get(), JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(secret.data()),
                  static_cast<int>(secret.size())),
      "set_alg");
  char* encoded = jwt_encode_str(token.get());
  if (!encoded) throw std::runtime_error("libjwt: encode failed");
  std::string out(encoded);
  std::free(encoded);
  return out;
}

}  // namespace wsgate::backend
