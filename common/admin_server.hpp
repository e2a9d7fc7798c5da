#pragma once
// A small HTTP/1.1 server for operational endpoints (/metrics, /healthz,
// ...). Handlers are plain functions from request to response; they run on
// the io_context the server was given (the proxy gives it one of its own, off
// the relay's threads) and must not block.
//
// AdminRouter is the transport-free half: the route table, the checks every
// request goes through (target bytes, bearer token, method) and the step from
// the bytes of one request to the bytes of its answer (respond()), which the
// fuzzers and unit tests drive without a socket. AdminServer adds the
// listener and the connections, and answers through the same code.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/admin_errors.hpp"

namespace wsgate {

struct AdminRequest {
  std::string method;
  std::string path;    // without the query
  std::string query;   // without the '?'
  std::string accept;  // the Accept header, for content negotiation
  std::string authorization;
  // Value of query parameter `name`, percent-decoded; empty when absent.
  std::string param(std::string_view name) const;
};

struct AdminResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // beyond the standard ones
  static AdminResponse json(unsigned status, std::string body);
  static AdminResponse text(unsigned status, std::string body);
  // {"error": message}; bytes that are not UTF-8 are replaced, never thrown on.
  static AdminResponse json_error(unsigned status, std::string_view message);
};

// nlohmann's dump() with invalid UTF-8 replaced by U+FFFD instead of an
// exception: every JSON answer goes through this.
std::string dump_json(const nlohmann::json& value);

using AdminHandler = std::function<AdminResponse(const AdminRequest&)>;

// Who may call a route once a token is configured: `users` routes name users
// and sessions (incidents, connections, traces) and always need the token;
// `open` ones (metrics, health) need it only with TokenScope::all.
enum class AdminAccess : std::uint8_t { open, users };
enum class TokenScope : std::uint8_t { users, all };

struct AdminLimits {
  std::size_t header_limit = 16 * 1024;
  std::size_t body_limit = 64 * 1024;
  // From the start of a request (or of keep-alive idleness) to its last byte.
  std::chrono::milliseconds read_timeout{30000};
  // From the answer's first byte to its last: a client that stops reading
  // loses the connection after this long.
  std::chrono::milliseconds write_timeout{10000};
};

class AdminRouter {
 public:
  // `pattern` is an exact path ("/metrics") or a prefix ending in '/'
  // ("/incidents/"); exact matches win, then the longest prefix. Every route
  // serves GET and HEAD.
  void handle(std::string pattern, AdminHandler handler, AdminAccess access = AdminAccess::open);

  // Configuration; call before the server starts.
  // Empty token: no access control.
  void require_token(std::string token, TokenScope scope);
  void set_error_hook(std::function<void(AdminError)> hook) { error_hook_ = std::move(hook); }
  void set_limits(const AdminLimits& limits) { limits_ = limits; }
  const AdminLimits& limits() const { return limits_; }

  // The checks and the handler for one parsed request: target bytes (400),
  // route (404), token (401), method (405), then the handler, whose
  // exceptions become a 500. Never throws.
  AdminResponse dispatch(const AdminRequest& req) const;

  // The bytes of one request in, the bytes of its answer out, through the
  // same parser settings and answer code as a connection: what a session
  // does with one request, minus the socket. Empty when a connection would
  // close without answering (incomplete request).
  std::string respond(std::string_view raw) const;

  void count(AdminError e) const;

 private:
  struct Route {
    AdminHandler handler;
    AdminAccess access;
  };
  bool authorized(const AdminRequest& req, AdminAccess access) const;

  mutable std::mutex routes_mutex_;
  std::map<std::string, Route, std::less<>> routes_;
  std::string token_;
  TokenScope scope_ = TokenScope::users;
  std::function<void(AdminError)> error_hook_;
  AdminLimits limits_;
};

class AdminServer {
 public:
  AdminServer(boost::asio::io_context& ioc, const boost::asio::ip::tcp::endpoint& endpoint);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  AdminRouter& router();
  void handle(std::string pattern, AdminHandler handler, AdminAccess access = AdminAccess::open) {
    router().handle(std::move(pattern), std::move(handler), access);
  }
  void start();
  // Closes the listener (posted to the server's io_context); connections end
  // when that io_context stops.
  void stop();
  boost::asio::ip::tcp::endpoint local_endpoint() const;

  struct Impl;  // opaque; public so the .cpp's session type can name it

 private:
  std::shared_ptr<Impl> impl_;
};

std::string percent_decode(std::string_view in);

// The whole of `a` against the whole of `b` in time that depends only on
// their lengths, for secrets.
bool constant_time_equal(std::string_view a, std::string_view b);

// A token file's content: read whole, trailing whitespace dropped. Empty
// optional with `error` set when it cannot be read or holds nothing.
std::optional<std::string> read_token_file(const std::string& path, std::string& error);

}  // namespace wsgate
