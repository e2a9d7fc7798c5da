#include "common/admin_server.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

namespace wsgate {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string_view to_string(AdminError e) {
  switch (e) {
    case AdminError::bad_request:
      return "bad_request";
    case AdminError::bad_target:
      return "bad_target";
    case AdminError::header_too_large:
      return "header_too_large";
    case AdminError::body_too_large:
      return "body_too_large";
    case AdminError::method_not_allowed:
      return "method_not_allowed";
    case AdminError::unauthorized:
      return "unauthorized";
    case AdminError::handler_exception:
      return "handler_exception";
    case AdminError::write_timeout:
      return "write_timeout";
    case AdminError::accept_failed:
      return "accept_failed";
    case AdminError::count_:
      break;
  }
  return "unknown";
}

std::string percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2])));
      i += 2;
    } else if (in[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Walks the longer of the two whatever they hold, so the time tells
  // nothing about where they differ.
  const std::size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
    const auto y = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    diff = static_cast<unsigned char>(diff | (x ^ y));
  }
  return diff == 0;
}

std::optional<std::string> read_token_file(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read '" + path + "'";
    return std::nullopt;
  }
  std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (token.empty()) {
    error = "'" + path + "' is empty";
    return std::nullopt;
  }
  return token;
}

std::string AdminRequest::param(std::string_view name) const {
  std::string_view q = query;
  while (!q.empty()) {
    auto amp = q.find('&');
    auto pair = q.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == name)
      return eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return {};
}

std::string dump_json(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

AdminResponse AdminResponse::json(unsigned status, std::string body) {
  return AdminResponse{status, "application/json", std::move(body), {}};
}
AdminResponse AdminResponse::text(unsigned status, std::string body) {
  return AdminResponse{status, "text/plain; charset=utf-8", std::move(body), {}};
}
AdminResponse AdminResponse::json_error(unsigned status, std::string_view message) {
  return json(status, dump_json(nlohmann::json{{"error", message}}) + "\n");
}

namespace {

constexpr const char* kAllowedMethods = "GET, HEAD";

// Targets are ASCII: a byte >= 0x80 or a control byte, as sent or once
// percent-decoded, is never part of a path or parameter we serve, and
// refusing it here keeps such bytes out of every handler and answer.
bool clean_target_part(std::string_view raw) {
  auto bad = [](unsigned char c) { return c < 0x20 || c >= 0x7f; };
  if (std::any_of(raw.begin(), raw.end(),
                  [&](char c) { return bad(static_cast<unsigned char>(c)); }))
    return false;
  if (raw.find('%') == std::string_view::npos) return true;
  auto decoded = percent_decode(raw);
  return std::none_of(decoded.begin(), decoded.end(),
                      [&](char c) { return bad(static_cast<unsigned char>(c)); });
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The credentials of `Authorization: Bearer <token>`; empty for any other form.
std::string_view bearer_credentials(std::string_view header) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  header = trim(header);
  constexpr std::string_view kScheme = "bearer";
  if (header.size() <= kScheme.size() || !iequals(header.substr(0, kScheme.size()), kScheme) ||
      (header[kScheme.size()] != ' ' && header[kScheme.size()] != '\t'))
    return {};
  return trim(header.substr(kScheme.size()));
}

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;
using Parser = http::request_parser<http::string_body>;

void configure(Parser& parser, const AdminLimits& limits) {
  parser.header_limit(static_cast<std::uint32_t>(
      std::min<std::size_t>(limits.header_limit, std::numeric_limits<std::uint32_t>::max())));
  parser.body_limit(limits.body_limit);
}

Response to_http(AdminResponse out, bool head, unsigned version, bool keep_alive) {
  Response res;
  res.version(version);
  res.result(out.status);
  res.set(http::field::server, "wsgate-admin");
  res.set(http::field::content_type, out.content_type);
  res.set(http::field::cache_control, "no-store");
  for (auto& [name, value] : out.headers) res.set(name, value);
  res.keep_alive(keep_alive);
  if (head) {
    // What a GET would say, without the body (RFC 9110 9.3.2).
    res.content_length(out.body.size());
  } else {
    res.body() = std::move(out.body);
    res.prepare_payload();
  }
  return res;
}

Response answer(const AdminRouter& router, const Request& msg) {
  AdminRequest req;
  req.method = std::string(msg.method_string());
  std::string_view target = msg.target();
  auto q = target.find('?');
  req.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
  req.accept = std::string(msg[http::field::accept]);
  req.authorization = std::string(msg[http::field::authorization]);
  return to_http(router.dispatch(req), req.method == "HEAD", msg.version(), msg.keep_alive());
}

// The answer to a request the parser refused; none when the peer went away
// or timed out (nothing to answer). The connection closes after it.
std::optional<Response> answer_failure(const AdminRouter& router, beast::error_code ec) {
  auto refuse = [](unsigned status, std::string_view why) {
    return to_http(AdminResponse::json_error(status, why), false, 11, false);
  };
  if (ec == http::error::header_limit) {
    router.count(AdminError::header_too_large);
    return refuse(431, "request header too large");
  }
  if (ec == http::error::body_limit) {
    router.count(AdminError::body_too_large);
    return refuse(413, "request body too large");
  }
  if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
      ec == http::error::need_more ||
      ec.category() != http::make_error_code(http::error::bad_target).category())
    return std::nullopt;
  router.count(AdminError::bad_request);
  return refuse(400, "malformed request");
}

std::string serialize(const Response& res) {
  std::ostringstream out;
  out << res;
  return out.str();
}

}  // namespace

