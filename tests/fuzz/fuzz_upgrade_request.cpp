// libFuzzer target: the client's upgrade request, as the proxy sees it.
// Bytes -> Beast request_parser<empty_body> with the proxy's limits (16 KiB
// header, no body) -> validate_upgrade_request -> build_upstream_request.
// Invariants: refusals carry a 4xx status; an accepted request is a GET with
// Upgrade/Connection/Key/Version; the request built for the upstream has no
// CR, LF or NUL in any header, exactly one Host (the upstream's), exactly one
// X-Correlation-ID (ours), no hop-by-hop field other than the upgrade pair,
// the target we chose, and it serializes into exactly one message that parses
// back to the same fields (no header or request smuggling).

#include <boost/beast/http.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/correlation_id.hpp"
#include "proxy/handshake.hpp"
#include "proxy/upstream_url.hpp"
#include "tests/fuzz/fuzz_check.hpp"
#include "tests/fuzz/fuzz_http_common.hpp"

namespace http = boost::beast::http;
using namespace wsgate::proxy;

namespace {

std::size_t count(const http::fields& f, std::string_view name) {
  std::size_t n = 0;
  for (const auto& h : f)
    if (boost::beast::iequals(h.name_string(), name)) ++n;
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  http::request_parser<http::empty_body> parser;
  parser.header_limit(16 * 1024);  // ProxyConfig::max_header_bytes default
  parser.body_limit(0);
  if (!wsgate::fuzz::feed(parser, bytes)) return 0;
  const auto& req = parser.get();
  wsgate::fuzz::check_fields_clean(req.base());

  const Refusal r = validate_upgrade_request(req, false);
  if (!r.ok()) {
    FUZZ_CHECK(r.status >= 400 && r.status < 500);
    FUZZ_CHECK(wsgate::fuzz::clean(r.reason));
    return 0;
  }
  FUZZ_CHECK(req.method() == http::verb::get);
  FUZZ_CHECK(req.version() >= 11);

  std::string_view offered = req[wsgate::kCorrelationHeader];
  const std::string cid = wsgate::is_valid_correlation_id(offered) ? std::string(offered)
                                                                   : std::string("0123456789abcdef0123456789abcdef");
  FUZZ_CHECK(wsgate::fuzz::clean(cid));
  const std::string target = join_target("/prefix", req.target());
  ForwardContext ctx{cid, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "127.0.0.1",
                     (size & 1) != 0, "backend.internal:8080", target};
  const auto up = build_upstream_request(req, ctx);

  wsgate::fuzz::check_fields_clean(up.base());
  FUZZ_CHECK(wsgate::fuzz::clean(up.target()));
  FUZZ_CHECK(up.target() == target);
  FUZZ_CHECK(up.method() == http::verb::get);
  FUZZ_CHECK(count(up.base(), "Host") == 1);
  FUZZ_CHECK(up[http::field::host] == "backend.internal:8080");
  FUZZ_CHECK(count(up.base(), "X-Correlation-ID") == 1);
  FUZZ_CHECK(up[wsgate::kCorrelationHeader] == cid);
  FUZZ_CHECK(count(up.base(), "traceparent") == 1);
  FUZZ_CHECK(count(up.base(), "Upgrade") == 1);
  FUZZ_CHECK(count(up.base(), "Sec-WebSocket-Key") >= 1);
  for (const char* hop : {"Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding",
                          "Proxy-Authorization", "Proxy-Authenticate"})
    FUZZ_CHECK(count(up.base(), hop) == 0);
  wsgate::fuzz::check_round_trip(up);
  return 0;
}
