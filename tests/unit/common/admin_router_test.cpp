// AdminRouter::respond: the bytes of one request in, the bytes of the answer
// out, as a connection of the admin server answers it; and the server's
// deadlines against a client that does not read.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "common/admin_server.hpp"

using namespace wsgate;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

struct Answer {
  unsigned status = 0;
  std::string head;
  std::string body;
  std::string header(std::string_view name) const {
    auto at = head.find("\r\n" + std::string(name) + ": ");
    if (at == std::string::npos) return {};
    at += name.size() + 4;
    return head.substr(at, head.find("\r\n", at) - at);
  }
};

Answer parse(const std::string& raw) {
  Answer a;
  auto end = raw.find("\r\n\r\n");
  if (raw.size() < 12 || end == std::string::npos) return a;
  a.status = static_cast<unsigned>(std::stoi(raw.substr(9, 3)));
  a.head = raw.substr(0, end + 2);
  a.body = raw.substr(end + 4);
  return a;
}

std::string get(std::string_view target, std::string_view method = "GET",
                std::string_view extra = "") {
  return std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: x\r\n" +
         std::string(extra) + "\r\n";
}

// A router with the shapes of the binaries' routes: open, for users, a
// prefix whose handler echoes its parameter in an error, and handlers that
// throw.
struct Fixture {
  AdminRouter router;
  std::array<int, kAdminErrorKinds> errors{};
  int calls = 0;

  Fixture() {
    router.set_error_hook([this](AdminError e) { ++errors[static_cast<std::size_t>(e)]; });
    router.handle("/healthz", [this](const AdminRequest&) {
      ++calls;
      return AdminResponse::text(200, "ok\n");
    });
    router.handle(
        "/items",
        [this](const AdminRequest& r) {
          ++calls;
          return AdminResponse::json_error(400, "bad code '" + r.param("code") + "'");
        },
        AdminAccess::users);
    router.handle(
        "/items/",
        [this](const AdminRequest& r) {
          ++calls;
          return AdminResponse::json(200, dump_json({{"id", percent_decode(r.path.substr(7))}}));
        },
        AdminAccess::users);
    router.handle("/throws", [](const AdminRequest&) -> AdminResponse {
      throw std::runtime_error("boom \xff");
    });
    router.handle("/throws-int", [](const AdminRequest&) -> AdminResponse { throw 42; });
  }
  int count(AdminError e) const { return errors[static_cast<std::size_t>(e)]; }
  Answer ask(const std::string& raw) { return parse(router.respond(raw)); }
};

}  // namespace

TEST(AdminRouter, AnswersAndRoutes) {
  Fixture f;
  auto a = f.ask(get("/healthz"));
  EXPECT_EQ(a.status, 200u);
  EXPECT_EQ(a.body, "ok\n");
  a = f.ask(get("/items/abc%2Dd?x=1"));
  EXPECT_EQ(a.status, 200u);
  EXPECT_EQ(a.body, R"({"id":"abc-d"})");
  EXPECT_EQ(a.header("Content-Type"), "application/json");
  EXPECT_EQ(f.ask(get("/nope")).status, 404u);
}

TEST(AdminRouter, BytesOutsideAsciiInTheTargetAre400NeverAHandler) {
  Fixture f;
  for (std::string target :
       {"/items?code=%FF", "/items/%FF", "/items?since=%FF", "/items?limit=%C3%28", "/items/\xff",
        "/items?code=\xc3\x28", "/items?code=%00", "/healthz%0a", "/items?%FF=1"}) {
    auto a = f.ask(get(target));
    EXPECT_EQ(a.status, 400u) << target;
    EXPECT_EQ(a.header("Content-Type"), "application/json") << target;
    EXPECT_TRUE(nlohmann::json::accept(a.body)) << target;
  }
  EXPECT_EQ(f.calls, 0);
  EXPECT_EQ(f.count(AdminError::bad_target), 9);
}

