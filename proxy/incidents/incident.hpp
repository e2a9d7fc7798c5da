#pragma once
// Building one incident record (DESIGN.md, "Incident record") from a
// finished session and the backend's stage trace. Pure functions: no I/O, no
// clocks, so the unit tests pin every field.
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/session_summary.hpp"

namespace wsgate::proxy::incidents {

// How fetching the backend trace went. `outcome` is also the label of
// wsgate_incident_trace_fetch_total, so it is a closed set.
// too_deep: the body nests past kMaxTraceDepth; overloaded: skipped because
// --trace-fetch-concurrency fetches were already in flight.
enum class FetchOutcome {
  ok,
  not_found,
  timeout,
  refused,
  http_error,
  bad_response,
  too_deep,
  overloaded,
  no_url,
  error
};
std::string_view to_string(FetchOutcome outcome);

struct TraceFetchResult {
  FetchOutcome outcome = FetchOutcome::no_url;
  nlohmann::json trace;  // the backend's JSON object when outcome == ok
  std::string error;     // why not, when outcome != ok: "HTTP 404 after 3 tries", ...
  unsigned attempts = 0;
};

// Deepest nesting a backend trace (or a loaded log line) may have. Parsing,
// redacting, dumping and destroying a JSON value all recurse, so a deeper
// document is refused before a value is built from it.
inline constexpr std::size_t kMaxTraceDepth = 64;
// Default cap on the stored (serialized) backend trace of one incident.
inline constexpr std::size_t kDefaultTraceMaxBytes = 64 * 1024;

// True when `text` opens more than `limit` arrays/objects inside each other
// (brackets inside strings do not count). Linear, no allocation.
bool json_nesting_exceeds(std::string_view text, std::size_t limit);

// What cap_trace() dropped.
struct TraceTruncation {
  std::size_t original_bytes = 0;
  std::size_t stages_dropped_before = 0;  // before the kept window
  std::size_t stages_dropped_after = 0;
  bool fields_dropped = false;  // top-level fields or long details cut too
};
// Shrinks `trace` until it serializes to at most `max_bytes`: keeps the
// failing stage (first outcome "error", else the last stage) and as many
// stages around it as fit. Returns what it dropped, or nothing when the
// trace already fits.
std::optional<TraceTruncation> cap_trace(nlohmann::json& trace, std::size_t max_bytes);

// What the trace says about the failure.
struct TraceAnalysis {
  std::string failing_stage = "unknown";  // first stage whose outcome is "error"
  std::string failing_detail;             // that stage's detail
  std::vector<std::string> missing_attributes;
  std::string policy;  // the backend's context policy, when given
};
TraceAnalysis analyze_trace(const nlohmann::json& trace);

// "missing: thread_id, run_id (policy strict: ...)" -> {"thread_id", "run_id"}.
std::vector<std::string> parse_missing_attributes(std::string_view detail);

// The one-line summary, e.g.
// "1011 at factory.create_manager: context missing thread_id (policy strict)".
std::string summary_line(std::uint16_t code, std::string_view reason, Initiator initiator,
                         const TraceAnalysis& analysis, const TraceFetchResult& fetch);

// What an operator should do about a failure at `stage` (one of the
// backend's stage names, or "unknown"); a generic action for names it does
// not know.
std::string_view hint_for_stage(std::string_view stage);

// The record as one JSON line whose first keys are `summary`, `user_id` and
// `hint` (what on-call reads first), the rest after them in key order. Bytes
// that are not UTF-8 are replaced.
std::string dump_incident(const nlohmann::json& incident);

// The last upstream text message as recorded: redacted text (inflated when
// permessage-deflate compressed it and it inflates on its own), flags.
nlohmann::json last_message_json(const SessionSummary& s, std::size_t cap_bytes);

// The whole record. `at` is when the session ended. Every string that came
// from the wire or the backend passes through wsgate::redact_secrets.
// A trace larger than `trace_max_bytes` serialized is cut by cap_trace() and
// the record carries `backend_trace_truncated`.
nlohmann::json build_incident(const SessionSummary& s, std::chrono::system_clock::time_point at,
                              const TraceFetchResult& fetch, std::size_t capture_bytes = 4096,
                              std::size_t trace_max_bytes = kDefaultTraceMaxBytes);

// Scrubs every string (values, recursively) of a JSON document in place.
void redact_json(nlohmann::json& doc);

// RFC 3339 UTC with milliseconds: "2024-05-01T12:00:00.123Z".
std::string format_rfc3339(std::chrono::system_clock::time_point t);
// RFC 3339 (with offset or Z, optional fraction) or unix seconds.
std::optional<std::chrono::system_clock::time_point> parse_time(std::string_view text);

}  // namespace wsgate::proxy::incidents
