#include "common/endpoint.hpp"

#include <boost/asio/io_context.hpp>
#include <charconv>

namespace wsgate {

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::string host_port_error(std::string_view text) {
  std::string_view host, port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return "expected [IPv6]:PORT, got '" + std::string(text) + "'";
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
      return "expected HOST:PORT, got '" + std::string(text) + "'";
    host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos)
      return "expected HOST:PORT (IPv6 in brackets), got '" + std::string(text) + "'";
    port_text = text.substr(colon + 1);
  }
  if (port_text.empty() || port_text.find_first_not_of("0123456789") != std::string_view::npos)
    return "expected a numeric port in '" + std::string(text) + "'";
  unsigned long value = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || value > 65535)
    return "port " + std::string(port_text) + " is out of range 0..65535";
  return {};
}

std::optional<HostPort> parse_host_port(std::string_view text) {
  if (!host_port_error(text).empty()) return std::nullopt;
  HostPort out;
  std::string_view port_text;
  if (text.front() == '[') {
    auto close = text.find(']');
    out.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    out.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  if (out.host.empty()) out.host = "0.0.0.0";
  unsigned value = 0;
  std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  out.port = static_cast<std::uint16_t>(value);
  return out;
}

boost::asio::ip::tcp::endpoint resolve_listen(const HostPort& where, std::string_view flag) {
  using tcp = boost::asio::ip::tcp;
  boost::asio::io_context ioc;
  tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  auto results =
      resolver.resolve(where.host, std::to_string(where.port), tcp::resolver::passive, ec);
  if (ec || results.empty())
    throw ListenError("cannot resolve '" + where.host + "' (" + std::string(flag) +
                      "): " + (ec ? ec.message() : std::string("no address")));
  return results.begin()->endpoint();
}

}  // namespace wsgate
