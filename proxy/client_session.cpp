#include "proxy/client_session.hpp"

#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>

#include "common/correlation_id.hpp"
#include "common/logging.hpp"
#include "proxy/trace_location.hpp"
#include "proxy/tunnel.hpp"

namespace wsgate::proxy {

namespace net = boost::asio;
namespace http = boost::beast::http;

namespace {
// How long a connection refused at accept is read (and dropped) after its 503.
constexpr std::chrono::milliseconds kRefusalLinger{1000};
}  // namespace

ClientSession::ClientSession(Gateway& gateway, WorkerSocket socket,
                             std::shared_ptr<net::ssl::context> tls, Workers::Load load)
    : gateway_(gateway),
      load_(std::move(load)),
      tls_ctx_(std::move(tls)),
      stream_(tls_ctx_ ? AnyStream(std::move(socket), *tls_ctx_, AnyStream::ServerTls{})
                       : AnyStream(std::move(socket))),
      timer_(stream_.get_executor()) {
  boost::system::error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  client_ip_ = ec ? "unknown" : ep.address().to_string();
  client_addr_ = ec ? "unknown"
                    : (ep.address().is_v6() ? "[" + client_ip_ + "]" : client_ip_) + ":" +
                          std::to_string(ep.port());
  stream_.socket().set_option(net::ip::tcp::no_delay(true), ec);
}

ClientSession::~ClientSession() {
  if (registered_) gateway_.handshake_ended(registration_);
  if (admitted_ && !handed_off_) gateway_.release(client_ip_);
}

void ClientSession::run() {
  registration_ = gateway_.handshake_started(weak_from_this());
  registered_ = true;
  if (!gateway_.allow_handshake(client_ip_)) {
    // Before TLS, so a flood costs us no handshakes.
    gateway_.metrics().handshake(HandshakeOutcome::rate_limited).Increment();
    gateway_.metrics().limit_refusal(Limit::handshake_rate).Increment();
    return finish();
  }
  if (gateway_.handshakes_in_flight() > gateway_.config().max_handshakes_in_flight)
    return refuse_at_accept(Limit::handshakes_in_flight, "too many handshakes in flight");
  switch (gateway_.try_admit(client_ip_)) {
    case Gateway::Admission::ok:
      admitted_ = true;
      break;
    case Gateway::Admission::global_cap:
      return refuse_at_accept(Limit::connections, "connection limit reached");
    case Gateway::Admission::ip_cap:
      return refuse_at_accept(Limit::connections_per_ip, "per-client connection limit reached");
  }
  if (!stream_.is_tls()) return do_read_request();
  arm(gateway_.config().tls_handshake_timeout, TimeoutKind::tls_handshake);
  stream_.server_tls().async_handshake(
      [self = shared_from_this()](boost::system::error_code ec) { self->on_tls_handshake(ec); });
}

void ClientSession::abort_for_drain() {
  net::post(stream_.get_executor(), [self = shared_from_this()] {
    // A session waiting on its upstream is refused when the answer comes.
    if (self->connector_ || self->answering_ || self->handed_off_) return;
    self->aborted_for_drain_ = true;
    self->finish();
  });
}

void ClientSession::finish() {
  timer_.cancel();
  stream_.close();
}

void ClientSession::refuse_at_accept(Limit limit, const std::string& reason) {
  gateway_.metrics().limit_refusal(limit).Increment();
  if (!stream_.is_tls()) return refuse(HandshakeOutcome::limit, 503, reason);
  gateway_.metrics().handshake(HandshakeOutcome::limit).Increment();
  spdlog::debug("refused connection from {}: {}", client_addr_, reason);
  finish();
}

void ClientSession::arm(std::chrono::milliseconds timeout, TimeoutKind kind) {
  timer_.expires_after(timeout);
  timer_.async_wait([self = shared_from_this(), kind](boost::system::error_code ec) {
    if (ec) return;
    self->timed_out_ = kind;
    self->stream_.close();
    if (self->connector_) self->connector_->cancel();
  });
}

void ClientSession::count_timeout_or(HandshakeOutcome outcome) {
  if (aborted_for_drain_) {
    outcome = HandshakeOutcome::draining;
  } else if (timed_out_) {
    gateway_.metrics().timeout(*timed_out_).Increment();
    outcome = HandshakeOutcome::timeout;
  }
  gateway_.metrics().handshake(outcome).Increment();
}

void ClientSession::on_tls_handshake(boost::system::error_code ec) {
  if (ec || ended_early()) {
    count_timeout_or(HandshakeOutcome::tls_failed);
    spdlog::debug("TLS handshake from {} failed: {}", client_addr_,
                  timed_out_ ? "timed out" : ec.message());
    return finish();
  }
  do_read_request();
}

void ClientSession::do_read_request() {
  arm(gateway_.config().handshake_timeout, TimeoutKind::handshake);
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(gateway_.config().max_header_bytes));
  parser_->body_limit(0);
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                     self->on_read_request(ec);
                   });
}

