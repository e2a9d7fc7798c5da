#pragma once
// The client half of a connection up to the 101: TLS handshake, reading and
// validating the upgrade request, admission, route and correlation ID, then
// the upstream handshake (UpstreamConnector) and the answer to the client.
// On success it hands both streams to a Tunnel and is gone.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <memory>
#include <optional>
#include <string>

#include "proxy/gateway.hpp"
#include "proxy/handshake.hpp"
#include "proxy/session_summary.hpp"
#include "proxy/stream.hpp"
#include "proxy/upstream_connector.hpp"

namespace wsgate::proxy {

class ClientSession : public std::enable_shared_from_this<ClientSession> {
 public:
  // `socket` is bound to its own strand. `tls` is null for plaintext.
  ClientSession(Gateway& gateway, boost::asio::ip::tcp::socket socket,
                std::shared_ptr<boost::asio::ssl::context> tls);
  ~ClientSession();
  void run();

 private:
  void on_tls_handshake(boost::system::error_code ec);
  void do_read_request();
  void on_read_request(boost::system::error_code ec);
  void on_upstream(UpstreamResult result);
  void on_client_response_written(boost::system::error_code ec, UpstreamResult& upstream);

  // Answers with `status` (JSON body naming the reason) and closes.
  void refuse(HandshakeOutcome outcome, unsigned status, const std::string& reason);
  // Passes the upstream's non-101 answer through as it is, then closes.
  void pass_through(boost::beast::http::response<boost::beast::http::string_body> response);
  void write_and_close();
  void arm(std::chrono::milliseconds timeout, TimeoutKind kind);
  void count_timeout_or(HandshakeOutcome outcome);

  Gateway& gateway_;
  std::shared_ptr<boost::asio::ssl::context> tls_ctx_;  // keeps a reloaded-away context alive
  AnyStream stream_;
  boost::asio::steady_timer timer_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::empty_body>> parser_;
  boost::beast::http::response<boost::beast::http::string_body> response_;
  std::shared_ptr<UpstreamConnector> connector_;
  std::optional<TimeoutKind> timed_out_;

  std::string client_ip_;
  std::string client_addr_;  // ip:port
  bool admitted_ = false;
  bool handed_off_ = false;
  SessionSummary summary_;
  const Route* route_ = nullptr;
  bool deflate_ = false;
};

}  // namespace wsgate::proxy