TEST(AdminRouter, JsonWithInvalidUtf8IsDumpedNotThrown) {
  nlohmann::json j = {{"error", "code '\xff\xc3\x28'"}};
  std::string out;
  ASSERT_NO_THROW(out = dump_json(j));
  EXPECT_NE(out.find("\xef\xbf\xbd"), std::string::npos);  // U+FFFD
  ASSERT_NO_THROW(out = AdminResponse::json_error(400, "\xff").body);
  EXPECT_TRUE(nlohmann::json::accept(out));
}

TEST(AdminRouter, OtherMethodsAre405WithAllow) {
  Fixture f;
  for (std::string method : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "BREW"}) {
    auto a = f.ask(get("/healthz", method, "Content-Length: 0\r\n"));
    EXPECT_EQ(a.status, 405u) << method;
    EXPECT_EQ(a.header("Allow"), "GET, HEAD") << method;
  }
  EXPECT_EQ(f.calls, 0);
  EXPECT_EQ(f.count(AdminError::method_not_allowed), 7);
}

TEST(AdminRouter, HeadHasTheGetsLengthAndNoBody) {
  Fixture f;
  auto g = f.ask(get("/items/abcdef"));
  auto h = parse(f.router.respond(get("/items/abcdef", "HEAD")));
  EXPECT_EQ(h.status, 200u);
  EXPECT_EQ(h.header("Content-Length"), std::to_string(g.body.size()));
  EXPECT_EQ(h.body, "");
  EXPECT_EQ(h.header("Content-Type"), g.header("Content-Type"));
}

TEST(AdminRouter, OversizedHeaderIs431AndGarbageIs400) {
  Fixture f;
  auto a = f.ask(get("/healthz", "GET", "X-Big: " + std::string(20 * 1024, 'a') + "\r\n"));
  EXPECT_EQ(a.status, 431u);
  EXPECT_EQ(a.header("Connection"), "close");
  EXPECT_EQ(f.count(AdminError::header_too_large), 1);

  a = f.ask("GET /healthz HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n");
  EXPECT_EQ(a.status, 413u);

  for (std::string raw : {"GARBAGE\r\n\r\n", "GET /healthz HTTP/9.9\r\n\r\n",
                          "GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n",
                          "GET /healthz HTTP/1.1\r\nContent-Length: x\r\n\r\n"}) {
    EXPECT_EQ(f.ask(raw).status, 400u) << raw;
  }
  EXPECT_EQ(f.count(AdminError::bad_request), 4);
  // Incomplete: a connection would wait, then close without an answer.
  EXPECT_EQ(f.router.respond("GET /healthz HTTP/1.1\r\nHost"), "");
  EXPECT_EQ(f.router.respond(""), "");
}

TEST(AdminRouter, HandlerExceptionsAre500AndCounted) {
  Fixture f;
  auto a = f.ask(get("/throws"));
  EXPECT_EQ(a.status, 500u);
  EXPECT_TRUE(nlohmann::json::accept(a.body));
  EXPECT_EQ(f.ask(get("/throws-int")).status, 500u);
  EXPECT_EQ(f.count(AdminError::handler_exception), 2);
}

TEST(AdminRouter, TokenGuardsUserRoutesAndWithScopeAllEverything) {
  Fixture f;
  f.router.require_token("s3cret-token", TokenScope::users);
  auto a = f.ask(get("/items/x"));
  EXPECT_EQ(a.status, 401u);
  EXPECT_EQ(a.header("WWW-Authenticate").rfind("Bearer", 0), 0u);
  EXPECT_EQ(f.ask(get("/items/x", "GET", "Authorization: Bearer wrong\r\n")).status, 401u);
  EXPECT_EQ(f.ask(get("/items/x", "GET", "Authorization: Bearer s3cret-token-\r\n")).status, 401u);
  EXPECT_EQ(f.ask(get("/items/x", "GET", "Authorization: Basic s3cret-token\r\n")).status, 401u);
  EXPECT_EQ(f.ask(get("/items/x", "GET", "Authorization: Bearer s3cret-token\r\n")).status, 200u);
  EXPECT_EQ(f.ask(get("/items/x", "GET", "Authorization: bearer  s3cret-token \r\n")).status, 200u);
  EXPECT_EQ(f.ask(get("/items?code=1")).status, 401u);
  EXPECT_EQ(f.ask(get("/healthz")).status, 200u);
  EXPECT_EQ(f.count(AdminError::unauthorized), 5);

  f.router.require_token("s3cret-token", TokenScope::all);
  EXPECT_EQ(f.ask(get("/healthz")).status, 401u);
  EXPECT_EQ(f.ask(get("/nope")).status, 401u);
  EXPECT_EQ(f.ask(get("/healthz", "GET", "Authorization: Bearer s3cret-token\r\n")).status, 200u);
}

