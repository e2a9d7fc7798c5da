#include "backend/http_session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <nlohmann/json.hpp>
#include <optional>

#include "backend/shared_state.hpp"
#include "backend/token_source.hpp"
#include "backend/websocket_session.hpp"
#include "common/admin_server.hpp"
#include "common/correlation_id.hpp"
#include "common/logging.hpp"

namespace wsgate::backend {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr std::uint32_t kHeaderLimit = 16 * 1024;
constexpr std::string_view kWebSocketPath = "/ws";

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == name)
      return eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, std::shared_ptr<SharedState> state)
      : stream_(std::move(socket)), state_(std::move(state)) {}

  void run() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->do_read(); });
  }

 private:
  void do_read() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(0);
    stream_.expires_after(state_->config().handshake_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    // A client that goes away or sends garbage before upgrading gets nothing
    // more: there is no session to close and no correlation to keep.
    if (ec == http::error::end_of_stream || ec == net::error::operation_aborted) return;
    if (ec) {
      SPDLOG_DEBUG("upgrade request unreadable: {}", ec.message());
      if (ec == http::error::header_limit || ec == http::error::body_limit)
        return respond_json(http::status::request_header_fields_too_large,
                            R"({"error":"request_too_large"})", {});
      return respond_json(http::status::bad_request, R"({"error":"bad_request"})", {});
    }
    auto& req = parser_->get();
    std::string_view target = req.target();
    auto q = target.find('?');
    auto path = target.substr(0, q);
    auto query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
    if (path != kWebSocketPath)
      return respond_json(http::status::not_found, R"({"error":"not_found"})", {});
    if (!beast::websocket::is_upgrade(req)) {
      return respond_json(http::status::upgrade_required,
                          R"({"error":"upgrade_required","detail":"/ws speaks WebSocket only"})",
                          {});
    }

    std::string supplied(req[kCorrelationHeader]);
    std::string cid = is_valid_correlation_id(supplied) ? supplied : generate_correlation_id();
    auto trace = state_->traces().begin(cid, std::string(policy_name(state_->config().policy)));
    // Kept only when well-formed, like the correlation ID: it is echoed in
    // the trace JSON that the proxy embeds in its incidents.
    if (auto parent = parse_traceparent(req["traceparent"]))
      state_->traces().set_traceparent(*trace, parent->to_string());

    std::string subprotocols;
    for (auto it = req.find(http::field::sec_websocket_protocol);
         it != req.end() && it->name() == http::field::sec_websocket_protocol; ++it) {
      if (!subprotocols.empty()) subprotocols += ',';
      subprotocols += std::string(it->value());
    }
    TokenSource source = extract_token(req[http::field::authorization], subprotocols);
    VerifyResult verdict;
    if (source.from == TokenSource::From::none) {
      verdict.failure =
          source.malformed_authorization ? AuthFailure::malformed : AuthFailure::missing_token;
      verdict.detail = source.malformed_authorization ? "Authorization is not 'Bearer <token>'"
                                                      : "no token in Authorization or subprotocol";
    } else {
      verdict = state_->verifier().verify(source.token);
    }
    source.token.clear();  // not needed past this point; never logged

    if (!verdict.ok()) {
      auto reason = auth_failure_name(*verdict.failure);
      state_->metrics().auth_failure(*verdict.failure).Increment();
      state_->record(*trace, Stage::auth_verify_jwt, Outcome::error,
                     std::string(reason) + ": " + verdict.detail);
      WSG_LOG(spdlog::level::warn, cid, "auth refused: reason={} ({}), token from {}", reason,
              verdict.detail, token_source_name(source.from));
      nlohmann::json body = {
          {"error", "unauthorized"}, {"reason", reason}, {"correlation_id", cid}};
      return respond_json(http::status::unauthorized, body.dump(), cid);
    }

    state_->traces().set_user(*trace, verdict.claims.sub);
    state_->record(*trace, Stage::auth_verify_jwt, Outcome::ok,
                   std::string(jwt_alg_name(state_->config().jwt.alg)) + " token from " +
                       std::string(token_source_name(source.from)) + ", sub=" + verdict.claims.sub);
    WSG_LOG(spdlog::level::debug, cid, "auth ok: sub={} token from {}", verdict.claims.sub,
            token_source_name(source.from));

    HandshakeInfo info;
    info.correlation_id = std::move(cid);
    info.trace = std::move(trace);
    info.claims = std::move(verdict.claims);
    info.select_jwt_auth = source.offered_jwt_auth;
    if (auto h = req.find("X-Thread-ID"); h != req.end())
      info.header_thread_id = std::string(h->value());
    info.query_thread_id = query_param(query, "thread_id");

    stream_.expires_never();
    start_websocket_session(stream_.release_socket(), state_, std::move(info), parser_->release());
  }

  void respond_json(http::status status, std::string body, const std::string& cid) {
    response_.emplace();
    response_->version(11);
    response_->result(status);
    response_->set(http::field::server, "wsgate-backend");
    response_->set(http::field::content_type, "application/json");
    response_->set(http::field::cache_control, "no-store");
    if (!cid.empty()) response_->set(kCorrelationHeader, cid);
    if (status == http::status::unauthorized)
      response_->set(http::field::www_authenticate, R"(Bearer realm="wsgate-backend")");
    response_->keep_alive(false);
    response_->body() = std::move(body);
    response_->prepare_payload();
    http::async_write(
        stream_, *response_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    if (ec) return;  // the peer is gone; nothing to tell it
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  std::shared_ptr<SharedState> state_;
};

}  // namespace

void start_http_session(tcp::socket socket, std::shared_ptr<SharedState> state) {
  std::make_shared<HttpSession>(std::move(socket), std::move(state))->run();
}

}  // namespace wsgate::backend
