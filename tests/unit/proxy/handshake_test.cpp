#include "proxy/handshake.hpp"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>

using namespace wsgate::proxy;

namespace {

RequestHeader good_request() {
  RequestHeader r;
  r.method(http::verb::get);
  r.target("/ws?thread_id=1");
  r.version(11);
  r.set(http::field::host, "example.test");
  r.set(http::field::upgrade, "websocket");
  r.set(http::field::connection, "keep-alive, Upgrade");
  r.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  r.set(http::field::sec_websocket_version, "13");
  return r;
}

ResponseHeader good_response(const RequestHeader& req) {
  ResponseHeader r;
  r.result(http::status::switching_protocols);
  r.version(11);
  r.set(http::field::upgrade, "websocket");
  r.set(http::field::connection, "Upgrade");
  r.set(http::field::sec_websocket_accept, websocket_accept(req[http::field::sec_websocket_key]));
  return r;
}

}  // namespace

TEST(Handshake, AcceptKeyMatchesRfc6455Example) {
  EXPECT_EQ(websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(Handshake, ValidRequestPasses) {
  EXPECT_TRUE(validate_upgrade_request(good_request(), false).ok());
}

TEST(Handshake, EachRuleRefusesWithItsStatus) {
  struct Case {
    const char* name;
    void (*mutate)(RequestHeader&);
    unsigned status;
    HandshakeOutcome outcome;
  };
  const Case cases[] = {
      {"POST", [](RequestHeader& r) { r.method(http::verb::post); }, 400, HandshakeOutcome::bad_request},
      {"HTTP/1.0", [](RequestHeader& r) { r.version(10); }, 400, HandshakeOutcome::bad_request},
      {"no Host", [](RequestHeader& r) { r.erase(http::field::host); }, 400, HandshakeOutcome::bad_request},
      {"two Hosts", [](RequestHeader& r) { r.insert(http::field::host, "b"); }, 400, HandshakeOutcome::bad_request},
      {"no Upgrade", [](RequestHeader& r) { r.erase(http::field::upgrade); }, 400, HandshakeOutcome::bad_request},
      {"Upgrade h2c", [](RequestHeader& r) { r.set(http::field::upgrade, "h2c"); }, 400, HandshakeOutcome::bad_request},
      {"no Connection upgrade", [](RequestHeader& r) { r.set(http::field::connection, "keep-alive"); }, 400, HandshakeOutcome::bad_request},
      {"short key", [](RequestHeader& r) { r.set(http::field::sec_websocket_key, "c2hvcnQ="); }, 400, HandshakeOutcome::bad_request},
      {"17-byte key", [](RequestHeader& r) { r.set(http::field::sec_websocket_key, "AAAAAAAAAAAAAAAAAAAAAAA="); }, 400, HandshakeOutcome::bad_request},
      {"key with junk", [](RequestHeader& r) { r.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ!="); }, 400, HandshakeOutcome::bad_request},
      {"no key", [](RequestHeader& r) { r.erase(http::field::sec_websocket_key); }, 400, HandshakeOutcome::bad_request},
      {"version 8", [](RequestHeader& r) { r.set(http::field::sec_websocket_version, "8"); }, 426, HandshakeOutcome::version},
      {"no version", [](RequestHeader& r) { r.erase(http::field::sec_websocket_version); }, 426, HandshakeOutcome::version},
      {"absolute-form target", [](RequestHeader& r) { r.target("http://x/ws"); }, 400, HandshakeOutcome::bad_request},
  };
  for (const auto& c : cases) {
    auto r = good_request();
    c.mutate(r);
    auto refusal = validate_upgrade_request(r, false);
    EXPECT_EQ(refusal.status, c.status) << c.name;
    EXPECT_EQ(refusal.outcome, c.outcome) << c.name;
  }
  EXPECT_EQ(validate_upgrade_request(good_request(), true).status, 400u) << "body";
}

TEST(Handshake, UpstreamRequestKeepsEndToEndHeadersAndStripsHopByHop) {
  auto client = good_request();
  client.set(http::field::authorization, "Bearer abc");
  client.set(http::field::cookie, "session=1");
  client.set(http::field::sec_websocket_protocol, "jwt-auth, jwt.abc");
  client.set(http::field::sec_websocket_extensions, "permessage-deflate");
  client.set(http::field::keep_alive, "timeout=5");
  client.set(http::field::te, "trailers");
  client.set(http::field::connection, "Upgrade, X-Secret-Hop");
  client.set("X-Secret-Hop", "must go");
  client.set("X-Correlation-ID", "client-supplied");
  client.set("X-Forwarded-For", "10.1.1.1");
  ForwardContext ctx{"cid-12345678", "00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01",
                     "192.0.2.7", true, "backend:8080", "/api/ws?thread_id=1"};
  auto up = build_upstream_request(client, ctx);
  EXPECT_EQ(up.target(), "/api/ws?thread_id=1");
  EXPECT_EQ(up[http::field::host], "backend:8080");
  EXPECT_EQ(up[http::field::authorization], "Bearer abc");
  EXPECT_EQ(up[http::field::cookie], "session=1");
  EXPECT_EQ(up[http::field::sec_websocket_protocol], "jwt-auth, jwt.abc");
  EXPECT_EQ(up[http::field::sec_websocket_extensions], "permessage-deflate");
  EXPECT_EQ(up[http::field::sec_websocket_key], "dGhlIHNhbXBsZSBub25jZQ==");
  EXPECT_EQ(up.count(http::field::keep_alive), 0u);
  EXPECT_EQ(up.count(http::field::te), 0u);
  EXPECT_EQ(up.count("X-Secret-Hop"), 0u);
  EXPECT_EQ(up[http::field::connection], "Upgrade");
  EXPECT_EQ(up[http::field::upgrade], "websocket");
  EXPECT_EQ(up["X-Correlation-ID"], "cid-12345678");
  EXPECT_EQ(up.count("X-Correlation-ID"), 1u);
  EXPECT_EQ(up["X-Forwarded-For"], "10.1.1.1, 192.0.2.7");
  EXPECT_EQ(up["X-Forwarded-Proto"], "https");
  EXPECT_EQ(up["X-Forwarded-Host"], "example.test");
  EXPECT_EQ(up["traceparent"], ctx.traceparent);
}

TEST(Handshake, UpstreamResponseChecks) {
  auto req = good_request();
  req.set(http::field::sec_websocket_protocol, "chat, superchat");
  req.set(http::field::sec_websocket_extensions, "permessage-deflate; client_max_window_bits");
  EXPECT_TRUE(validate_upstream_response(good_response(req), req).ok());

  auto bad_accept = good_response(req);
  bad_accept.set(http::field::sec_websocket_accept, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
  EXPECT_EQ(validate_upstream_response(bad_accept, req).status, 502u);

  auto chosen = good_response(req);
  chosen.set(http::field::sec_websocket_protocol, "superchat");
  EXPECT_TRUE(validate_upstream_response(chosen, req).ok());
  chosen.set(http::field::sec_websocket_protocol, "other");
  EXPECT_EQ(validate_upstream_response(chosen, req).status, 502u);

  auto ext = good_response(req);
  ext.set(http::field::sec_websocket_extensions, "permessage-deflate; server_no_context_takeover");
  EXPECT_TRUE(validate_upstream_response(ext, req).ok());
  EXPECT_TRUE(deflate_negotiated(ext));
  ext.set(http::field::sec_websocket_extensions, "x-webkit-deflate-frame");
  EXPECT_EQ(validate_upstream_response(ext, req).status, 502u);

  auto no_upgrade = good_response(req);
  no_upgrade.erase(http::field::upgrade);
  EXPECT_EQ(validate_upstream_response(no_upgrade, req).status, 502u);

  ResponseHeader denied;
  denied.result(http::status::unauthorized);
  auto refusal = validate_upstream_response(denied, req);
  EXPECT_EQ(refusal.outcome, HandshakeOutcome::upstream_refused);
  EXPECT_EQ(refusal.status, 401u);

  // Not answers a client can act on: never passed through, never "ok".
  for (unsigned status : {0u, 99u, 100u, 102u, 600u, 999u}) {
    ResponseHeader odd;
    odd.result(status);
    auto r = validate_upstream_response(odd, req);
    EXPECT_EQ(r.status, 502u) << status;
    EXPECT_EQ(r.outcome, HandshakeOutcome::upstream_bad_response) << status;
  }
}

namespace {

// The 101 as Beast's parser hands it over from the wire.
ResponseHeader parse_response(const std::string& wire) {
  http::response_parser<http::empty_body> parser;
  boost::system::error_code ec;
  parser.put(boost::asio::buffer(wire), ec);
  EXPECT_FALSE(ec) << ec.message() << "\n" << wire;
  return parser.get().base();
}

std::string wire_101(const RequestHeader& req, std::string_view version, std::string_view extra) {
  return std::string(version) +
         " 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: " +
         websocket_accept(req[http::field::sec_websocket_key]) + "\r\n" + std::string(extra) +
         "\r\n";
}

}  // namespace

TEST(Handshake, Upstream101IsStrict) {
  auto req = good_request();
  auto ok = validate_upstream_response(parse_response(wire_101(req, "HTTP/1.1", "")), req);
  EXPECT_TRUE(ok.ok()) << ok.reason;

  struct Case {
    const char* what;
    std::string wire;
    std::string reason;
  };
  const std::string accept = websocket_accept(req[http::field::sec_websocket_key]);
  const Case bad[] = {
      {"HTTP/1.0", wire_101(req, "HTTP/1.0", ""), "not HTTP/1.1"},
      {"two accepts, same value",
       wire_101(req, "HTTP/1.1", "Sec-WebSocket-Accept: " + accept + "\r\n"),
       "2 Sec-WebSocket-Accept"},
      {"two accepts, one wrong",
       wire_101(req, "HTTP/1.1", "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n"),
       "2 Sec-WebSocket-Accept"},
      {"Content-Length", wire_101(req, "HTTP/1.1", "Content-Length: 5\r\n"), "Content-Length"},
      {"Content-Length 0", wire_101(req, "HTTP/1.1", "Content-Length: 0\r\n"), "Content-Length"},
      {"Transfer-Encoding", wire_101(req, "HTTP/1.1", "Transfer-Encoding: chunked\r\n"),
       "Transfer-Encoding"},
  };
  for (const auto& c : bad) {
    auto r = validate_upstream_response(parse_response(c.wire), req);
    EXPECT_EQ(r.status, 502u) << c.what;
    EXPECT_EQ(r.outcome, HandshakeOutcome::upstream_bad_response) << c.what;
    EXPECT_NE(r.reason.find(c.reason), std::string::npos) << c.what << ": " << r.reason;
  }

  auto none = good_response(req);
  none.erase(http::field::sec_websocket_accept);
  EXPECT_EQ(validate_upstream_response(none, req).status, 502u);
}

TEST(Handshake, ClientResponseCarriesCorrelationId) {
  auto req = good_request();
  auto up = good_response(req);
  up.set("X-Correlation-ID", "from-upstream");
  up.set(http::field::sec_websocket_protocol, "jwt-auth");
  auto out = build_client_response(up, "ours-123456");
  EXPECT_EQ(out.result(), http::status::switching_protocols);
  EXPECT_EQ(out["X-Correlation-ID"], "ours-123456");
  EXPECT_EQ(out.count("X-Correlation-ID"), 1u);
  EXPECT_EQ(out[http::field::sec_websocket_protocol], "jwt-auth");
  EXPECT_EQ(out[http::field::sec_websocket_accept], up[http::field::sec_websocket_accept]);
}
