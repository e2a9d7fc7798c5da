#include "backend/websocket_session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <deque>
#include <stdexcept>

#include "backend/messages.hpp"
#include "backend/shared_state.hpp"
#include "backend/token_source.hpp"
#include "backend/user_context.hpp"
#include "common/correlation_id.hpp"
#include "common/logging.hpp"

namespace wsgate::backend {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// Close codes and reasons the backend sends (RFC 6455 section 7.4.1).
constexpr std::uint16_t kCloseGoingAway = 1001;
constexpr std::uint16_t kClosePolicy = 1008;
constexpr std::uint16_t kCloseTooBig = 1009;
constexpr std::uint16_t kCloseInternal = 1011;
constexpr std::uint16_t kCloseTryAgain = 1013;
constexpr std::uint16_t kCloseAbnormal = 1006;

// A server-sent close is a failure of the session unless it is one of these.
bool is_orderly(std::uint16_t code) { return code == 1000 || code == 1001 || code == 1012; }

std::string quoted_prefix(std::string_view s, std::size_t max) {
  std::string out(s.substr(0, max));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  return out;
}

class Session final : public WebSocketSession, public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<SharedState> state, HandshakeInfo info)
      : ws_(std::move(socket)), state_(std::move(state)), info_(std::move(info)) {}

  ~Session() override {
    // The io_context stopped before the session finished (drain timeout):
    // keep the gauge true.
    if (accepted_ && !finished_) state_->metrics().connections_active.Decrement();
    if (registry_id_) state_->unregister_session(registry_id_);
  }

  void run(UpgradeRequest request) {
    net::dispatch(ws_.get_executor(),
                  [self = shared_from_this(), req = std::move(request)]() mutable {
                    self->do_accept(std::move(req));
                  });
  }

  void deliver(std::shared_ptr<const std::string> message) override {
    net::post(ws_.get_executor(), [self = shared_from_this(), m = std::move(message)]() mutable {
      self->send(std::move(m));
    });
  }

  void shutdown(std::uint16_t code, std::string reason) override {
    net::post(ws_.get_executor(),
              [self = shared_from_this(), code, r = std::move(reason)]() mutable {
                if (self->accepted_ && !self->finished_)
                  self->close_after_flush(code, std::move(r));
              });
  }

 private:
  const std::string& cid() const { return info_.correlation_id; }

  void record(Stage stage, Outcome outcome, std::string detail,
              std::vector<MissingAttribute> missing = {}) {
    state_->record(*info_.trace, stage, outcome, std::move(detail), std::move(missing));
  }

  // ---- upgrade ----------------------------------------------------------

  void do_accept(UpgradeRequest request) {
    const auto& cfg = state_->config();
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = cfg.handshake_timeout;
    timeouts.idle_timeout = cfg.idle_timeout;
    timeouts.keep_alive_pings = true;
    ws_.set_option(timeouts);
    ws_.read_message_max(cfg.max_message_bytes);
    std::string trace_location;
    if (!state_->trace_location_template().empty())
      trace_location = advertised_trace_url(state_->trace_location_template(), cid());
    ws_.set_option(websocket::stream_base::decorator(
        [cid = cid(), select = info_.select_jwt_auth,
         trace_location = std::move(trace_location)](websocket::response_type& res) {
          res.set(http::field::server, "wsgate-backend");
          res.set(kCorrelationHeader, cid);
          if (select) res.set(http::field::sec_websocket_protocol, kJwtAuthProtocol);
          if (!trace_location.empty()) res.set("Wsgate-Trace-Location", trace_location);
        }));
    ws_.async_accept(request,
                     [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
  }

  void on_accept(beast::error_code ec) {
    if (ec) {
      record(Stage::session_close, Outcome::error, "websocket upgrade failed: " + ec.message());
      WSG_LOG(spdlog::level::info, cid(), "websocket upgrade failed: {}", ec.message());
      return;
    }
    accepted_ = true;
    registry_id_ =
        state_->register_session(std::static_pointer_cast<WebSocketSession>(shared_from_this()));
    state_->metrics().connections_active.Increment();
    state_->metrics().connections_total.Increment();
    if (state_->draining()) return close_after_flush(kCloseGoingAway, "Server shutting down");
    establish();
  }

  // ---- context, validation, manager (the seed's failing path) -----------

  void establish() {
    auto& state = *state_;
    ContextInputs inputs;
    inputs.sub = info_.claims.sub;
    inputs.claim_thread_id = info_.claims.thread_id;
    inputs.claim_thread_id_wrong_type = info_.claims.thread_id_wrong_type;
    inputs.header_thread_id = info_.header_thread_id;
    inputs.query_thread_id = info_.query_thread_id;
    inputs.correlation_id = cid();
    inputs.dropped = state.faults().context_drops();
    ctx_ = create_context(inputs, default_generate);

    std::string sources;
    for (Attribute a : kAllAttributes) {
      const auto& v = ctx_.at(a);
      WSG_LOG(spdlog::level::debug, cid(), "context attribute {}='{}' source={}", attribute_name(a),
              quoted_prefix(v.value, 64), v.source);
      if (!sources.empty()) sources += "; ";
      sources += std::string(attribute_name(a)) + " from " + v.source;
    }
    record(Stage::context_create, Outcome::ok, sources);

    auto policy = state.config().policy;
    const UserContext before = ctx_;  // fallback overwrites the sources of what it fills
    auto validation = validate_context(ctx_, policy, cid(), default_generate);
    std::vector<std::string> missing_names, filled_names;
    std::vector<MissingAttribute> missing;
    for (Attribute a : validation.missing) {
      missing_names.emplace_back(attribute_name(a));
      missing.push_back({std::string(attribute_name(a)), std::string(attribute_source(a)),
                         before.at(a).value.empty() ? before.at(a).source
                                                    : "invalid value from " + before.at(a).source});
    }
    for (Attribute a : validation.filled) filled_names.emplace_back(attribute_name(a));
    state.traces().set_attributes(*info_.trace, missing_names, filled_names);

    using Verdict = ValidationResult::Verdict;
    switch (validation.verdict) {
      case Verdict::ok:
        record(Stage::context_validate, Outcome::ok, validation.detail);
        break;
      case Verdict::fallback:
        record(Stage::context_validate, Outcome::fallback, validation.detail, std::move(missing));
        for (Attribute a : validation.filled) state.metrics().context_fallback(a).Increment();
        WSG_LOG(spdlog::level::warn, cid(),
                "incomplete user context for user_id={}: {} (policy fallback: generated values "
                "used)",
                ctx_.get(Attribute::user_id), validation.detail);
        fallback_ = validation.filled;
        break;
      case Verdict::missing_identity:
        record(Stage::context_validate, Outcome::error,
               validation.detail + " (user identity is never filled)", std::move(missing));
        WSG_LOG(spdlog::level::warn, cid(), "user context without identity: {}; closing 1008",
                validation.detail);
        return close_after_flush(kClosePolicy, "Missing user identity");
      case Verdict::refused:
        // The staging failure, reproduced on purpose: the strict policy
        // refuses the incomplete context, as the factory's SSOT check did.
        record(Stage::context_validate, Outcome::error,
               validation.detail + " (policy strict: Factory SSOT validation failed)",
               std::move(missing));
        WSG_LOG(spdlog::level::err, cid(),
                "FACTORY_INIT_FAILED for user_id={}: SSOT validation failed, {}",
                ctx_.get(Attribute::user_id), validation.detail);
        send(std::make_shared<const std::string>(
            error_message(kFactoryInitFailed,
                          "WebSocket factory initialization failed due to SSOT validation error: " +
                              validation.detail,
                          cid())));
        return close_after_flush(kCloseInternal, "Factory SSOT validation failed");
    }

    WSG_LOG(spdlog::level::info, cid(),
            "user context created: user_id={} thread_id={} websocket_client_id={} run_id={} "
            "request_id={} policy={} fallback=[{}]",
            ctx_.get(Attribute::user_id), ctx_.get(Attribute::thread_id),
            ctx_.get(Attribute::websocket_client_id), ctx_.get(Attribute::run_id),
            ctx_.get(Attribute::request_id), policy_name(policy), join_attributes(fallback_));

    if (state.faults().factory_fails()) {
      record(Stage::factory_create_manager, Outcome::error, "injected fault factory.fail");
      WSG_LOG(spdlog::level::err, cid(), "FACTORY_INIT_FAILED: injected fault factory.fail");
      send(std::make_shared<const std::string>(error_message(
          kFactoryInitFailed, "WebSocket manager factory failed to create a manager", cid())));
      return close_after_flush(kCloseInternal, "Factory initialization failed");
    }
    auto result =
        state.factory().acquire(ctx_.get(Attribute::user_id), ctx_.get(Attribute::thread_id),
                                std::static_pointer_cast<Connection>(shared_from_this()));
    if (auto* cap = std::get_if<ManagerFactory::CapReached>(&result)) {
      auto detail = "per-user connection cap reached (" + std::to_string(cap->cap) + ")";
      record(Stage::factory_create_manager, Outcome::error, detail);
      WSG_LOG(spdlog::level::warn, cid(), "user_id={}: {}; closing 1013",
              ctx_.get(Attribute::user_id), detail);
      send(std::make_shared<const std::string>(
          error_message("TOO_MANY_CONNECTIONS", detail, cid())));
      return close_after_flush(kCloseTryAgain, "Too many connections for this user");
    }
    lease_ = std::move(std::get<ManagerLease>(result));
    record(Stage::factory_create_manager, Outcome::ok,
           "manager for user " + ctx_.get(Attribute::user_id) + " holds " +
               std::to_string(lease_.manager()->connection_count()) + " connection(s)");

    record(Stage::session_established, Outcome::ok,
           "thread_id=" + ctx_.get(Attribute::thread_id) +
               " websocket_client_id=" + ctx_.get(Attribute::websocket_client_id));
    send(std::make_shared<const std::string>(
        connection_established_message(ctx_, policy, fallback_)));
    do_read();
  }

  // ---- reading ------------------------------------------------------------

  void do_read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

  void on_read(beast::error_code ec) {
    if (ec == websocket::error::closed) {
      // Either the client closed, or our own close handshake completed.
      if (closing_) return finish(close_code_, close_reason_, "server");
      auto reason = ws_.reason();
      return finish(reason.code == websocket::close_code::none ? 1005 : reason.code,
                    std::string(reason.reason.data(), reason.reason.size()), "client");
    }
    if (ec == websocket::error::message_too_big) {
      // Beast has already failed the connection with 1009.
      record(Stage::message_parse, Outcome::error,
             "message exceeds " + std::to_string(state_->config().max_message_bytes) + " bytes");
      return finish(kCloseTooBig, "Message too big", "server");
    }
    if (ec) {
      if (closing_) return finish(close_code_, close_reason_, "server");
      return finish(kCloseAbnormal, "no close frame: " + ec.message(), "client");
    }
    if (!closing_) handle_message();
    buffer_.consume(buffer_.size());
    do_read();
  }

  // The message-handling boundary: parse, dispatch, and turn an exception
  // into INTERNAL_ERROR + 1011 with the stage and its text in the trace.
  void handle_message() {
    auto& metrics = state_->metrics();
    if (!ws_.got_text()) {
      metrics.message(MessageKind::invalid).Increment();
      record(Stage::message_parse, Outcome::ok, "rejected binary message (INVALID_MESSAGE sent)");
      return send(std::make_shared<const std::string>(
          error_message(kInvalidMessage, "binary messages are not supported", cid())));
    }
    auto text = beast::buffers_to_string(buffer_.data());
    auto parsed = parse_client_message(text);
    if (!parsed.message) {
      metrics.message(MessageKind::invalid).Increment();
      // The client's mistake, answered; not a failure of the backend.
      record(Stage::message_parse, Outcome::ok,
             "rejected: " + parsed.error + " (INVALID_MESSAGE sent)");
      return send(
          std::make_shared<const std::string>(error_message(kInvalidMessage, parsed.error, cid())));
    }
    const ClientMessage& message = *parsed.message;
    record(Stage::message_parse, Outcome::ok, "type=" + quoted_prefix(message.type, 64));
    try {
      if (state_->faults().handler_throws(message.type))
        throw std::runtime_error("injected fault handler.throw=" + message.type);
      dispatch(message);
    } catch (const std::exception& e) {
      record(Stage::message_handle, Outcome::error, std::string("exception: ") + e.what());
      WSG_LOG(spdlog::level::err, cid(), "exception handling '{}': {}; closing 1011",
              quoted_prefix(message.type, 64), e.what());
      send(std::make_shared<const std::string>(
          error_message(kInternalError, "An unexpected error occurred. Please reconnect.", cid())));
      close_after_flush(kCloseInternal, "Internal error");
    }
  }

  void dispatch(const ClientMessage& message) {
    auto& metrics = state_->metrics();
    if (message.type == "ping") {
      metrics.message(MessageKind::ping).Increment();
      send(std::make_shared<const std::string>(pong_message(message, cid())));
      return record(Stage::message_handle, Outcome::ok, "pong sent");
    }
    if (message.type == "user_message") {
      metrics.message(MessageKind::user_message).Increment();
      metrics.agent_runs.Increment();
      AgentRequest request;
      request.run_id = ctx_.get(Attribute::run_id);
      request.run_seq = ++run_seq_;
      request.thread_id = ctx_.get(Attribute::thread_id);
      request.correlation_id = cid();
      request.user_id = ctx_.get(Attribute::user_id);
      request.content = message.content;
      std::weak_ptr<UserManager> manager = lease_.manager();
      state_->agent().run(std::move(request), [manager, thread = ctx_.get(Attribute::thread_id)](
                                                  std::shared_ptr<const std::string> event) {
        if (auto m = manager.lock()) m->broadcast(thread, std::move(event));
      });
      return record(
          Stage::message_handle, Outcome::ok,
          "agent run " + ctx_.get(Attribute::run_id) + "#" + std::to_string(run_seq_) + " started");
    }
    metrics.message(MessageKind::unknown).Increment();
    send(std::make_shared<const std::string>(error_message(
        kUnknownType, "unknown message type '" + quoted_prefix(message.type, 64) + "'", cid())));
    record(Stage::message_handle, Outcome::ok,
           "unknown type '" + quoted_prefix(message.type, 64) + "' (UNKNOWN_TYPE sent)");
  }

  // ---- writing: one write in flight, bounded queue -----------------------

  void send(std::shared_ptr<const std::string> message) {
    if (closing_ || finished_ || !accepted_) return;
    if (queue_.size() >= state_->config().send_queue_limit) {
      WSG_LOG(spdlog::level::warn, cid(), "send queue full ({} messages); closing 1008",
              queue_.size());
      // Keep the message being written (it is in flight); drop the rest.
      queue_.erase(queue_.begin() + (writing_ ? 1 : 0), queue_.end());
      return close_after_flush(kClosePolicy, "Send queue overflow");
    }
    queue_.push_back(std::move(message));
    if (!writing_) do_write();
  }

  void do_write() {
    writing_ = true;
    ws_.text(true);
    ws_.async_write(
        net::buffer(*queue_.front()),
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    if (ec) {
      queue_.clear();
      if (ec != net::error::operation_aborted)
        WSG_LOG(spdlog::level::debug, cid(), "write failed: {}", ec.message());
      beast::error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
      return finish(closing_ ? close_code_ : kCloseAbnormal,
                    closing_ ? close_reason_ : "write failed: " + ec.message(),
                    closing_ ? "server" : "client");
    }
    queue_.pop_front();
    if (!queue_.empty()) return do_write();
    if (closing_ && !close_started_) do_close();
  }

  // ---- closing ------------------------------------------------------------

  void close_after_flush(std::uint16_t code, std::string reason) {
    if (closing_ || finished_) return;
    closing_ = true;
    close_code_ = code;
    close_reason_ = std::move(reason);
    if (!writing_) do_close();
  }

  void do_close() {
    close_started_ = true;
    ws_.async_close(
        websocket::close_reason(static_cast<websocket::close_code>(close_code_), close_reason_),
        [self = shared_from_this()](beast::error_code ec) { self->on_close(ec); });
  }

  void on_close(beast::error_code ec) {
    if (ec && ec != net::error::operation_aborted)
      WSG_LOG(spdlog::level::debug, cid(), "close handshake: {}", ec.message());
    finish(close_code_, close_reason_, "server");
  }

  // Records the end of the session exactly once.
  void finish(std::uint16_t code, std::string reason, std::string_view initiator) {
    if (finished_) return;
    finished_ = true;
    queue_.clear();
    lease_.release();
    auto& metrics = state_->metrics();
    metrics.close(code).Increment();
    metrics.connections_active.Decrement();
    bool failed = initiator == "server" && !is_orderly(code);
    record(Stage::session_close, failed ? Outcome::error : Outcome::ok,
           "code=" + std::to_string(code) + " reason=\"" + quoted_prefix(reason, 123) +
               "\" initiator=" + std::string(initiator));
    WSG_LOG(spdlog::level::info, cid(), "session closed: code={} reason=\"{}\" initiator={}", code,
            quoted_prefix(reason, 123), initiator);
    if (registry_id_) {
      state_->unregister_session(registry_id_);
      registry_id_ = 0;
    }
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  std::shared_ptr<SharedState> state_;
  HandshakeInfo info_;
  UserContext ctx_;
  std::vector<Attribute> fallback_;
  ManagerLease lease_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  std::uint64_t registry_id_ = 0;
  std::uint64_t run_seq_ = 0;
  std::uint16_t close_code_ = 0;
  std::string close_reason_;
  bool accepted_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool close_started_ = false;
  bool finished_ = false;
};

}  // namespace

void start_websocket_session(tcp::socket socket, std::shared_ptr<SharedState> state,
                             HandshakeInfo info, UpgradeRequest request) {
  std::make_shared<Session>(std::move(socket), std::move(state), std::move(info))
      ->run(std::move(request));
}

}  // namespace wsgate::backend
