#pragma once
// Shared helpers of the HTTP handshake fuzzers: feeding bytes to a Beast
// parser the way the proxy does, and the header invariants both directions
// must keep (no CR, LF or NUL in a name or value; the serialized message
// parses back to the same fields, so nothing can be smuggled as a second
// header or a second message).
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/fuzz/fuzz_check.hpp"

namespace wsgate::fuzz {

namespace http = boost::beast::http;

// Feeds `bytes` to `parser` in one go (the proxy reads into a flat_buffer
// and the parser consumes what it can). True when the header is complete
// without error.
template <class Parser>
bool feed(Parser& parser, std::string_view bytes) {
  boost::system::error_code ec;
  std::size_t off = 0;
  while (off < bytes.size() && !parser.is_done()) {
    const std::size_t n = parser.put(boost::asio::buffer(bytes.data() + off, bytes.size() - off), ec);
    if (ec == http::error::need_more) return parser.is_header_done();
    if (ec) return false;
    if (n == 0) break;
    off += n;
  }
  return parser.is_header_done();
}

inline bool clean(std::string_view s) {
  for (char c : s)
    if (c == '\r' || c == '\n' || c == '\0') return false;
  return true;
}

template <class Fields>
std::vector<std::pair<std::string, std::string>> field_list(const Fields& f) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& h : f) out.emplace_back(std::string(h.name_string()), std::string(h.value()));
  return out;
}

template <class Fields>
void check_fields_clean(const Fields& f) {
  for (const auto& h : f) {
    FUZZ_CHECK(!h.name_string().empty());
    FUZZ_CHECK(clean(h.name_string()));
    FUZZ_CHECK(clean(h.value()));
  }
}

// Serializes `msg` (header only), parses it back with a fresh parser of the
// same kind and checks the result is one complete message with the same
// start line and the same fields in the same order.
template <bool isRequest, class Body>
void check_round_trip(const http::message<isRequest, Body, http::fields>& msg) {
  std::ostringstream os;
  http::header<isRequest, http::fields> hdr = msg.base();
  os << hdr;
  const std::string wire = os.str();
  http::parser<isRequest, http::empty_body> back;
  back.header_limit(1u << 20);
  back.eager(true);
  boost::system::error_code ec;
  const std::size_t n = back.put(boost::asio::buffer(wire), ec);
  if (ec == http::error::need_more || !back.is_header_done()) {
    std::fprintf(stderr, "round trip did not parse (%s):\n%s\n", ec.message().c_str(), wire.c_str());
    FUZZ_CHECK(false);
  }
  FUZZ_CHECK(!ec || ec == http::error::need_more);
  // The whole serialization was one header, nothing left to be a second message.
  FUZZ_CHECK(n == wire.size());
  FUZZ_CHECK(field_list(back.get().base()) == field_list(hdr));
}

}  // namespace wsgate::fuzz
