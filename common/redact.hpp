#pragma once
// Secret scrubbing for everything that leaves the process: log lines (both
// formats), /connections, incident records and error bodies. One rule set,
// so an output cannot be stricter or looser than another.
//
// By shape, anywhere in the text (also when percent-encoded, e.g. "%2E" dots,
// "%65yJ", "Bearer%20"):
//   - "Bearer <token>" (space, "%20" or "+" after the scheme);
//   - JWTs: "eyJ" + base64url, at least two dots;
//   - "jwt.<value>" subprotocols when the value is token-shaped (so
//     "jwt.sub", "jwt.exp" and "auth.verify_jwt" survive);
//   - opaque tokens: runs of >= 32 [A-Za-z0-9_-] mixing letters and digits
//     with short same-class runs (random, not words).
// By key, in query strings ("?k=v", "&k=v", also inside an encoded query):
//   token, access_token, api_key, password, session, sig, code, ... and any key
//   ending in _token, _secret, _key, _password, _signature.
//
// Kept on purpose: runs made only of hex digits and dashes (correlation IDs,
// W3C trace and span IDs, UUIDs, digests). They are the join keys between
// logs, incidents and traces; a hex-only secret is caught by its key instead.
#include <cstddef>
#include <string>
#include <string_view>

namespace wsgate {

inline constexpr std::string_view kRedacted = "[REDACTED]";

// Replaces every secret-looking span in `text` in place. Returns how many
// spans were replaced.
std::size_t redact_secrets(std::string& text);
std::string redacted(std::string_view text);

// The first bytes of a longer text, redacted. When `cut`, the run of
// value characters that reaches the cut is dropped first: a secret cut
// short (a JWT before its second dot, half a query value) no longer has
// the shape the rules look for, so no part of it may be shown.
std::string redacted_prefix(std::string_view text, bool cut);

// A request target as it may be shown: the path (scrubbed by shape) and the
// query with each secret-keyed value replaced and every other value scrubbed
// by shape. Keys are compared percent-decoded and case-insensitively.
std::string redact_target(std::string_view target);

// Whether a (decoded) query or form key names a credential.
bool is_secret_key(std::string_view key);

}  // namespace wsgate
