#include "proxy/upstream_url.hpp"

#include <charconv>

namespace wsgate::proxy {

std::string UpstreamUrl::authority() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  bool default_port = (tls && port == 443) || (!tls && port == 80);
  return default_port ? h : h + ":" + std::to_string(port);
}

std::string UpstreamUrl::to_string() const {
  return std::string(tls ? "wss://" : "ws://") + authority() + (path_prefix.empty() ? "/" : path_prefix);
}

std::optional<UpstreamUrl> parse_upstream_url(std::string_view text, std::string& error) {
  UpstreamUrl url;
  if (text.starts_with("ws://")) {
    text.remove_prefix(5);
  } else if (text.starts_with("wss://")) {
    url.tls = true;
    text.remove_prefix(6);
  } else {
    error = "upstream URL must start with ws:// or wss://";
    return std::nullopt;
  }
  auto slash = text.find('/');
  std::string_view authority = text.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : text.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    error = "upstream URL must not carry user info";
    return std::nullopt;
  }
  if (path.find_first_of("?#") != std::string_view::npos) {
    error = "upstream URL must not carry a query or fragment";
    return std::nullopt;
  }
  std::string_view port_text;
  if (authority.starts_with("[")) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "upstream URL has an unterminated IPv6 literal";
      return std::nullopt;
    }
    url.host = std::string(authority.substr(1, close - 1));
    auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        error = "upstream URL has junk after the IPv6 literal";
        return std::nullopt;
      }
      port_text = rest.substr(1);
    }
  } else {
    auto colon = authority.find(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (url.host.empty()) {
    error = "upstream URL has no host";
    return std::nullopt;
  }
  url.port = url.tls ? 443 : 80;
  if (!port_text.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || value == 0 ||
        value > 65535) {
      error = "upstream URL has an invalid port";
      return std::nullopt;
    }
    url.port = static_cast<std::uint16_t>(value);
  }
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (path != "/") url.path_prefix = std::string(path);
  return url;
}

std::string join_target(std::string_view prefix, std::string_view client_target) {
  // Literal concatenation: "/api" + "/ws?x=1" is "/api/ws?x=1".
  std::string out(prefix);
  out += client_target;
  return out;
}

}  // namespace wsgate::proxy
