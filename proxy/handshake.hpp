#pragma once
// The HTTP side of the upgrade, as pure functions: validating the client's
// request (RFC 6455 4.2.1), building the upstream request, and checking the
// upstream's answer (RFC 6455 4.1). No I/O here, so it is unit-tested and
// fuzzed directly.
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "proxy/metrics.hpp"

namespace wsgate::proxy {

namespace http = boost::beast::http;
using RequestHeader = http::request_header<http::fields>;
using ResponseHeader = http::response_header<http::fields>;

struct Refusal {
  HandshakeOutcome outcome = HandshakeOutcome::ok;
  unsigned status = 0;  // HTTP status for the client; 0 when accepted
  std::string reason;   // short, safe to show the client and to log
  bool ok() const { return status == 0; }
};

// RFC 6455 4.2.1: GET, HTTP/1.1+, Host, Upgrade: websocket, Connection:
// upgrade, a 16-byte base64 Sec-WebSocket-Key, Sec-WebSocket-Version 13
// (426 otherwise, the caller adds "Sec-WebSocket-Version: 13").
Refusal validate_upgrade_request(const RequestHeader& req, bool has_body);

// base64(SHA-1(key + GUID)), RFC 6455 4.2.2.
std::string websocket_accept(std::string_view key);

// Comma-separated header tokens, trimmed; "a, b ,c" -> {a, b, c}. Values
// from repeated fields are joined.
std::vector<std::string> header_tokens(const http::fields& fields, http::field name);
// Extension names only ("permessage-deflate; x=1" -> "permessage-deflate").
std::vector<std::string> extension_names(const http::fields& fields);

struct ForwardContext {
  std::string correlation_id;
  std::string traceparent;  // child span to send upstream
  std::string client_ip;
  bool client_tls = false;
  std::string upstream_host_header;  // authority of the upstream
  std::string upstream_target;       // path prefix + client target
};

// The request sent upstream: the client's headers unchanged, except
// hop-by-hop fields (stripped, then the upgrade pair restored), Host (the
// upstream's), X-Forwarded-*, X-Correlation-ID and traceparent.
http::request<http::empty_body> build_upstream_request(const RequestHeader& client,
                                                       const ForwardContext& ctx);

// RFC 6455 4.1 from the proxy's seat: a 101 must be HTTP/1.1 without
// Content-Length or Transfer-Encoding, carry Upgrade/Connection, exactly one
// Sec-WebSocket-Accept with the key for the client's, and only a subprotocol
// and extensions that the client offered. Anything else is a 502.
Refusal validate_upstream_response(const ResponseHeader& resp, const RequestHeader& client_req);

// Where the backend announces its trace of the session (proxy/trace_location.hpp):
// between backend and proxy only.
inline constexpr std::string_view kTraceLocationHeader = "Wsgate-Trace-Location";

// The 101 the client gets: the upstream's own, hop-by-hop fields other than
// the upgrade pair removed, Wsgate-Trace-Location removed, X-Correlation-ID added.
ResponseHeader build_client_response(const ResponseHeader& upstream, std::string_view correlation_id);

// True if permessage-deflate was agreed in this 101 (RSV1 then allowed).
bool deflate_negotiated(const ResponseHeader& resp);

}  // namespace wsgate::proxy
