#include "proxy/upstream_connector.hpp"

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

namespace wsgate::proxy {

namespace net = boost::asio;
namespace http = boost::beast::http;

bool upgrade_status_ejects(unsigned status) {
  if (status == 101) return false;
  if (status < 400) return true;
  return status == 502 || status == 503 || status == 504;
}

UpstreamConnector::UpstreamConnector(WorkerExecutor executor, Gateway& gateway, UpstreamUrl url,
                                     std::shared_ptr<EndpointSet> endpoints,
                                     http::request<http::empty_body> request, Callback done)
    : gateway_(gateway),
      url_(std::move(url)),
      request_(std::move(request)),
      done_(std::move(done)),
      endpoints_(std::move(endpoints)),
      timer_(executor) {}

void UpstreamConnector::run() {
  deadline_ = std::chrono::steady_clock::now() + gateway_.config().handshake_timeout;
  lease_ = endpoints_->acquire(tried_);
  if (!lease_)
    return fail(HandshakeOutcome::upstream_connect_failed,
                "no endpoint of " + url_.authority() + " resolved", false);
  attempt();
}

void UpstreamConnector::cancel() {
  if (finished_) return;
  finished_ = true;
  timer_.cancel();
  if (stream_) stream_->close();
  lease_.reset();
}

void UpstreamConnector::arm(std::chrono::milliseconds timeout, TimeoutKind kind) {
  timer_.expires_after(timeout);
  timer_.async_wait(
      [self = shared_from_this(), kind, attempt = attempt_](boost::system::error_code ec) {
        if (ec || self->finished_ || attempt != self->attempt_) return;
        self->timed_out_ = kind;
        if (self->stream_) self->stream_->close();
      });
}

void UpstreamConnector::fail(HandshakeOutcome outcome, std::string error, bool eject) {
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
  if (lease_) {
    if (eject) endpoints_->report_failure(lease_);
    r.endpoint = lease_.name();
    error += " (endpoint " + r.endpoint + ", " + std::to_string(tried_.size()) + " tried)";
    lease_.reset();
  }
  r.error = std::move(error);
  done_(std::move(r));
}

void UpstreamConnector::attempt() {
  ++attempt_;
  timed_out_.reset();
  tried_.push_back(lease_.endpoint());
  if (stream_) stream_->close();
  WorkerSocket socket(timer_.get_executor());
  if (url_.tls)
    stream_.emplace(std::move(socket), gateway_.upstream_tls());
  else
    stream_.emplace(std::move(socket));
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline_ - std::chrono::steady_clock::now());
  arm(std::clamp(left, std::chrono::milliseconds(1), gateway_.config().upstream_connect_timeout),
      TimeoutKind::upstream_connect);
  stream_->socket().async_connect(
      lease_.endpoint(),
      [self = shared_from_this()](boost::system::error_code ec) { self->on_connect(ec); });
}

void UpstreamConnector::connect_failed(std::string error) {
  if (timed_out_) error = "connect timed out";
  endpoints_->report_failure(lease_);
  const bool time_left = std::chrono::steady_clock::now() < deadline_;
  if (tried_.size() < gateway_.config().upstream_connect_attempts && time_left) {
    if (auto next = endpoints_->acquire(tried_)) {
      if (timed_out_) gateway_.metrics().timeout(*timed_out_).Increment();
      spdlog::warn("upstream {} endpoint {}: {}; trying {}", url_.authority(), lease_.name(), error,
                   next.name());
      endpoints_->retries().Increment();
      lease_ = std::move(next);
      return attempt();
    }
  }
  fail(HandshakeOutcome::upstream_connect_failed, "connect " + lease_.name() + ": " + error, false);
}

void UpstreamConnector::on_connect(boost::system::error_code ec) {
  if (finished_) return;
  if (ec || timed_out_) return connect_failed(ec.message());
  boost::system::error_code ignored;
  stream_->socket().set_option(tcp::no_delay(true), ignored);
  if (!url_.tls) {
    arm(gateway_.config().handshake_timeout, TimeoutKind::upstream_handshake);
    return do_write();
  }
  auto& tls = stream_->tls();
  // SNI only for names; RFC 6066 forbids IP literals there.
  boost::system::error_code addr_ec;
  net::ip::make_address(url_.host, addr_ec);
  if (addr_ec) SSL_set_tlsext_host_name(tls.native_handle(), url_.host.c_str());
  if (gateway_.config().upstream_verify)
    tls.set_verify_callback(net::ssl::host_name_verification(url_.host));
  // The TLS handshake is part of the connect (its timeout, and a failure
  // moves on to another endpoint: nothing of the request was sent).
  tls.async_handshake(
      net::ssl::stream_base::client,
      [self = shared_from_this()](boost::system::error_code hec) { self->on_tls_handshake(hec); });
}

void UpstreamConnector::on_tls_handshake(boost::system::error_code ec) {
  if (finished_) return;
  if (ec || timed_out_) return connect_failed("TLS to " + url_.authority() + ": " + ec.message());
  arm(gateway_.config().handshake_timeout, TimeoutKind::upstream_handshake);
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
  if (ec)
    return fail(HandshakeOutcome::upstream_connect_failed, "send upgrade request: " + ec.message());
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
  if (ec)
    return fail(HandshakeOutcome::upstream_bad_response, "read upgrade response: " + ec.message());
  finished_ = true;
  timer_.cancel();
  UpstreamResult r;
  r.response = parser_->release();
  auto data = buffer_.data();
  r.early.assign(static_cast<const char*>(data.data()), data.size());
  r.stream.emplace(std::move(*stream_));
  if (upgrade_status_ejects(r.response.result_int()))
    endpoints_->report_failure(lease_);
  else
    endpoints_->report_success(lease_);
  r.endpoint = lease_.name();
  r.lease = std::move(lease_);
  done_(std::move(r));
}

}  // namespace wsgate::proxy
