#pragma once
// HOST:PORT parsing shared by every flag that names a socket address.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wsgate {

struct HostPort {
  std::string host;  // without IPv6 brackets
  std::uint16_t port = 0;
  std::string to_string() const;  // brackets IPv6 literals again
};

// Accepts "host:port", "[v6]:port" and ":port" (host 0.0.0.0). Port 0 is
// allowed (bind to any free port). Returns nullopt on anything else.
std::optional<HostPort> parse_host_port(std::string_view text);

}  // namespace wsgate
