#pragma once
// HOST:PORT parsing shared by every flag that names a socket address, and
// the start-up errors of the sockets those flags open.
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/system_error.hpp>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace wsgate {

struct HostPort {
  std::string host;  // without IPv6 brackets
  std::uint16_t port = 0;
  std::string to_string() const;  // brackets IPv6 literals again
};

// Accepts "host:port", "[v6]:port" and ":port" (host 0.0.0.0). Port 0 is
// allowed (bind to any free port). Returns nullopt on anything else.
std::optional<HostPort> parse_host_port(std::string_view text);

// Why `text` is not a HOST:PORT ("port 70000 is out of range 0..65535"),
// empty when it is one.
std::string host_port_error(std::string_view text);

// A listening socket that could not be set up at start. The message names
// the address and the flag it came from, with the system's reason only (no
// library source location): "cannot listen on 127.0.0.1:8443 (--listen):
// Address already in use".
class ListenError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Resolves `where` for binding (numeric or a name); throws ListenError
// naming `flag` when it cannot.
boost::asio::ip::tcp::endpoint resolve_listen(const HostPort& where, std::string_view flag);

// Runs `open`, which binds and listens on `where`; a system_error from it
// becomes a ListenError naming `flag` and `where`.
template <class Open>
decltype(auto) listen_on(const HostPort& where, std::string_view flag, Open&& open) {
  try {
    return std::forward<Open>(open)();
  } catch (const boost::system::system_error& e) {
    throw ListenError("cannot listen on " + where.to_string() + " (" + std::string(flag) +
                      "): " + e.code().message());
  }
}

}  // namespace wsgate