void AdminRouter::handle(std::string pattern, AdminHandler handler, AdminAccess access) {
  std::lock_guard lock(routes_mutex_);
  routes_[std::move(pattern)] = Route{std::move(handler), access};
}

void AdminRouter::require_token(std::string token, TokenScope scope) {
  token_ = std::move(token);
  scope_ = scope;
}

void AdminRouter::count(AdminError e) const {
  if (error_hook_) error_hook_(e);
}

bool AdminRouter::authorized(const AdminRequest& req, AdminAccess access) const {
  if (token_.empty() || (access == AdminAccess::open && scope_ == TokenScope::users)) return true;
  auto given = bearer_credentials(req.authorization);
  return !given.empty() && constant_time_equal(given, token_);
}

AdminResponse AdminRouter::dispatch(const AdminRequest& req) const {
  if (!clean_target_part(req.path) || !clean_target_part(req.query)) {
    count(AdminError::bad_target);
    return AdminResponse::json_error(400, "the request target must be printable ASCII");
  }
  std::optional<Route> route;
  {
    std::lock_guard lock(routes_mutex_);
    auto exact = routes_.find(req.path);
    if (exact != routes_.end()) {
      route = exact->second;
    } else {
      std::size_t best = 0;
      for (auto& [pattern, r] : routes_) {
        if (pattern.back() == '/' && req.path.starts_with(pattern) && pattern.size() > best) {
          best = pattern.size();
          route = r;
        }
      }
    }
  }
  if (!authorized(req, route ? route->access : AdminAccess::open)) {
    count(AdminError::unauthorized);
    auto out = AdminResponse::json_error(401, "a bearer token is required");
    out.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"wsgate-admin\"");
    return out;
  }
  if (!route) return AdminResponse::json_error(404, "not found");
  if (req.method != "GET" && req.method != "HEAD") {
    count(AdminError::method_not_allowed);
    auto out = AdminResponse::json_error(405, "method not allowed");
    out.headers.emplace_back("Allow", kAllowedMethods);
    return out;
  }
  // The boundary between a handler and the process: whatever it throws ends
  // this request, not the binary and every session it relays.
  try {
    return route->handler(req);
  } catch (const std::exception& e) {
    spdlog::warn("admin: {} {} failed: {}", req.method, req.path, e.what());
  } catch (...) {
    spdlog::warn("admin: {} {} failed with a non-standard exception", req.method, req.path);
  }
  count(AdminError::handler_exception);
  return AdminResponse::json_error(500, "internal error");
}

