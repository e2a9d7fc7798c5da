// libFuzzer target: building an incident record (proxy/incidents/incident.hpp)
// from an arbitrary backend trace body.
// Input: one flags byte, then the body the trace URL answered with.
//   flags & 1: the body is also the last upstream message
//   flags & 2: ... marked permessage-deflate compressed (inflated on its own)
//   flags & 4: fetch outcome bad_response with the body as error text
// The body is parsed the way trace_fetcher.cpp does (nesting checked first,
// then nlohmann, no throw);
// a parsed document becomes the fetched trace. Then build_incident, dump.
// Invariants: no crash, no exception; an inflated last message no longer
// than the cap (plus redaction slack); the record is an object with the
// DESIGN.md fields; no key or string anywhere in it holds a JWT-shaped
// span ("eyJ" + base64url + '.' + ... + '.', the redactor's own definition)
// or "Bearer <token>"; dump() works (strict UTF-8 replaced, not thrown).

#include <nlohmann/json.hpp>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "proxy/incidents/incident.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace wsgate::proxy;
using namespace wsgate::proxy::incidents;

namespace {

bool b64url(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '='; }

// A JWT-shaped span: "eyJ" at a token boundary, then base64url and dots,
// with at least two dots. Bearer: "bearer " (any case) then a token char.
bool leaks(std::string_view s) {
  for (std::size_t i = 0; i + 3 <= s.size(); ++i) {
    if (s.compare(i, 3, "eyJ") == 0 && (i == 0 || s[i - 1] == '=' || !b64url(s[i - 1]))) {
      int dots = 0;
      for (std::size_t e = i; e < s.size() && (b64url(s[e]) || s[e] == '.'); ++e) dots += s[e] == '.';
      if (dots >= 2) return true;
    }
  }
  return false;
}

void walk(const nlohmann::json& j, const std::string& where) {
  if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    if (leaks(s)) {
      std::fprintf(stderr, "unredacted JWT-shaped string at %s: %s\n", where.c_str(), s.c_str());
      FUZZ_CHECK(false);
    }
  } else if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (leaks(it.key())) {
        std::fprintf(stderr, "unredacted JWT-shaped key at %s: %s\n", where.c_str(), it.key().c_str());
        FUZZ_CHECK(false);
      }
      walk(it.value(), where + "." + it.key());
    }
  } else if (j.is_array()) {
    std::size_t i = 0;
    for (const auto& v : j) walk(v, where + "[" + std::to_string(i++) + "]");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);

  SessionSummary s;
  s.correlation_id = "fuzz-correlation-0001";
  s.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  s.client = "127.0.0.1:40000";
  s.route = "/";
  s.upstream = "ws://127.0.0.1:9000/";
  s.trace_url_template = "http://127.0.0.1:9001/debug/traces/{correlation_id}";
  s.target = "/ws?token=" + body.substr(0, 64);
  s.code = 1011;
  s.reason = body.substr(0, 123);
  s.initiator = Initiator::upstream;
  s.end_detail = "close from upstream";
  if (flags & 1) {
    s.last_upstream_message = body.substr(0, 4096);
    s.last_upstream_message_truncated = body.size() > 4096;
    s.last_upstream_message_compressed = (flags & 2) != 0;
  }

  TraceFetchResult fetch;
  fetch.attempts = 1;
  const bool too_deep = json_nesting_exceeds(body, kMaxTraceDepth);
  auto doc = too_deep ? nlohmann::json(nullptr) : nlohmann::json::parse(body, nullptr, false);
  if (too_deep) {
    fetch.outcome = FetchOutcome::too_deep;
    fetch.error = "trace nested deeper than 64 levels";
  } else if (flags & 4) {
    fetch.outcome = FetchOutcome::bad_response;
    fetch.error = body.substr(0, 512);
  } else if (doc.is_discarded() || !doc.is_object()) {
    fetch.outcome = FetchOutcome::bad_response;
    fetch.error = "backend trace is not a JSON object";
  } else {
    fetch.outcome = FetchOutcome::ok;
    fetch.trace = std::move(doc);
  }

  const auto at = std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000123));
  const nlohmann::json rec = build_incident(s, at, fetch, 1024);
  FUZZ_CHECK(rec.is_object());
  for (const char* k : {"correlation_id", "time", "close", "failing_stage", "summary", "missing_attributes"})
    FUZZ_CHECK(rec.contains(k));
  FUZZ_CHECK(rec["summary"].is_string());
  FUZZ_CHECK(rec["summary"].get_ref<const std::string&>().find('\n') == std::string::npos);
  walk(rec, "$");
  // Inflating stops at the cap (1024 here) however far the input would
  // inflate: a compression bomb in the last message cannot grow the record.
  // (Redaction may lengthen a short token a little, hence the slack.)
  const auto& last = rec["last_upstream_message"];
  if (last.value("inflated", false))
    FUZZ_CHECK(last["text"].get_ref<const std::string&>().size() <= 2 * 1024 + 64);
  const std::string out = rec.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  FUZZ_CHECK(!out.empty());
  return 0;
}
