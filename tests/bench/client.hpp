#pragma once
// What every client subcommand (load, connect, hold) shares: the target URL,
// resolved once, its TLS context, and opening one WebSocket session (TCP
// connect, TLS handshake with SNI and host-name verification, upgrade) under
// one deadline.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace wsgate::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// Plain tcp::socket underneath, no beast::tcp_stream: its per-operation timer
// costs on every read and write, and the benchmark wants the bare relay.
using PlainWs = websocket::stream<tcp::socket>;
using TlsWs = websocket::stream<ssl::stream<tcp::socket>>;

struct Url {
  bool tls = false;
  std::string host;
  std::string port;
  std::string target = "/";
  std::string host_header;  // host[:port] as sent in Host
};

// ws://HOST[:PORT][/path] or wss://...; throws std::invalid_argument.
Url parse_url(const std::string& text);

struct Target {
  Url url;
  tcp::endpoint endpoint;             // resolved once, before the clock starts
  std::shared_ptr<ssl::context> tls;  // null for ws://
};

// Throws std::runtime_error (unresolvable host, unreadable CA file).
Target make_target(const std::string& url, const std::string& ca_file, bool insecure);

// Closes `sock` unless destroyed within `timeout`: one deadline over a
// sequence of operations. `armed` guards against an expiry already queued
// when the sequence ends.
class SocketDeadline {
 public:
  SocketDeadline(tcp::socket& sock, Clock::duration timeout)
      : timer_(sock.get_executor(), timeout), armed_(std::make_shared<bool>(true)) {
    timer_.async_wait([&sock, armed = armed_](beast::error_code ec) {
      if (!ec && *armed) {
        beast::error_code ignored;
        sock.close(ignored);
      }
    });
  }
  ~SocketDeadline() {
    *armed_ = false;
    timer_.cancel();
  }
  SocketDeadline(const SocketDeadline&) = delete;
  SocketDeadline& operator=(const SocketDeadline&) = delete;

 private:
  asio::steady_timer timer_;
  std::shared_ptr<bool> armed_;
};

template <class Ws>
std::unique_ptr<Ws> make_stream(asio::io_context& ioc, const Target& target);

// Connect, TLS handshake (wss), WebSocket upgrade; the socket is closed if the
// whole sequence takes longer than `timeout`. Large-message settings applied.
template <class Ws>
asio::awaitable<beast::error_code> open_session(Ws& ws, const Target& target,
                                                Clock::duration timeout);

// Raise RLIMIT_NOFILE's soft limit to the hard limit (thousands of sessions).
void raise_fd_limit();

// Nanoseconds on the steady clock, for the histograms and schedules.
inline std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
}

}  // namespace wsgate::bench
