#pragma once
// Building one incident record (DESIGN.md, "Incident record") from a
// finished session and the backend's stage trace. Pure functions: no I/O, no
// clocks, so the unit tests pin every field.
#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/session_summary.hpp"

namespace wsgate::proxy::incidents {

// How fetching the backend trace went. `outcome` is also the label of
// wsgate_incident_trace_fetch_total, so it is a closed set.
enum class FetchOutcome { ok, not_found, timeout, refused, http_error, bad_response, no_url, error };
std::string_view to_string(FetchOutcome outcome);

struct TraceFetchResult {
  FetchOutcome outcome = FetchOutcome::no_url;
  nlohmann::json trace;  // the backend's JSON object when outcome == ok
  std::string error;     // why not, when outcome != ok: "HTTP 404 after 3 tries", ...
  unsigned attempts = 0;
};

// What the trace says about the failure.
struct TraceAnalysis {
  std::string failing_stage = "unknown";  // first stage whose outcome is "error"
  std::string failing_detail;             // that stage's detail
  std::vector<std::string> missing_attributes;
  std::string policy;                     // the backend's context policy, when given
};
TraceAnalysis analyze_trace(const nlohmann::json& trace);

// "missing: thread_id, run_id (policy strict: ...)" -> {"thread_id", "run_id"}.
std::vector<std::string> parse_missing_attributes(std::string_view detail);

// The one-line summary, e.g.
// "1011 at factory.create_manager: context missing thread_id (policy strict)".
std::string summary_line(std::uint16_t code, std::string_view reason, Initiator initiator,
                         const TraceAnalysis& analysis, const TraceFetchResult& fetch);

// The last upstream text message as recorded: redacted text (inflated when
// permessage-deflate compressed it and it inflates on its own), flags.
nlohmann::json last_message_json(const SessionSummary& s, std::size_t cap_bytes);

// The whole record. `at` is when the session ended. Every string that came
// from the wire or the backend passes through wsgate::redact_secrets.
nlohmann::json build_incident(const SessionSummary& s, std::chrono::system_clock::time_point at,
                              const TraceFetchResult& fetch, std::size_t capture_bytes = 4096);

// Scrubs every string (values, recursively) of a JSON document in place.
void redact_json(nlohmann::json& doc);

// RFC 3339 UTC with milliseconds: "2024-05-01T12:00:00.123Z".
std::string format_rfc3339(std::chrono::system_clock::time_point t);
// RFC 3339 (with offset or Z, optional fraction) or unix seconds.
std::optional<std::chrono::system_clock::time_point> parse_time(std::string_view text);

}  // namespace wsgate::proxy::incidents
