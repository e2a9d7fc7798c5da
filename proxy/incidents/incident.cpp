#include "proxy/incidents/incident.hpp"

#include <algorithm>
#include <boost/beast/zlib/inflate_stream.hpp>
#include <cctype>
#include <cstdio>
#include <ctime>

#include "common/admin_server.hpp"
#include "common/redact.hpp"
#include "proxy/flight_recorder.hpp"

namespace wsgate::proxy::incidents {
namespace {

constexpr std::size_t kMaxDetailInSummary = 160;

std::string one_line(std::string_view s, std::size_t max) {
  std::string out;
  out.reserve(std::min(s.size(), max + 3));
  for (char c : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  }
  return out;
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

bool is_attr_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

std::string string_field(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// permessage-deflate (RFC 7692): the message is a raw DEFLATE stream missing
// its 00 00 ff ff tail. Only messages that do not lean on an earlier
// message's window (no context takeover, or the first one) inflate alone.
std::optional<std::string> inflate_message(std::string_view compressed, std::size_t cap,
                                           bool& truncated) {
  namespace zlib = boost::beast::zlib;
  std::string input(compressed);
  input.append("\x00\x00\xff\xff", 4);
  std::string out(cap, '\0');
  zlib::inflate_stream inflater;
  inflater.reset(15);
  zlib::z_params zs;
  zs.next_in = input.data();
  zs.avail_in = input.size();
  zs.next_out = out.data();
  zs.avail_out = out.size();
  boost::system::error_code ec;
  inflater.write(zs, zlib::Flush::sync, ec);
  if (ec && ec != zlib::error::need_buffers && ec != zlib::error::end_of_stream)
    return std::nullopt;
  out.resize(zs.total_out);
  truncated = zs.avail_out == 0 && zs.avail_in > 0;
  return out;
}

std::size_t dumped_size(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).size();
}

// At most `max` bytes, never ending inside a UTF-8 sequence.
std::string cut_utf8(const std::string& s, std::size_t max) {
  if (s.size() <= max) return s;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n) + "...";
}

}  // namespace

bool json_nesting_exceeds(std::string_view text, std::size_t limit) {
  std::size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

std::optional<TraceTruncation> cap_trace(nlohmann::json& trace, std::size_t max_bytes) {
  const std::size_t size = dumped_size(trace);
  if (size <= max_bytes) return std::nullopt;
  TraceTruncation t;
  t.original_bytes = size;
  if (!trace.is_object()) {
    trace = nlohmann::json::object();
    t.fields_dropped = true;
    return t;
  }
  nlohmann::json stages = nlohmann::json::array();
  if (auto it = trace.find("stages"); it != trace.end()) {
    if (it->is_array()) stages = std::move(*it);
    trace.erase(it);
  }
  const std::size_t n = stages.size();
  std::size_t failing = n > 0 ? n - 1 : 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (stages[i].is_object() && string_field(stages[i], "outcome") == "error") {
      failing = i;
      break;
    }
  }
  // Bytes of the trace without stages plus `,"stages":[]`; each kept stage
  // adds its own size and a comma.
  const std::size_t base = dumped_size(trace) + 12;
  std::vector<std::size_t> sizes(n);
  for (std::size_t i = 0; i < n; ++i) sizes[i] = dumped_size(stages[i]) + 1;
  if (n > 0 && base + sizes[failing] <= max_bytes) {
    std::size_t lo = failing, hi = failing, total = base + sizes[failing];
    // Grow the window one stage at a time on each side, so the stages
    // right before and after the failure stay first.
    for (bool grew = true; grew;) {
      grew = false;
      if (hi + 1 < n && total + sizes[hi + 1] <= max_bytes) {
        total += sizes[++hi];
        grew = true;
      }
      if (lo > 0 && total + sizes[lo - 1] <= max_bytes) {
        total += sizes[--lo];
        grew = true;
      }
    }
    nlohmann::json kept = nlohmann::json::array();
    for (std::size_t i = lo; i <= hi; ++i) kept.push_back(std::move(stages[i]));
    trace["stages"] = std::move(kept);
    t.stages_dropped_before = lo;
    t.stages_dropped_after = n - 1 - hi;
    return t;
  }
  // The other fields or the failing stage alone are too large: keep the
  // failing stage's name, outcome and a cut detail, and the policy.
  t.fields_dropped = true;
  nlohmann::json slim = nlohmann::json::object();
  constexpr std::size_t kShortField = 256;
  if (auto p = string_field(trace, "policy"); !p.empty()) slim["policy"] = cut_utf8(p, kShortField);
  nlohmann::json kept = nlohmann::json::array();
  if (n > 0 && stages[failing].is_object()) {
    nlohmann::json st = nlohmann::json::object();
    for (const char* key : {"stage", "outcome"})
      if (auto v = string_field(stages[failing], key); !v.empty())
        st[key] = cut_utf8(v, kShortField);
    if (auto d = string_field(stages[failing], "detail"); !d.empty())
      st["detail"] = cut_utf8(d, std::min<std::size_t>(1024, max_bytes / 4));
    kept.push_back(std::move(st));
    t.stages_dropped_before = failing;
    t.stages_dropped_after = n - 1 - failing;
  } else {
    t.stages_dropped_before = n;
  }
  slim["stages"] = std::move(kept);
  if (dumped_size(slim) > max_bytes) {
    slim = nlohmann::json{{"stages", nlohmann::json::array()}};
    t.stages_dropped_before = n;
    t.stages_dropped_after = 0;
  }
  trace = std::move(slim);
  return t;
}

std::string_view to_string(FetchOutcome o) {
  switch (o) {
    case FetchOutcome::ok:
      return "ok";
    case FetchOutcome::not_found:
      return "not_found";
    case FetchOutcome::timeout:
      return "timeout";
    case FetchOutcome::refused:
      return "refused";
    case FetchOutcome::http_error:
      return "http_error";
    case FetchOutcome::bad_response:
      return "bad_response";
    case FetchOutcome::too_deep:
      return "too_deep";
    case FetchOutcome::overloaded:
      return "overloaded";
    case FetchOutcome::no_url:
      return "no_url";
    case FetchOutcome::error:
      return "error";
  }
  return "error";
}

std::vector<std::string> parse_missing_attributes(std::string_view detail) {
  std::vector<std::string> out;
  auto pos = detail.find("missing");
  if (pos == std::string_view::npos) return out;
  pos += 7;
  // "missing: a, b", "missing a", "missing=a,b", "missing attribute(s): a"
  while (pos < detail.size() && !is_attr_char(detail[pos])) {
    if (detail[pos] != ':' && detail[pos] != ' ' && detail[pos] != '=') return out;
    ++pos;
  }
  if (detail.substr(pos).starts_with("attributes:"))
    pos += 11;
  else if (detail.substr(pos).starts_with("attribute:"))
    pos += 10;
  for (;;) {
    while (pos < detail.size() && detail[pos] == ' ') ++pos;
    auto start = pos;
    while (pos < detail.size() && is_attr_char(detail[pos])) ++pos;
    if (pos == start) break;
    out.emplace_back(detail.substr(start, pos - start));
    while (pos < detail.size() && detail[pos] == ' ') ++pos;
    if (pos >= detail.size() || detail[pos] != ',') break;
    ++pos;
  }
  return out;
}

TraceAnalysis analyze_trace(const nlohmann::json& trace) {
  TraceAnalysis a;
  if (!trace.is_object()) return a;
  a.policy = string_field(trace, "policy");
  if (auto stages = trace.find("stages"); stages != trace.end() && stages->is_array()) {
    for (const auto& st : *stages) {
      if (!st.is_object() || string_field(st, "outcome") != "error") continue;
      auto name = string_field(st, "stage");
      if (name.empty()) continue;
      a.failing_stage = name;
      a.failing_detail = string_field(st, "detail");
      break;
    }
  }
  if (auto m = trace.find("missing_attributes"); m != trace.end() && m->is_array()) {
    for (const auto& v : *m)
      if (v.is_string()) a.missing_attributes.push_back(v.get<std::string>());
  }
  if (a.missing_attributes.empty() && !a.failing_detail.empty())
    a.missing_attributes = parse_missing_attributes(a.failing_detail);
  return a;
}

std::string summary_line(std::uint16_t code, std::string_view reason, Initiator initiator,
                         const TraceAnalysis& a, const TraceFetchResult& fetch) {
  std::string out = std::to_string(code);
  std::string policy = a.policy.empty() ? "" : " (policy " + a.policy + ")";
  if (a.failing_stage != "unknown") {
    out += " at " + a.failing_stage + ": ";
    const bool context_failure = a.failing_stage.starts_with("context.") ||
                                 a.failing_stage.starts_with("factory.") ||
                                 a.failing_detail.find("missing") != std::string::npos;
    if (context_failure && !a.missing_attributes.empty())
      out += "context missing " + join(a.missing_attributes, ", ");
    else if (!a.failing_detail.empty())
      out += one_line(a.failing_detail, kMaxDetailInSummary);
    else
      out += reason.empty() ? "error" : one_line(reason, kMaxDetailInSummary);
    return out + policy;
  }
  out += " from " + std::string(to_string(initiator));
  if (!reason.empty()) out += " \"" + one_line(reason, kMaxDetailInSummary) + "\"";
  if (fetch.outcome == FetchOutcome::ok)
    return out + ": no failing stage in the backend trace" + policy;
  return out +
         ": failing stage unknown (backend trace: " + one_line(fetch.error, kMaxDetailInSummary) +
         ")";
}

std::string_view hint_for_stage(std::string_view stage) {
  struct Hint {
    std::string_view stage, hint;
  };
  static constexpr Hint kHints[] = {
      {"auth.verify_jwt",
       "Check the client's token against the backend's --jwt-secret-file, --jwt-issuer and "
       "--jwt-audience (expiry, signature, claims)."},
      {"context.create",
       "Check what the handshake carries: JWT claims sub and thread_id, header X-Thread-ID, "
       "X-Correlation-ID; the context.create detail names each attribute's source."},
      {"context.validate",
       "Make the auth flow or client supply the missing attribute (the trace names where it "
       "comes from), or run the backend with --context-policy fallback until it does."},
      {"factory.create_manager",
       "Look for FACTORY_INIT_FAILED in the backend log for this correlation ID; check the "
       "context the factory got and the per-user connection cap."},
      {"session.established",
       "The session failed right after set-up: read the backend log for this correlation ID "
       "and the first messages sent to the client."},
      {"message.parse",
       "A client message did not parse: compare the client's message (type, JSON shape) with "
       "the backend's protocol; the last frames show it."},
      {"message.handle",
       "A message handler failed: find the exception in the stage detail and the backend log "
       "for this correlation ID, and the message type that triggers it."},
      {"session.close",
       "The backend ended the session with an error: read the session.close detail and the "
       "backend log for this correlation ID."},
      {"unknown",
       "No failing stage is known: check backend_trace_error (is --upstream-trace-url right and "
       "the backend's admin port reachable?) and the backend log for this correlation ID."},
  };
  for (const auto& h : kHints)
    if (h.stage == stage) return h.hint;
  return "Read the failing stage's detail in the backend trace and the backend log for this "
         "correlation ID.";
}

std::string dump_incident(const nlohmann::json& incident) {
  if (!incident.is_object()) return dump_json(incident);
  static constexpr std::string_view kLeading[] = {"summary", "user_id", "hint"};
  std::string out = "{";
  auto field = [&out](std::string_view key, const nlohmann::json& value) {
    if (out.size() > 1) out += ',';
    out += dump_json(nlohmann::json(key));
    out += ':';
    out += dump_json(value);
  };
  for (auto key : kLeading)
    if (auto it = incident.find(std::string(key)); it != incident.end()) field(key, *it);
  for (auto it = incident.begin(); it != incident.end(); ++it) {
    if (std::find(std::begin(kLeading), std::end(kLeading), it.key()) != std::end(kLeading))
      continue;
    field(it.key(), it.value());
  }
  return out + "}";
}

nlohmann::json last_message_json(const SessionSummary& s, std::size_t cap) {
  nlohmann::json j;
  j["truncated"] = s.last_upstream_message_truncated;
  j["compressed"] = s.last_upstream_message_compressed;
  if (s.last_upstream_message.empty() && !s.last_upstream_message_truncated) {
    j["text"] = nullptr;
    return j;
  }
  if (!s.last_upstream_message_compressed) {
    j["text"] = redacted_prefix(s.last_upstream_message, s.last_upstream_message_truncated);
    return j;
  }
  bool truncated = false;
  if (auto text = inflate_message(s.last_upstream_message, cap, truncated)) {
    j["text"] = redacted_prefix(*text, truncated || s.last_upstream_message_truncated);
    j["inflated"] = true;
    if (truncated) j["truncated"] = true;
  } else {
    j["text"] = nullptr;
    j["inflated"] = false;
    j["note"] =
        "compressed with permessage-deflate; does not inflate on its own (context takeover)";
  }
  return j;
}

void redact_json(nlohmann::json& doc) {
  if (doc.is_string()) {
    redact_secrets(doc.get_ref<std::string&>());
  } else if (doc.is_array()) {
    for (auto& v : doc) redact_json(v);
  } else if (doc.is_object()) {
    // Keys come from the backend too: a secret may hide in one.
    nlohmann::json clean = nlohmann::json::object();
    for (auto& [key, value] : doc.items()) {
      redact_json(value);
      clean[redacted(key)] = std::move(value);
    }
    doc = std::move(clean);
  }
}

nlohmann::json build_incident(const SessionSummary& s, std::chrono::system_clock::time_point at,
                              const TraceFetchResult& fetch, std::size_t capture_bytes,
                              std::size_t trace_max_bytes) {
  TraceAnalysis analysis;
  nlohmann::json trace;
  std::optional<TraceTruncation> truncation;
  if (fetch.outcome == FetchOutcome::ok) {
    trace = fetch.trace;
    redact_json(trace);               // before analysis: nothing unredacted reaches the summary
    analysis = analyze_trace(trace);  // on the whole trace, before any cut
    truncation = cap_trace(trace, trace_max_bytes);
  }
  const std::string reason = redacted(s.reason);
  auto direction = [](const DirectionSummary& d) {
    return nlohmann::json{{"frames", d.frames}, {"bytes", d.bytes}, {"messages", d.messages}};
  };
  std::string path = s.target.substr(0, s.target.find('?'));  // queries may carry secrets

  nlohmann::json j;
  j["correlation_id"] = s.correlation_id;
  j["traceparent"] =
      s.traceparent.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.traceparent);
  j["time"] = format_rfc3339(at);
  j["client"] = s.client;
  j["route"] = s.route;
  j["path"] = redacted(path);
  j["upstream"] = redacted(s.upstream);
  j["upstream_endpoint"] = s.upstream_endpoint;
  j["close"] = {
      {"code", s.code}, {"reason", reason}, {"initiator", std::string(to_string(s.initiator))}};
  j["close_handshake_complete"] = s.close_handshake_complete;
  j["end_detail"] = redacted(s.end_detail);
  j["duration_ms"] = s.duration.count();
  j["frame_counts"] = {{"client_to_upstream", direction(s.client_to_upstream)},
                       {"upstream_to_client", direction(s.upstream_to_client)}};
  // The flight recorder: the last frames of each direction, oldest first.
  j["frames"] = s.flight ? s.flight->to_json() : nlohmann::json::array();
  j["last_upstream_message"] = last_message_json(s, capture_bytes);
  if (fetch.outcome == FetchOutcome::ok) {
    j["backend_trace"] = std::move(trace);
    if (truncation)
      j["backend_trace_truncated"] = {{"original_bytes", truncation->original_bytes},
                                      {"max_bytes", trace_max_bytes},
                                      {"stages_dropped_before", truncation->stages_dropped_before},
                                      {"stages_dropped_after", truncation->stages_dropped_after},
                                      {"fields_dropped", truncation->fields_dropped}};
  } else
    j["backend_trace_error"] = redacted(fetch.error);
  j["trace_fetch"] = {{"outcome", std::string(to_string(fetch.outcome))},
                      {"attempts", fetch.attempts}};
  j["failing_stage"] = analysis.failing_stage;
  j["missing_attributes"] = analysis.missing_attributes;
  j["policy"] = analysis.policy.empty() ? nlohmann::json(nullptr) : nlohmann::json(analysis.policy);
  j["summary"] = redacted(summary_line(s.code, reason, s.initiator, analysis, fetch));
  // The user the backend authenticated (the JWT sub it traced); the proxy
  // never reads tokens itself.
  j["user_id"] = nullptr;
  if (auto bt = j.find("backend_trace"); bt != j.end() && bt->is_object())
    if (auto u = bt->find("user_id"); u != bt->end() && u->is_string() && !u->empty())
      j["user_id"] = *u;
  j["hint"] = std::string(hint_for_stage(analysis.failing_stage));
  return j;
}

