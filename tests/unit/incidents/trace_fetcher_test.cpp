// The trace fetcher against a scripted local HTTP server: success, retries
// on 404 and refused connections, timeouts, bad bodies.
#include "proxy/incidents/trace_fetcher.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <memory>

using namespace wsgate::proxy::incidents;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

std::string http(unsigned status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

// Answers the n-th request with responses[n] (the last one repeats); an
// empty response means: read the request, never answer.
class ScriptedServer {
 public:
  ScriptedServer(net::io_context& ioc, std::vector<std::string> responses)
      : acceptor_(ioc, {net::ip::make_address("127.0.0.1"), 0}), responses_(std::move(responses)) {
    accept();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int requests = 0;
  std::string last_request;

 private:
  struct Conn {
    explicit Conn(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    std::string buf;
  };
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
      if (ec) return;
      auto c = std::make_shared<Conn>(std::move(s));
      net::async_read_until(c->socket, net::dynamic_buffer(c->buf), "\r\n\r\n",
                            [this, c](boost::system::error_code ec2, std::size_t) {
                              if (ec2) return;
                              last_request = c->buf;
                              auto& r = responses_[std::min<std::size_t>(requests, responses_.size() - 1)];
                              ++requests;
                              if (r.empty()) {
                                held_.push_back(c);
                                return;
                              }
                              net::async_write(c->socket, net::buffer(r),
                                               [c](boost::system::error_code, std::size_t) {});
                            });
      accept();
    });
  }
  tcp::acceptor acceptor_;
  std::vector<std::string> responses_;
  std::vector<std::shared_ptr<Conn>> held_;
};

TraceFetchResult run(net::io_context& ioc, const std::string& url, FetchOptions opts = {}) {
  std::optional<TraceFetchResult> result;
  fetch_trace(ioc, url, opts, [&](TraceFetchResult r) {
    result = std::move(r);
    ioc.stop();
  });
  ioc.run_for(10s);
  EXPECT_TRUE(result.has_value());
  return result.value_or(TraceFetchResult{});
}

std::uint16_t closed_port() {
  net::io_context ioc;
  tcp::acceptor a(ioc, {net::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();  // closed when `a` goes
}

}  // namespace

TEST(TraceFetcher, FetchesTheTrace) {
  net::io_context ioc;
  ScriptedServer server(ioc, {http(200, R"({"correlation_id":"abc","stages":[]})")});
  auto r = run(ioc, "http://127.0.0.1:" + std::to_string(server.port()) + "/debug/traces/abc");
  EXPECT_EQ(r.outcome, FetchOutcome::ok);
  EXPECT_EQ(r.trace["correlation_id"], "abc");
  EXPECT_EQ(r.attempts, 1u);
  EXPECT_EQ(server.last_request.rfind("GET /debug/traces/abc HTTP/1.1\r\n", 0), 0u) << server.last_request;
}

TEST(TraceFetcher, RetriesA404UntilTheTraceAppears) {
  net::io_context ioc;
  ScriptedServer server(ioc, {http(404, "{}"), http(200, R"({"stages":[]})")});
  auto r = run(ioc, "http://127.0.0.1:" + std::to_string(server.port()) + "/t/x");
  EXPECT_EQ(r.outcome, FetchOutcome::ok);
  EXPECT_EQ(r.attempts, 2u);
  EXPECT_EQ(server.requests, 2);
}

TEST(TraceFetcher, GivesUpOn404AfterThreeTries) {
  net::io_context ioc;
  ScriptedServer server(ioc, {http(404, R"({"error":"unknown"})")});
  FetchOptions opts;
  opts.retry_delays = {10ms, 10ms};
  auto r = run(ioc, "http://127.0.0.1:" + std::to_string(server.port()) + "/t/x", opts);
  EXPECT_EQ(r.outcome, FetchOutcome::not_found);
  EXPECT_EQ(r.error, "HTTP 404 after 3 tries");
  EXPECT_EQ(server.requests, 3);
}

TEST(TraceFetcher, ConnectionRefusedIsRetriedThenRecorded) {
  net::io_context ioc;
  FetchOptions opts;
  opts.retry_delays = {10ms, 10ms};
  auto r = run(ioc, "http://127.0.0.1:" + std::to_string(closed_port()) + "/t/x", opts);
  EXPECT_EQ(r.outcome, FetchOutcome::refused);
  EXPECT_EQ(r.error, "connection refused after 3 tries");
  EXPECT_EQ(r.attempts, 3u);
}

TEST(TraceFetcher, TimesOutWithoutRetrying) {
  net::io_context ioc;
  ScriptedServer server(ioc, {""});
  FetchOptions opts;
  opts.timeout = 200ms;
  auto start = std::chrono::steady_clock::now();
  auto r = run(ioc, "http://127.0.0.1:" + std::to_string(server.port()) + "/t/x", opts);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.outcome, FetchOutcome::timeout);
  EXPECT_EQ(r.error, "timeout after 200 ms");
  EXPECT_EQ(server.requests, 1);
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 2s);
}

TEST(TraceFetcher, OtherStatusAndBadBodies) {
  {
    net::io_context ioc;
    ScriptedServer server(ioc, {http(500, "boom")});
    auto r = run(ioc, "http://127.0.0.1:" + std::to_string(server.port()) + "/t");
    EXPECT_EQ(r.outcome, FetchOutcome::http_error);
    EXPECT_EQ(r.error, "HTTP 500");
    EXPECT_EQ(server.requests, 1);
  }
  {
    net::io_context ioc;
    ScriptedServer server(ioc, {http(200, "<html>")});
    auto r = run(ioc, "http://127.0.0.1:" + std::to_string(server.port()) + "/t");
    EXPECT_EQ(r.outcome, FetchOutcome::bad_response);
    EXPECT_EQ(r.error, "trace is not a JSON object");
  }
}

TEST(TraceFetcher, UnsupportedUrls) {
  net::io_context ioc;
  auto r = run(ioc, "https://backend/debug/traces/x");
  EXPECT_EQ(r.outcome, FetchOutcome::error);
  EXPECT_EQ(r.error, "https trace URLs are not supported (use http://)");
  net::io_context ioc2;
  EXPECT_EQ(run(ioc2, "http://user:pw@backend/x").error, "trace URL must not carry credentials");
}

TEST(TraceFetcher, DeeplyNestedTraceIsRefusedBeforeParsing) {
  // ~100 KB, under the body cap, an object so it would pass the shape check.
  const std::string body =
      R"({"stages":)" + std::string(50000, '[') + std::string(50000, ']') + "}";
  net::io_context ioc;
  ScriptedServer server(ioc, {http(200, body)});
  auto r = run(ioc, "http://127.0.0.1:" + std::to_string(server.port()) + "/t");
  EXPECT_EQ(r.outcome, FetchOutcome::too_deep);
  EXPECT_EQ(r.error, "trace nested deeper than 64 levels");
  EXPECT_TRUE(r.trace.is_null());
  EXPECT_EQ(to_string(r.outcome), "too_deep");
}
