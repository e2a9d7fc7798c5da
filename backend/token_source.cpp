#include "backend/token_source.hpp"

namespace wsgate::backend {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] + 32) : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] + 32) : b[i];
    if (x != y) return false;
  }
  return true;
}

}  // namespace

TokenSource extract_token(std::string_view authorization, std::string_view subprotocols) {
  TokenSource out;
  std::string_view protocol_token;
  while (!subprotocols.empty()) {
    auto comma = subprotocols.find(',');
    auto item = trim(subprotocols.substr(0, comma));
    if (item == kJwtAuthProtocol) out.offered_jwt_auth = true;
    if (item.size() > 4 && item.substr(0, 4) == "jwt." && protocol_token.empty())
      protocol_token = item.substr(4);
    if (comma == std::string_view::npos) break;
    subprotocols.remove_prefix(comma + 1);
  }
  authorization = trim(authorization);
  if (!authorization.empty()) {
    auto space = authorization.find(' ');
    auto token = space == std::string_view::npos ? std::string_view()
                                                 : trim(authorization.substr(space + 1));
    if (space != std::string_view::npos && iequals(authorization.substr(0, space), "Bearer") &&
        !token.empty()) {
      out.token = std::string(token);
      out.from = TokenSource::From::authorization;
      return out;
    }
    out.malformed_authorization = true;
  }
  if (!protocol_token.empty()) {
    out.token = std::string(protocol_token);
    out.from = TokenSource::From::subprotocol;
  }
  return out;
}

std::string_view token_source_name(TokenSource::From from) {
  switch (from) {
    case TokenSource::From::authorization:
      return "authorization";
    case TokenSource::From::subprotocol:
      return "subprotocol";
    case TokenSource::From::none:
      break;
  }
  return "none";
}

}  // namespace wsgate::backend