std::string format_rfc3339(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  if (ms % 1000 < 0) --secs;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(((ms % 1000) + 1000) % 1000));
  return buf;
}

std::optional<std::chrono::system_clock::time_point> parse_time(std::string_view s) {
  using namespace std::chrono;
  if (s.empty()) return std::nullopt;
  auto digits = [&](std::size_t pos, std::size_t n) -> std::optional<int> {
    if (pos + n > s.size()) return std::nullopt;
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  // Unix seconds, optionally with a fraction.
  if (s.find_first_not_of("0123456789.") == std::string_view::npos) {
    auto dot = s.find('.');
    if (dot == 0 || s.substr(0, dot).size() > 12) return std::nullopt;
    std::int64_t secs = 0;
    for (char c : s.substr(0, dot)) secs = secs * 10 + (c - '0');
    std::int64_t ms = 0;
    if (dot != std::string_view::npos) {
      auto frac = s.substr(dot + 1);
      if (frac.find('.') != std::string_view::npos) return std::nullopt;
      for (std::size_t i = 0; i < 3; ++i) ms = ms * 10 + (i < frac.size() ? frac[i] - '0' : 0);
    }
    return system_clock::time_point(milliseconds(secs * 1000 + ms));
  }
  auto Y = digits(0, 4), M = digits(5, 2), D = digits(8, 2), h = digits(11, 2), m = digits(14, 2),
       sec = digits(17, 2);
  if (!Y || !M || !D || !h || !m || !sec || s.size() < 20 || s[4] != '-' || s[7] != '-' ||
      (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
    return std::nullopt;
  if (*M < 1 || *M > 12 || *D < 1 || *D > 31 || *h > 23 || *m > 59 || *sec > 60)
    return std::nullopt;
  std::size_t pos = 19;
  std::int64_t ms = 0;
  if (s[pos] == '.') {
    ++pos;
    std::size_t n = 0;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      if (n < 3) ms = ms * 10 + (s[pos] - '0');
      ++n;
      ++pos;
    }
    if (n == 0) return std::nullopt;
    for (; n < 3; ++n) ms *= 10;
  }
  if (pos >= s.size()) return std::nullopt;
  std::int64_t offset_s = 0;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    auto oh = digits(pos + 1, 2), om = digits(pos + 4, 2);
    if (!oh || !om || pos + 3 >= s.size() || s[pos + 3] != ':') return std::nullopt;
    offset_s = (*oh * 3600 + *om * 60) * (s[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = *Y - 1900;
  tm.tm_mon = *M - 1;
  tm.tm_mday = *D;
  tm.tm_hour = *h;
  tm.tm_min = *m;
  tm.tm_sec = *sec;
  std::int64_t secs = static_cast<std::int64_t>(timegm(&tm)) - offset_s;
  return system_clock::time_point(milliseconds(secs * 1000 + ms));
}

}  // namespace wsgate::proxy::incidents
