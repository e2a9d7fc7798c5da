#include "proxy/handshake.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "common/correlation_id.hpp"

namespace wsgate::proxy {
namespace {

constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool has_token(const http::fields& f, http::field name, std::string_view token) {
  for (auto& t : header_tokens(f, name))
    if (iequals(t, token)) return true;
  return false;
}

// Sec-WebSocket-Key: base64 of exactly 16 bytes: 22 chars + "==".
bool valid_key(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  for (char c : key.substr(0, 22))
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/')) return false;
  // The 22nd char carries 2 data bits and 4 zero bits.
  static constexpr std::string_view kLast = "AQgw";
  return kLast.find(key[21]) != std::string_view::npos;
}

Refusal refuse(HandshakeOutcome o, unsigned status, std::string reason) {
  return Refusal{o, status, std::move(reason)};
}

// Hop-by-hop fields (RFC 9110 7.6.1) plus any named in Connection.
void strip_hop_by_hop(http::fields& f) {
  auto named = header_tokens(f, http::field::connection);
  for (auto& n : named)
    if (!iequals(n, "upgrade") && !iequals(n, "close") && !iequals(n, "keep-alive")) f.erase(n);
  for (auto name : {http::field::connection, http::field::keep_alive, http::field::proxy_authenticate,
                    http::field::proxy_authorization, http::field::proxy_connection, http::field::te,
                    http::field::trailer, http::field::transfer_encoding, http::field::upgrade})
    f.erase(name);
}

}  // namespace

std::vector<std::string> header_tokens(const http::fields& fields, http::field name) {
  std::vector<std::string> out;
  for (auto it = fields.find(name); it != fields.end() && it->name() == name; ++it) {
    std::string_view v = it->value();
    while (!v.empty()) {
      auto comma = v.find(',');
      auto tok = trim(v.substr(0, comma));
      if (!tok.empty()) out.emplace_back(tok);
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return out;
}

std::vector<std::string> extension_names(const http::fields& fields) {
  auto tokens = header_tokens(fields, http::field::sec_websocket_extensions);
  for (auto& t : tokens) t = std::string(trim(std::string_view(t).substr(0, t.find(';'))));
  return tokens;
}

Refusal validate_upgrade_request(const RequestHeader& req, bool has_body) {
  if (req.method() != http::verb::get)
    return refuse(HandshakeOutcome::bad_request, 400, "WebSocket upgrade requires GET");
  if (req.version() < 11)
    return refuse(HandshakeOutcome::bad_request, 400, "WebSocket upgrade requires HTTP/1.1");
  if (has_body) return refuse(HandshakeOutcome::bad_request, 400, "upgrade request has a body");
  if (req.count(http::field::host) != 1 || req[http::field::host].empty())
    return refuse(HandshakeOutcome::bad_request, 400, "missing or repeated Host");
  if (!has_token(req, http::field::upgrade, "websocket"))
    return refuse(HandshakeOutcome::bad_request, 400, "missing Upgrade: websocket");
  if (!has_token(req, http::field::connection, "upgrade"))
    return refuse(HandshakeOutcome::bad_request, 400, "missing Connection: upgrade");
  if (req.count(http::field::sec_websocket_key) != 1 ||
      !valid_key(req[http::field::sec_websocket_key]))
    return refuse(HandshakeOutcome::bad_request, 400, "missing or invalid Sec-WebSocket-Key");
  if (req.count(http::field::sec_websocket_version) != 1 ||
      req[http::field::sec_websocket_version] != "13")
    return refuse(HandshakeOutcome::version, 426, "unsupported Sec-WebSocket-Version");
  std::string_view target = req.target();
  if (target.empty() || target.front() != '/')
    return refuse(HandshakeOutcome::bad_request, 400, "request target must be an absolute path");
  for (char c : target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return refuse(HandshakeOutcome::bad_request, 400, "request target has control characters");
  return {};
}

std::string websocket_accept(std::string_view key) {
  std::string input(key);
  input += kWebSocketGuid;
  std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest.data());
  std::array<unsigned char, 32> b64{};
  int n = EVP_EncodeBlock(b64.data(), digest.data(), static_cast<int>(digest.size()));
  return std::string(reinterpret_cast<char*>(b64.data()), static_cast<std::size_t>(n));
}

http::request<http::empty_body> build_upstream_request(const RequestHeader& client,
                                                       const ForwardContext& ctx) {
  http::request<http::empty_body> out;
  out.method(http::verb::get);
  out.version(11);
  out.target(ctx.upstream_target);
  for (auto& f : client) out.insert(f.name_string(), f.value());
  strip_hop_by_hop(out.base());
  out.set(http::field::connection, "Upgrade");
  out.set(http::field::upgrade, "websocket");

  std::string original_host(client[http::field::host]);
  out.set(http::field::host, ctx.upstream_host_header);

  // Append to an existing X-Forwarded-For chain.
  std::string xff(client["X-Forwarded-For"]);
  out.set("X-Forwarded-For", xff.empty() ? ctx.client_ip : xff + ", " + ctx.client_ip);
  out.set("X-Forwarded-Proto", ctx.client_tls ? "https" : "http");
  out.set("X-Forwarded-Host", original_host);
  out.set(kCorrelationHeader, ctx.correlation_id);
  out.erase("traceparent");
  out.set("traceparent", ctx.traceparent);
  return out;
}

Refusal validate_upstream_response(const ResponseHeader& resp, const RequestHeader& client_req) {
  const unsigned status = resp.result_int();
  // Only a final status passes through as it is; 1xx other than 101 and
  // anything outside 100-599 is not an answer a client can act on.
  if (status < 200 || status > 599) {
    if (status != 101)
      return refuse(HandshakeOutcome::upstream_bad_response, 502,
                    "upstream answered with status " + std::to_string(status));
  } else {
    return refuse(HandshakeOutcome::upstream_refused, status, "upstream refused upgrade");
  }
  // A 101 ends the HTTP exchange: body framing in it, or an HTTP/1.0 101
  // (which has no upgrade), means the upstream and the proxy disagree about
  // where the WebSocket bytes start.
  if (resp.version() != 11)
    return refuse(HandshakeOutcome::upstream_bad_response, 502, "upstream 101 is not HTTP/1.1");
  if (resp.count(http::field::content_length) != 0)
    return refuse(HandshakeOutcome::upstream_bad_response, 502, "upstream 101 has Content-Length");
  if (resp.count(http::field::transfer_encoding) != 0)
    return refuse(HandshakeOutcome::upstream_bad_response, 502,
                  "upstream 101 has Transfer-Encoding");
  if (!has_token(resp, http::field::upgrade, "websocket"))
    return refuse(HandshakeOutcome::upstream_bad_response, 502, "upstream 101 lacks Upgrade: websocket");
  if (!has_token(resp, http::field::connection, "upgrade"))
    return refuse(HandshakeOutcome::upstream_bad_response, 502, "upstream 101 lacks Connection: upgrade");
  if (resp.count(http::field::sec_websocket_accept) != 1)
    return refuse(HandshakeOutcome::upstream_bad_response, 502,
                  "upstream 101 has " +
                      std::to_string(resp.count(http::field::sec_websocket_accept)) +
                      " Sec-WebSocket-Accept fields, not one");
  if (resp[http::field::sec_websocket_accept] !=
      websocket_accept(client_req[http::field::sec_websocket_key]))
    return refuse(HandshakeOutcome::upstream_bad_response, 502,
                  "upstream 101 has a wrong Sec-WebSocket-Accept");
  auto chosen = header_tokens(resp, http::field::sec_websocket_protocol);
  if (!chosen.empty()) {
    auto offered = header_tokens(client_req, http::field::sec_websocket_protocol);
    if (chosen.size() != 1 ||
        std::find(offered.begin(), offered.end(), chosen.front()) == offered.end())
      return refuse(HandshakeOutcome::upstream_bad_response, 502,
                    "upstream chose a subprotocol the client did not offer");
  }
  auto offered_ext = extension_names(client_req);
  for (auto& ext : extension_names(resp)) {
    bool found = std::any_of(offered_ext.begin(), offered_ext.end(),
                             [&](const std::string& o) { return iequals(o, ext); });
    if (!found)
      return refuse(HandshakeOutcome::upstream_bad_response, 502,
                    "upstream chose an extension the client did not offer");
  }
  return {};
}

ResponseHeader build_client_response(const ResponseHeader& upstream, std::string_view correlation_id) {
  ResponseHeader out;
  out.version(11);
  out.result(http::status::switching_protocols);
  out.reason(upstream.reason());
  for (auto& f : upstream) out.insert(f.name_string(), f.value());
  strip_hop_by_hop(out);
  out.erase(kTraceLocationHeader);
  out.set(http::field::connection, "Upgrade");
  out.set(http::field::upgrade, "websocket");
  out.set(kCorrelationHeader, correlation_id);
  return out;
}

bool deflate_negotiated(const ResponseHeader& resp) {
  for (auto& ext : extension_names(resp))
    if (iequals(ext, "permessage-deflate")) return true;
  return false;
}

}  // namespace wsgate::proxy
