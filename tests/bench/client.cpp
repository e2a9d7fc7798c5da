#include "tests/bench/client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/stream_traits.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/resource.h>

#include <stdexcept>

#include "common/tls.hpp"

namespace wsgate::bench {

Url parse_url(const std::string& text) {
  Url url;
  std::string rest;
  if (text.rfind("ws://", 0) == 0) {
    rest = text.substr(5);
  } else if (text.rfind("wss://", 0) == 0) {
    url.tls = true;
    rest = text.substr(6);
  } else {
    throw std::invalid_argument("URL must start with ws:// or wss://: " + text);
  }
  const auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) url.target = rest.substr(slash);
  if (authority.empty()) throw std::invalid_argument("URL has no host: " + text);
  url.host_header = authority;
  if (authority.front() == '[') {  // [v6]:port
    const auto close = authority.find(']');
    if (close == std::string::npos) throw std::invalid_argument("bad IPv6 host: " + text);
    url.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':')
      url.port = authority.substr(close + 2);
  } else {
    const auto colon = authority.rfind(':');
    url.host = authority.substr(0, colon);
    if (colon != std::string::npos) url.port = authority.substr(colon + 1);
  }
  if (url.port.empty()) url.port = url.tls ? "443" : "80";
  return url;
}

Target make_target(const std::string& text, const std::string& ca_file, bool insecure) {
  Target target;
  target.url = parse_url(text);
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto results = resolver.resolve(target.url.host, target.url.port, ec);
  if (ec || results.empty())
    throw std::runtime_error("cannot resolve " + target.url.host + ":" + target.url.port + ": " +
                             ec.message());
  target.endpoint = results.begin()->endpoint();
  if (target.url.tls) {
    tls::ClientConfig config;
    config.ca_file = ca_file;
    config.verify = !insecure;
    target.tls = tls::make_client_context(config);
  }
  return target;
}

template <>
std::unique_ptr<PlainWs> make_stream<PlainWs>(asio::io_context& ioc, const Target&) {
  return std::make_unique<PlainWs>(ioc);
}

template <>
std::unique_ptr<TlsWs> make_stream<TlsWs>(asio::io_context& ioc, const Target& target) {
  return std::make_unique<TlsWs>(ioc, *target.tls);
}

template <class Ws>
asio::awaitable<beast::error_code> open_session(Ws& ws, const Target& target,
                                                Clock::duration timeout) {
  constexpr auto token = asio::as_tuple(asio::use_awaitable);
  auto& sock = beast::get_lowest_layer(ws);
  // One deadline for connect + TLS; the WebSocket layer times its own upgrade.
  SocketDeadline deadline(sock, timeout);

  auto [ec] = co_await sock.async_connect(target.endpoint, token);
  if (ec) co_return ec;
  sock.set_option(tcp::no_delay(true), ec);
  if constexpr (std::is_same_v<Ws, TlsWs>) {
    auto& stream = ws.next_layer();
    if (!SSL_set_tlsext_host_name(stream.native_handle(), target.url.host.c_str()))
      co_return beast::error_code(static_cast<int>(::ERR_get_error()),
                                  asio::error::get_ssl_category());
    stream.set_verify_callback(ssl::host_name_verification(target.url.host));
    auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, token);
    if (hec) co_return hec;
  }
  websocket::stream_base::timeout t{};
  t.handshake_timeout = timeout;
  t.idle_timeout = websocket::stream_base::none();
  t.keep_alive_pings = false;
  ws.set_option(t);
  ws.read_message_max(std::size_t{1} << 30);
  ws.auto_fragment(false);
  ws.binary(true);
  auto [wec] = co_await ws.async_handshake(target.url.host_header, target.url.target, token);
  co_return wec;
}

template asio::awaitable<beast::error_code> open_session<PlainWs>(PlainWs&, const Target&,
                                                                  Clock::duration);
template asio::awaitable<beast::error_code> open_session<TlsWs>(TlsWs&, const Target&,
                                                                Clock::duration);

void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

}  // namespace wsgate::bench
