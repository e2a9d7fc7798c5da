#pragma once
// The upstream half of the handshake: resolve, connect (trying every address
// in turn), TLS with SNI and certificate verification for wss://, send the
// upgrade request, read the answer. One connector per client session; it
// calls back exactly once.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "proxy/gateway.hpp"
#include "proxy/metrics.hpp"
#include "proxy/stream.hpp"
#include "proxy/upstream_url.hpp"

namespace wsgate::proxy {

struct UpstreamResult {
  // On failure: the handshake outcome to count, and why.
  std::optional<HandshakeOutcome> failure;
  std::string error;
  std::optional<AnyStream> stream;
  boost::beast::http::response<boost::beast::http::string_body> response;
  std::string early;  // bytes after the response (frames already sent)
};

class UpstreamConnector : public std::enable_shared_from_this<UpstreamConnector> {
 public:
  using Callback = std::function<void(UpstreamResult)>;

  UpstreamConnector(boost::asio::any_io_executor strand, Gateway& gateway, UpstreamUrl url,
                    boost::beast::http::request<boost::beast::http::empty_body> request,
                    Callback done);
  void run();
  void cancel();  // the client went away

 private:
  using tcp = boost::asio::ip::tcp;
  void on_resolve(boost::system::error_code ec, tcp::resolver::results_type results);
  void on_connect(boost::system::error_code ec);
  void on_tls_handshake(boost::system::error_code ec);
  void do_write();
  void on_write(boost::system::error_code ec);
  void on_read(boost::system::error_code ec);
  void arm(std::chrono::milliseconds timeout, TimeoutKind kind);
  void fail(HandshakeOutcome outcome, std::string error);

  Gateway& gateway_;
  UpstreamUrl url_;
  boost::beast::http::request<boost::beast::http::empty_body> request_;
  Callback done_;
  tcp::resolver resolver_;
  tcp::resolver::results_type endpoints_;
  std::optional<AnyStream> stream_;
  boost::asio::steady_timer timer_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::response_parser<boost::beast::http::string_body>> parser_;
  std::optional<TimeoutKind> timed_out_;
  bool finished_ = false;
};

}  // namespace wsgate::proxy
