#pragma once
// JWT verification (RFC 7519) hardened per RFC 8725: one algorithm per
// configured key, checked on our own parse of the header BEFORE libjwt sees
// the token; no embedded keys, no `crit`; signature by libjwt; then
// exp/nbf (bounded leeway), iss/aud when configured, and a non-empty sub.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wsgate::backend {

enum class JwtAlg { HS256, RS256 };
std::string_view jwt_alg_name(JwtAlg alg);

// Why a token was refused: the `reason` of the 401 body and the metric label.
enum class AuthFailure {
  missing_token,
  malformed,
  bad_alg,
  bad_header,
  bad_signature,
  expired,
  not_yet_valid,
  missing_exp,
  bad_issuer,
  bad_audience,
  missing_sub,
};
inline constexpr AuthFailure kAllAuthFailures[] = {
    AuthFailure::missing_token, AuthFailure::malformed,     AuthFailure::bad_alg,
    AuthFailure::bad_header,    AuthFailure::bad_signature, AuthFailure::expired,
    AuthFailure::not_yet_valid, AuthFailure::missing_exp,   AuthFailure::bad_issuer,
    AuthFailure::bad_audience,  AuthFailure::missing_sub};
std::string_view auth_failure_name(AuthFailure f);

inline constexpr std::chrono::seconds kMaxLeeway{60};
inline constexpr std::size_t kMaxTokenBytes = 8192;

struct JwtConfig {
  JwtAlg alg = JwtAlg::HS256;
  std::string key;                  // HS256: the secret bytes; RS256: the public key PEM
  std::string issuer;               // empty: not checked
  std::string audience;             // empty: not checked
  std::chrono::seconds leeway{30};  // clamped to kMaxLeeway
};

struct VerifiedClaims {
  std::string sub;
  std::optional<std::string> thread_id;
  bool thread_id_wrong_type = false;
};

struct VerifyResult {
  std::optional<AuthFailure> failure;  // nullopt: verified
  std::string detail;                  // for logs and traces; never the token
  VerifiedClaims claims;
  bool ok() const { return !failure; }
};

class JwtVerifier {
 public:
  explicit JwtVerifier(JwtConfig config);
  // `now`: Unix seconds.
  VerifyResult verify(std::string_view token, std::int64_t now) const;
  VerifyResult verify(std::string_view token) const;
  const JwtConfig& config() const { return config_; }

 private:
  JwtConfig config_;
};

// base64url without padding (RFC 7515 section 2); nullopt on any other byte.
std::optional<std::string> base64url_decode(std::string_view in);
std::string base64url_encode(std::string_view in);

struct MintOptions {
  std::string sub;
  std::string thread_id;  // empty: no claim
  std::int64_t ttl_seconds = 3600;
  std::string issuer;
  std::string audience;
};
// An HS256 token (libjwt). Throws std::runtime_error when libjwt fails.
std::string mint_hs256(const std::string& secret, const MintOptions& options, std::int64_t now);

}  // namespace wsgate::backend
