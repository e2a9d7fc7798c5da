#pragma once
// Where a client's token comes from: `Authorization: Bearer <jwt>`, or the
// subprotocol pair `jwt-auth, jwt.<jwt>` (browsers cannot set headers). The
// server then selects `jwt-auth` and never echoes the `jwt.` entry.
#include <string>
#include <string_view>

namespace wsgate::backend {

inline constexpr std::string_view kJwtAuthProtocol = "jwt-auth";

struct TokenSource {
  enum class From { none, authorization, subprotocol };
  std::string token;
  From from = From::none;
  bool offered_jwt_auth = false;         // the client listed "jwt-auth"
  bool malformed_authorization = false;  // Authorization present but not "Bearer <token>"
};

// `subprotocols`: every Sec-WebSocket-Protocol value, joined with ','.
// Authorization wins over the subprotocol when both carry a token.
TokenSource extract_token(std::string_view authorization, std::string_view subprotocols);

std::string_view token_source_name(TokenSource::From from);

}  // namespace wsgate::backend