void ClientSession::on_read_request(boost::system::error_code ec) {
  if (ended_early()) {
    count_timeout_or(HandshakeOutcome::client_gone);
    return finish();
  }
  if (ec == http::error::header_limit)
    return refuse(HandshakeOutcome::headers_too_large, 431, "request headers too large");
  if (ec == http::error::body_limit || ec == http::error::unexpected_body)
    return refuse(HandshakeOutcome::bad_request, 400, "upgrade request has a body");
  if (ec == http::error::end_of_stream || ec == net::error::eof || timed_out_ ||
      ec == net::error::connection_reset || ec == net::error::operation_aborted) {
    count_timeout_or(HandshakeOutcome::client_gone);
    return finish();
  }
  if (ec) return refuse(HandshakeOutcome::bad_request, 400, "malformed HTTP request");

  const auto& req = parser_->get();
  Refusal check = validate_upgrade_request(req, false);
  if (!check.ok()) return refuse(check.outcome, check.status, check.reason);

  route_ = gateway_.route_for(req.target());
  if (!route_) return refuse(HandshakeOutcome::not_found, 404, "no route for this path");
  if (gateway_.draining()) return refuse(HandshakeOutcome::draining, 503, "proxy is shutting down");

  // Correlation ID: the client's when well-formed and trusted, else ours.
  std::string_view offered = req[kCorrelationHeader];
  summary_.correlation_id =
      gateway_.config().trust_client_correlation_id && is_valid_correlation_id(offered)
          ? std::string(offered)
          : generate_correlation_id();
  auto parent = parse_traceparent(req["traceparent"]);
  summary_.traceparent = child_traceparent(parent).to_string();
  summary_.client = client_addr_;
  summary_.route = route_->path_prefix;
  summary_.upstream = route_->upstream.to_string();
  summary_.trace_url_template = route_->trace_url_template;
  summary_.target = std::string(req.target());
  summary_.started = std::chrono::system_clock::now();

  ForwardContext fwd{summary_.correlation_id,
                     summary_.traceparent,
                     client_ip_,
                     stream_.is_tls(),
                     route_->upstream.authority(),
                     join_target(route_->upstream.path_prefix, req.target())};
  timer_.cancel();  // the connector has its own deadlines
  connector_ = std::make_shared<UpstreamConnector>(
      stream_.get_executor(), gateway_, route_->upstream, gateway_.endpoints(*route_),
      build_upstream_request(req, fwd),
      [self = shared_from_this()](UpstreamResult r) { self->on_upstream(std::move(r)); });
  connector_->run();
}