TEST(AdminRouter, ConstantTimeEqualAndTokenFiles) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_FALSE(constant_time_equal("", "a"));

  auto dir = std::filesystem::temp_directory_path() / ("admin-token-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "good") << "tok en\n \t\n";
  std::ofstream(dir / "empty") << " \n";
  std::string error;
  EXPECT_EQ(read_token_file((dir / "good").string(), error), "tok en");
  EXPECT_FALSE(read_token_file((dir / "empty").string(), error));
  EXPECT_NE(error.find("empty"), std::string::npos);
  EXPECT_FALSE(read_token_file((dir / "missing").string(), error));
  std::filesystem::remove_all(dir);
}

TEST(AdminServer, ClientThatDoesNotReadIsDroppedAtTheWriteDeadline) {
  net::io_context ioc;
  AdminServer server(ioc, {net::ip::make_address("127.0.0.1"), 0});
  std::atomic<int> write_timeouts{0};
  server.router().set_error_hook([&](AdminError e) {
    if (e == AdminError::write_timeout) ++write_timeouts;
  });
  AdminLimits limits;
  limits.write_timeout = std::chrono::milliseconds(300);
  server.router().set_limits(limits);
  // Far more than the socket buffers on both sides hold.
  const std::string big(64 << 20, 'x');
  server.handle("/big", [&](const AdminRequest&) { return AdminResponse::text(200, big); });
  server.handle("/healthz", [](const AdminRequest&) { return AdminResponse::text(200, "ok\n"); });
  server.start();
  auto port = server.local_endpoint().port();
  std::thread t([&] { ioc.run(); });

  net::io_context client;
  tcp::socket slow(client);
  slow.open(tcp::v4());
  slow.set_option(net::socket_base::receive_buffer_size(4096));
  slow.connect({net::ip::make_address("127.0.0.1"), port});
  net::write(slow, net::buffer(get("/big")));

  // Meanwhile another client is answered.
  tcp::socket other(client);
  other.connect({net::ip::make_address("127.0.0.1"), port});
  net::write(other, net::buffer(std::string("GET /healthz HTTP/1.0\r\n\r\n")));
  std::string answer;
  boost::system::error_code ec;
  net::read(other, net::dynamic_buffer(answer), ec);
  EXPECT_NE(answer.find("200 OK"), std::string::npos);

  for (int i = 0; i < 100 && write_timeouts.load() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(write_timeouts.load(), 1);
  // The connection is gone: reading what was buffered ends well short of it.
  std::string got;
  net::read(slow, net::dynamic_buffer(got), ec);
  EXPECT_TRUE(ec);
  EXPECT_LT(got.size(), big.size());

  server.stop();
  ioc.stop();
  t.join();
}

TEST(AdminServer, OversizedHeaderGets431BeforeTheClose) {
  net::io_context ioc;
  AdminServer server(ioc, {net::ip::make_address("127.0.0.1"), 0});
  server.handle("/healthz", [](const AdminRequest&) { return AdminResponse::text(200, "ok\n"); });
  server.start();
  auto port = server.local_endpoint().port();
  std::thread t([&] { ioc.run(); });

  net::io_context client;
  tcp::socket s(client);
  s.connect({net::ip::make_address("127.0.0.1"), port});
  net::write(s,
             net::buffer(get("/healthz", "GET", "X-Big: " + std::string(20 * 1024, 'a') + "\r\n")));
  std::string answer;
  boost::system::error_code ec;
  net::read(s, net::dynamic_buffer(answer), ec);
  EXPECT_EQ(answer.rfind("HTTP/1.1 431", 0), 0u) << answer;

  server.stop();
  ioc.stop();
  t.join();
}
