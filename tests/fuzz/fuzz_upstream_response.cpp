// libFuzzer target: the upstream's answer to the upgrade request.
// Input: one selector byte (which client request it answers), then the
// response bytes. "@ACCEPT@" in the input is replaced by the correct
// Sec-WebSocket-Accept so that the fuzzer reaches past the key check.
// Bytes -> Beast response_parser<string_body> with the proxy's limits ->
// validate_upstream_response -> build_client_response.
// Invariants: only a 101 with the upgrade pair, the right accept key, an
// offered subprotocol and offered extensions is accepted; the 101 the client
// gets has no CR/LF/NUL in a header, exactly one X-Correlation-ID (ours), no
// hop-by-hop field beyond the upgrade pair, and serializes into exactly one
// message that parses back to the same fields.

#include <boost/beast/http.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/handshake.hpp"
#include "tests/fuzz/fuzz_check.hpp"
#include "tests/fuzz/fuzz_http_common.hpp"

namespace http = boost::beast::http;
using namespace wsgate::proxy;

namespace {

constexpr std::string_view kKey = "dGhlIHNhbXBsZSBub25jZQ==";

RequestHeader client_request(uint8_t sel) {
  RequestHeader req;
  req.method(http::verb::get);
  req.target("/ws");
  req.version(11);
  req.set(http::field::host, "proxy.example");
  req.set(http::field::upgrade, "websocket");
  req.set(http::field::connection, "Upgrade");
  req.set(http::field::sec_websocket_key, kKey);
  req.set(http::field::sec_websocket_version, "13");
  if (sel & 1) req.set(http::field::sec_websocket_protocol, "chat, jwt-auth");
  if (sel & 2) req.set(http::field::sec_websocket_extensions, "permessage-deflate; client_max_window_bits");
  return req;
}

std::size_t count(const http::fields& f, std::string_view name) {
  std::size_t n = 0;
  for (const auto& h : f)
    if (boost::beast::iequals(h.name_string(), name)) ++n;
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const RequestHeader creq = client_request(data[0]);
  std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string accept = websocket_accept(kKey);
  for (std::size_t p; (p = bytes.find("@ACCEPT@")) != std::string::npos;) bytes.replace(p, 8, accept);

  http::response_parser<http::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(1024 * 1024);
  parser.skip(false);
  if (!wsgate::fuzz::feed(parser, bytes)) return 0;
  const auto& resp = parser.get();
  wsgate::fuzz::check_fields_clean(resp.base());

  const Refusal r = validate_upstream_response(resp.base(), creq);
  if (!r.ok()) {
    FUZZ_CHECK(r.status != 101);
    FUZZ_CHECK(resp.result() != http::status::switching_protocols || r.status == 502);
    FUZZ_CHECK(wsgate::fuzz::clean(r.reason));
    return 0;
  }
  FUZZ_CHECK(resp.result() == http::status::switching_protocols);
  FUZZ_CHECK(resp[http::field::sec_websocket_accept] == accept);
  const auto chosen = header_tokens(resp.base(), http::field::sec_websocket_protocol);
  FUZZ_CHECK(chosen.empty() || ((data[0] & 1) && chosen.size() == 1 &&
                                (chosen[0] == "chat" || chosen[0] == "jwt-auth")));
  for (const auto& e : extension_names(resp.base()))
    FUZZ_CHECK((data[0] & 2) && boost::beast::iequals(e, "permessage-deflate"));

  const std::string cid = "0123456789abcdef0123456789abcdef";
  const ResponseHeader out = build_client_response(resp.base(), cid);
  wsgate::fuzz::check_fields_clean(out);
  FUZZ_CHECK(out.result() == http::status::switching_protocols);
  FUZZ_CHECK(count(out, "X-Correlation-ID") == 1);
  FUZZ_CHECK(out["X-Correlation-ID"] == cid);
  FUZZ_CHECK(count(out, "Upgrade") == 1);
  FUZZ_CHECK(count(out, "Connection") == 1);
  for (const char* hop : {"Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding",
                          "Proxy-Authenticate"})
    FUZZ_CHECK(count(out, hop) == 0);
  FUZZ_CHECK(deflate_negotiated(out) == deflate_negotiated(resp.base()));
  http::response<http::empty_body> msg(out);
  wsgate::fuzz::check_round_trip(msg);
  return 0;
}