void ClientSession::on_upstream(UpstreamResult result) {
  connector_.reset();
  if (timed_out_) {  // the client-side deadline fired while we waited
    count_timeout_or(HandshakeOutcome::timeout);
    if (result.stream) result.stream->close();
    return finish();
  }
  if (gateway_.draining()) {
    if (result.stream) result.stream->close();
    return refuse(HandshakeOutcome::draining, 503, "proxy is shutting down");
  }
  if (result.failure) {
    WSG_LOG(spdlog::level::warn, summary_.correlation_id, "upstream {} unavailable: {}",
            summary_.upstream, result.error);
    bool timeout = *result.failure == HandshakeOutcome::upstream_timeout;
    return refuse(*result.failure, timeout ? 504 : 502,
                  timeout ? "upstream timed out" : "upstream unavailable");
  }
  const auto& req = parser_->get();
  Refusal check = validate_upstream_response(result.response.base(), req);
  if (check.outcome == HandshakeOutcome::upstream_refused) {
    WSG_LOG(spdlog::level::info, summary_.correlation_id, "upstream refused the upgrade with {}",
            result.response.result_int());
    gateway_.metrics().handshake(HandshakeOutcome::upstream_refused).Increment();
    if (result.stream) result.stream->close();
    return pass_through(std::move(result.response));
  }
  if (!check.ok()) {
    WSG_LOG(spdlog::level::warn, summary_.correlation_id, "bad upstream 101: {}", check.reason);
    if (result.stream) result.stream->close();
    return refuse(check.outcome, check.status, check.reason);
  }
  deflate_ = deflate_negotiated(result.response.base());
  boost::system::error_code peer_ec;
  const auto peer = result.stream->socket().remote_endpoint(peer_ec);
  if (!peer_ec)
    note_upstream(result.response.base(), peer, gateway_.config(),
                  gateway_.metrics().trace_location, summary_);
  summary_.upstream_endpoint = result.endpoint;

  // The upstream's 101, as it came, plus our correlation ID.
  response_ = {};
  response_.base() = build_client_response(result.response.base(), summary_.correlation_id);
  answering_ = true;
  arm(gateway_.config().handshake_timeout, TimeoutKind::handshake);
  auto upstream = std::make_shared<UpstreamResult>(std::move(result));
  http::async_write(
      stream_, response_,
      [self = shared_from_this(), upstream](boost::system::error_code ec, std::size_t) {
        self->on_client_response_written(ec, *upstream);
      });
}

void ClientSession::on_client_response_written(boost::system::error_code ec,
                                               UpstreamResult& upstream) {
  timer_.cancel();
  if (ec || timed_out_) {
    count_timeout_or(HandshakeOutcome::client_gone);
    upstream.stream->close();
    return finish();
  }
  gateway_.metrics().handshake(HandshakeOutcome::ok).Increment();

  TunnelParams params{std::move(stream_),
                      std::move(*upstream.stream),
                      std::move(summary_),
                      deflate_,
                      {},
                      std::move(upstream.early),
                      client_ip_,
                      std::move(load_),
                      std::move(upstream.lease)};
  auto early = buffer_.data();
  params.client_early.assign(static_cast<const char*>(early.data()), early.size());
  handed_off_ = true;
  std::make_shared<Tunnel>(gateway_, std::move(params))->start();
}

void ClientSession::refuse(HandshakeOutcome outcome, unsigned status, const std::string& reason) {
  gateway_.metrics().handshake(outcome).Increment();
  spdlog::debug("refused upgrade from {}: {} {}", client_addr_, status, reason);
  response_ = {};
  response_.version(11);
  response_.result(status);
  response_.set(http::field::server, "wsgate");
  response_.set(http::field::content_type, "application/json");
  response_.set(http::field::connection, "close");
  if (status == 426) response_.set(http::field::sec_websocket_version, "13");
  nlohmann::json body{{"error", std::string(http::obsolete_reason(response_.result()))},
                      {"reason", reason}};
  if (!summary_.correlation_id.empty()) {
    body["correlation_id"] = summary_.correlation_id;
    response_.set(kCorrelationHeader, summary_.correlation_id);
  }
  response_.body() = body.dump() + "\n";
  response_.prepare_payload();
  write_and_close();
}

void ClientSession::pass_through(http::response<http::string_body> response) {
  response_ = std::move(response);
  response_.erase(kTraceLocationHeader);
  response_.set(http::field::connection, "close");
  response_.set(kCorrelationHeader, summary_.correlation_id);
  response_.prepare_payload();
  write_and_close();
}

void ClientSession::write_and_close() {
  answering_ = true;
  arm(gateway_.config().handshake_timeout, TimeoutKind::handshake);
  http::async_write(stream_, response_,
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      // Nothing is ever tunnelled after a refusal: close.
                      self->timer_.cancel();
                      self->stream_.shutdown_send();
                      if (ec || self->parser_) return self->stream_.close();
                      // Refused before its request was read: closing with the
                      // request unread would reset the connection and could
                      // destroy the answer before the client reads it.
                      self->arm(kRefusalLinger, TimeoutKind::handshake);
                      self->discard_until_eof();
                    });
}

void ClientSession::discard_until_eof() {
  stream_.async_read_some(buffer_.prepare(1024),
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                            if (ec || self->timed_out_) return self->finish();
                            self->discard_until_eof();
                          });
}

}  // namespace wsgate::proxy
