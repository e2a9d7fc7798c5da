#pragma once
// ws:// and wss:// upstream URLs.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wsgate::proxy {

struct UpstreamUrl {
  bool tls = false;
  std::string host;         // without IPv6 brackets
  std::uint16_t port = 0;
  std::string path_prefix;  // "" when the URL path is "/" or empty
  std::string authority() const;  // host[:port] for the Host header and SNI
  std::string to_string() const;
};

// Returns nullopt and sets `error` for anything that is not ws:// or wss://
// with a host and an optional port and path (no query, no user info).
std::optional<UpstreamUrl> parse_upstream_url(std::string_view text, std::string& error);

// Upstream request target: the prefix joined with the client's target, so
// "/api" + "/ws?x=1" is "/api/ws?x=1".
std::string join_target(std::string_view prefix, std::string_view client_target);

}  // namespace wsgate::proxy
