#include "proxy/upstream_connector.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <openssl/ssl.h>

namespace wsgate::proxy {

namespace net = boost::asio;
namespace http = boost::beast::http;

UpstreamConnector::UpstreamConnector(net::any_io_executor strand, Gateway& gateway,
                                     UpstreamUrl url, http::request<http::empty_body> request,
                                     Callback done)
    : gateway_(gateway),
      url_(std::move(url)),
      request_(std::move(request)),
      done_(std::move(done)),
      resolver_(strand),
      timer_(strand) {}

void UpstreamConnector::run() {
  arm(gateway_.config().upstream_connect_timeout, TimeoutKind::upstream_connect);
  resolver_.async_resolve(url_.host, std::to_string(url_.port),
                          [self = shared_from_this()](boost::system::error_code ec,
                                                      tcp::resolver::results_type results) {
                            self->on_resolve(ec, std::move(results));
                          });
}

void UpstreamConnector::cancel() {
  if (finished_) return;
  finished_ = true;
  timer_.cancel();
  resolver_.cancel();
  if (stream_) stream_->close();
}

void UpstreamConnector::arm(std::chrono::milliseconds timeout, TimeoutKind kind) {
  timer_.expires_after(timeout);
  timer_.async_wait([self = shared_from_this(), kind](boost::system::error_code ec) {
    if (ec || self->finished_) return;
    self->timed_out_ = kind;
    self->resolver_.cancel();
    if (self->stream_) self->stream_->close();
  });
}

void UpstreamConnector::fail(HandshakeOutcome outcome, std::string error) {
  if (finished_) return;
  finished_ = true;
  timer_.cancel();
  if (stream_) stream_->close();
  if (timed_out_) {
    gateway_.metrics().timeout(*timed_out_).Increment();
    outcome = HandshakeOutcome::upstream_timeout;
    error = "upstream " + std::string(to_string(*timed_out_)) + " timed out";
  }
  UpstreamResult r;
  r.failure = outcome;
  r.error = std::move(error);
  done_(std::move(r));
}

void UpstreamConnector::on_resolve(boost::system::error_code ec,
                                   tcp::resolver::results_type results) {
  if (finished_) return;
  if (ec) return fail(HandshakeOutcome::upstream_connect_failed, "resolve " + url_.host + ": " + ec.message());
  endpoints_ = std::move(results);
  tcp::socket socket(timer_.get_executor());
  if (url_.tls)
    stream_.emplace(std::move(socket), gateway_.upstream_tls());
  else
    stream_.emplace(std::move(socket));
  // async_connect tries each resolved address until one accepts.
  net::async_connect(stream_->socket(), endpoints_,
                     [self = shared_from_this()](boost::system::error_code cec, const tcp::endpoint&) {
                       self->on_connect(cec);
                     });
}

void UpstreamConnector::on_connect(boost::system::error_code ec) {
  if (finished_) return;
  if (ec) return fail(HandshakeOutcome::upstream_connect_failed, "connect " + url_.authority() + ": " + ec.message());
  boost::system::error_code ignored;
  stream_->socket().set_option(tcp::no_delay(true), ignored);
  arm(gateway_.config().handshake_timeout, TimeoutKind::upstream_handshake);
  if (!url_.tls) return do_write();
  auto& tls = stream_->tls();
  // SNI only for names; RFC 6066 forbids IP literals there.
  boost::system::error_code addr_ec;
  net::ip::make_address(url_.host, addr_ec);
  if (addr_ec) SSL_set_tlsext_host_name(tls.native_handle(), url_.host.c_str());
  if (gateway_.config().upstream_verify) tls.set_verify_callback(net::ssl::host_name_verification(url_.host));
  tls.async_handshake(net::ssl::stream_base::client,
                      [self = shared_from_this()](boost::system::error_code hec) {
                        self->on_tls_handshake(hec);
                      });
}

void UpstreamConnector::on_tls_handshake(boost::system::error_code ec) {
  if (finished_) return;
  if (ec) return fail(HandshakeOutcome::upstream_connect_failed, "TLS to " + url_.authority() + ": " + ec.message());
  do_write();
}

void UpstreamConnector::do_write() {
  http::async_write(*stream_, request_,
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      self->on_write(ec);
                    });
}

void UpstreamConnector::on_write(boost::system::error_code ec) {
  if (finished_) return;
  if (ec) return fail(HandshakeOutcome::upstream_connect_failed, "send upgrade request: " + ec.message());
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(gateway_.config().max_header_bytes));
  parser_->body_limit(1024 * 1024);
  http::async_read(*stream_, buffer_, *parser_,
                   [self = shared_from_this()](boost::system::error_code rec, std::size_t) {
                     self->on_read(rec);
                   });
}

void UpstreamConnector::on_read(boost::system::error_code ec) {
  if (finished_) return;
  if (ec) return fail(HandshakeOutcome::upstream_bad_response, "read upgrade response: " + ec.message());
  finished_ = true;
  timer_.cancel();
  UpstreamResult r;
  r.response = parser_->release();
  auto data = buffer_.data();
  r.early.assign(static_cast<const char*>(data.data()), data.size());
  r.stream.emplace(std::move(*stream_));
  done_(std::move(r));
}

}  // namespace wsgate::proxy
