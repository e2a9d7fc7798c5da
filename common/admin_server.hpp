#pragma once
// A small HTTP/1.1 server for operational endpoints (/metrics, /healthz,
// ...). Handlers are plain functions from request to response and run on the
// io_context's threads; they must not block.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace wsgate {

struct AdminRequest {
  std::string method;
  std::string path;   // without the query
  std::string query;  // without the '?'
  std::string accept; // the Accept header, for content negotiation
  // Value of query parameter `name`, percent-decoded; empty when absent.
  std::string param(std::string_view name) const;
};

struct AdminResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  static AdminResponse json(unsigned status, std::string body);
  static AdminResponse text(unsigned status, std::string body);
};

using AdminHandler = std::function<AdminResponse(const AdminRequest&)>;

class AdminServer {
 public:
  AdminServer(boost::asio::io_context& ioc, const boost::asio::ip::tcp::endpoint& endpoint);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // `pattern` is an exact path ("/metrics") or a prefix ending in '/'
  // ("/incidents/"); exact matches win, then the longest prefix.
  void handle(std::string pattern, AdminHandler handler);
  void start();
  void stop();
  boost::asio::ip::tcp::endpoint local_endpoint() const;

 struct Impl;  // opaque; public so the .cpp's session type can name it

 private:
  std::shared_ptr<Impl> impl_;
};

std::string percent_decode(std::string_view in);

}  // namespace wsgate