std::string AdminRouter::respond(std::string_view raw) const {
  Parser parser;
  configure(parser, limits_);
  parser.eager(true);
  beast::error_code ec;
  std::size_t used = 0;
  while (!parser.is_done()) {
    const auto n = parser.put(net::const_buffer(raw.data() + used, raw.size() - used), ec);
    used += n;
    if (ec == http::error::need_more || (!ec && n == 0)) {
      // Everything was given: the peer stopped here.
      ec = {};
      if (parser.got_some())
        parser.put_eof(ec);
      else
        ec = http::error::end_of_stream;
      if (!ec && !parser.is_done()) ec = http::error::partial_message;
    }
    if (ec) break;
  }
  if (ec) {
    auto res = answer_failure(*this, ec);
    return res ? serialize(*res) : std::string();
  }
  return serialize(answer(*this, parser.get()));
}

struct AdminServer::Impl : std::enable_shared_from_this<AdminServer::Impl> {
  net::io_context& ioc;
  tcp::acceptor acceptor;
  net::steady_timer accept_backoff;
  AdminRouter router;

  Impl(net::io_context& io, const tcp::endpoint& ep) : ioc(io), acceptor(io), accept_backoff(io) {
    acceptor.open(ep.protocol());
    acceptor.set_option(net::socket_base::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen(net::socket_base::max_listen_connections);
  }

  void do_accept() {
    acceptor.async_accept(net::make_strand(ioc),
                          [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
                            self->on_accept(ec, std::move(socket));
                          });
  }
  void on_accept(beast::error_code ec, tcp::socket socket);
};

namespace {

// One admin connection: read a request, answer it, repeat while keep-alive.
class AdminSession : public std::enable_shared_from_this<AdminSession> {
 public:
  AdminSession(tcp::socket socket, std::shared_ptr<AdminServer::Impl> server)
      : stream_(std::move(socket)), server_(std::move(server)) {}

  void run() { do_read(); }

 private:
  const AdminRouter& router() const { return server_->router; }

  void do_read() {
    parser_.emplace();
    configure(*parser_, router().limits());
    stream_.expires_after(router().limits().read_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      auto refusal = answer_failure(router(), ec);
      if (!refusal) return close();
      return write(std::move(*refusal));
    }
    write(answer(router(), parser_->get()));
  }

  void write(Response res) {
    response_ = std::move(res);
    stream_.expires_after(router().limits().write_timeout);
    http::async_write(
        stream_, response_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    if (ec == beast::error::timeout) router().count(AdminError::write_timeout);
    if (ec) return;
    if (!response_.keep_alive()) return linger();
    do_read();
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  // After a refusal the peer may still be sending (the rest of a huge
  // header): read and drop it for a moment, so closing does not reset the
  // connection before the peer has read the answer.
  void linger() {
    close();
    stream_.expires_after(std::chrono::seconds(1));
    drain();
  }
  void drain() {
    stream_.async_read_some(net::buffer(drain_buffer_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (!ec) self->drain();
                            });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  Response response_;
  std::array<char, 4096> drain_buffer_{};
  std::shared_ptr<AdminServer::Impl> server_;
};

}  // namespace

void AdminServer::Impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
  if (!ec) {
    std::make_shared<AdminSession>(std::move(socket), shared_from_this())->run();
    return do_accept();
  }
  // Out of descriptors and the like: retrying at once would spin while
  // nothing frees up.
  router.count(AdminError::accept_failed);
  spdlog::debug("admin: accept failed: {}", ec.message());
  accept_backoff.expires_after(std::chrono::milliseconds(100));
  accept_backoff.async_wait([self = shared_from_this()](beast::error_code wec) {
    if (!wec && self->acceptor.is_open()) self->do_accept();
  });
}

AdminServer::AdminServer(net::io_context& ioc, const tcp::endpoint& endpoint)
    : impl_(std::make_shared<Impl>(ioc, endpoint)) {}

AdminServer::~AdminServer() { stop(); }

AdminRouter& AdminServer::router() { return impl_->router; }

void AdminServer::start() { impl_->do_accept(); }

void AdminServer::stop() {
  net::post(impl_->acceptor.get_executor(), [impl = impl_] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
    impl->accept_backoff.cancel();
  });
}

tcp::endpoint AdminServer::local_endpoint() const { return impl_->acceptor.local_endpoint(); }

}  // namespace wsgate
