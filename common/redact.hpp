#pragma once
// Secret scrubbing shared by logs and incident records: bearer tokens, JWTs
// (three base64url segments starting "eyJ") and jwt.* subprotocol values
// never leave the process in clear.
#include <string>
#include <string_view>

namespace wsgate {

inline constexpr std::string_view kRedacted = "[REDACTED]";

// Replaces every secret-looking span in `text` in place. Returns how many
// spans were replaced.
std::size_t redact_secrets(std::string& text);
std::string redacted(std::string_view text);

}  // namespace wsgate
