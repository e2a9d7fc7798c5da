#include "common/admin_server.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <thread>

using namespace wsgate;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// A raw HTTP/1.0 exchange: write the request, read to EOF.
std::string exchange(std::uint16_t port, const std::string& request) {
  net::io_context ioc;
  tcp::socket s(ioc);
  s.connect({net::ip::make_address("127.0.0.1"), port});
  net::write(s, net::buffer(request));
  std::string out;
  boost::system::error_code ec;
  char buf[4096];
  for (;;) {
    auto n = s.read_some(net::buffer(buf), ec);
    out.append(buf, n);
    if (ec) break;
  }
  return out;
}

}  // namespace

TEST(AdminServer, RoutesExactPrefixAndNotFound) {
  net::io_context ioc;
  AdminServer server(ioc, {net::ip::make_address("127.0.0.1"), 0});
  server.handle("/healthz", [](const AdminRequest&) { return AdminResponse::text(200, "ok\n"); });
  server.handle("/items/", [](const AdminRequest& r) {
    return AdminResponse::json(200, "{\"path\":\"" + r.path + "\",\"code\":\"" + r.param("code") +
                                        "\"}");
  });
  server.start();
  auto port = server.local_endpoint().port();
  std::thread t([&] { ioc.run(); });

  auto health = exchange(port, "GET /healthz HTTP/1.0\r\n\r\n");
  EXPECT_NE(health.find("HTTP/1.0 200"), std::string::npos);
  EXPECT_NE(health.find("\r\n\r\nok\n"), std::string::npos);

  auto item = exchange(port, "GET /items/abc?code=10%2011&x=1 HTTP/1.0\r\n\r\n");
  EXPECT_NE(item.find("{\"path\":\"/items/abc\",\"code\":\"10 11\"}"), std::string::npos) << item;
  EXPECT_NE(item.find("application/json"), std::string::npos);

  auto missing = exchange(port, "GET /nope HTTP/1.0\r\n\r\n");
  EXPECT_NE(missing.find("HTTP/1.0 404"), std::string::npos);

  server.stop();
  ioc.stop();
  t.join();
}
