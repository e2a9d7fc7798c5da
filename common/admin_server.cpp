#include "common/admin_server.hpp"

#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <mutex>

namespace wsgate {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

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

AdminResponse AdminResponse::json(unsigned status, std::string body) {
  return AdminResponse{status, "application/json", std::move(body)};
}
AdminResponse AdminResponse::text(unsigned status, std::string body) {
  return AdminResponse{status, "text/plain; charset=utf-8", std::move(body)};
}

struct AdminServer::Impl : std::enable_shared_from_this<AdminServer::Impl> {
  net::io_context& ioc;
  tcp::acceptor acceptor;
  std::mutex routes_mutex;
  std::map<std::string, AdminHandler, std::less<>> routes;

  Impl(net::io_context& io, const tcp::endpoint& ep) : ioc(io), acceptor(io) {
    acceptor.open(ep.protocol());
    acceptor.set_option(net::socket_base::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen(net::socket_base::max_listen_connections);
  }

  AdminResponse dispatch(const AdminRequest& req) {
    AdminHandler handler;
    {
      std::lock_guard lock(routes_mutex);
      auto exact = routes.find(req.path);
      if (exact != routes.end()) {
        handler = exact->second;
      } else {
        std::size_t best = 0;
        for (auto& [pattern, h] : routes) {
          if (pattern.back() == '/' && req.path.starts_with(pattern) && pattern.size() > best) {
            best = pattern.size();
            handler = h;
          }
        }
      }
    }
    if (!handler) return AdminResponse::json(404, R"({"error":"not found"})");
    return handler(req);
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
  void do_read() {
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    parser_->body_limit(64 * 1024);
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream) return close();
    if (ec) return;  // peer went away or sent garbage; nothing to answer
    auto& msg = parser_->get();
    AdminRequest req;
    req.method = std::string(msg.method_string());
    std::string_view target = msg.target();
    auto q = target.find('?');
    req.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
    req.accept = std::string(msg[http::field::accept]);
    AdminResponse out = server_->dispatch(req);

    response_ = {};
    response_.version(msg.version());
    response_.result(out.status);
    response_.set(http::field::server, "wsgate-admin");
    response_.set(http::field::content_type, out.content_type);
    response_.set(http::field::cache_control, "no-store");
    response_.keep_alive(msg.keep_alive());
    if (req.method != "HEAD") response_.body() = std::move(out.body);
    response_.prepare_payload();
    http::async_write(stream_, response_,
                      [self = shared_from_this()](beast::error_code wec, std::size_t) {
                        self->on_write(wec);
                      });
  }

  void on_write(beast::error_code ec) {
    if (ec) return;
    if (!response_.keep_alive()) return close();
    do_read();
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  std::shared_ptr<AdminServer::Impl> server_;
};

}  // namespace

void AdminServer::Impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted) return;
  if (!ec) std::make_shared<AdminSession>(std::move(socket), shared_from_this())->run();
  if (acceptor.is_open()) do_accept();
}

AdminServer::AdminServer(net::io_context& ioc, const tcp::endpoint& endpoint)
    : impl_(std::make_shared<Impl>(ioc, endpoint)) {}

AdminServer::~AdminServer() { stop(); }

void AdminServer::handle(std::string pattern, AdminHandler handler) {
  std::lock_guard lock(impl_->routes_mutex);
  impl_->routes[std::move(pattern)] = std::move(handler);
}

void AdminServer::start() { impl_->do_accept(); }

void AdminServer::stop() {
  net::post(impl_->acceptor.get_executor(), [impl = impl_] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
  });
}

tcp::endpoint AdminServer::local_endpoint() const { return impl_->acceptor.local_endpoint(); }

}  // namespace wsgate
