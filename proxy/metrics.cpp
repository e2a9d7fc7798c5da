#include "proxy/metrics.hpp"

#include <algorithm>

namespace wsgate::proxy {

namespace pm = prometheus;

std::string_view to_string(HandshakeOutcome o) {
  switch (o) {
    case HandshakeOutcome::ok: return "ok";
    case HandshakeOutcome::bad_request: return "bad_request";
    case HandshakeOutcome::version: return "version";
    case HandshakeOutcome::not_found: return "not_found";
    case HandshakeOutcome::headers_too_large: return "headers_too_large";
    case HandshakeOutcome::limit: return "limit";
    case HandshakeOutcome::rate_limited: return "rate_limited";
    case HandshakeOutcome::draining: return "draining";
    case HandshakeOutcome::timeout: return "timeout";
    case HandshakeOutcome::tls_failed: return "tls_failed";
    case HandshakeOutcome::client_gone: return "client_gone";
    case HandshakeOutcome::upstream_connect_failed: return "upstream_connect_failed";
    case HandshakeOutcome::upstream_timeout: return "upstream_timeout";
    case HandshakeOutcome::upstream_refused: return "upstream_refused";
    case HandshakeOutcome::upstream_bad_response: return "upstream_bad_response";
    case HandshakeOutcome::count_: break;
  }
  return "unknown";
}

std::string_view to_string(TimeoutKind k) {
  switch (k) {
    case TimeoutKind::tls_handshake: return "tls_handshake";
    case TimeoutKind::handshake: return "handshake";
    case TimeoutKind::upstream_connect: return "upstream_connect";
    case TimeoutKind::upstream_handshake: return "upstream_handshake";
    case TimeoutKind::idle: return "idle";
    case TimeoutKind::close_handshake: return "close_handshake";
    case TimeoutKind::drain: return "drain";
    case TimeoutKind::count_: break;
  }
  return "unknown";
}

std::string_view to_string(AcceptError e) {
  switch (e) {
    case AcceptError::fd_limit: return "fd_limit";
    case AcceptError::no_memory: return "no_memory";
    case AcceptError::other: return "other";
    case AcceptError::count_: break;
  }
  return "unknown";
}

AcceptError classify_accept_error(const boost::system::error_code& ec) {
  if (ec == boost::system::errc::too_many_files_open ||
      ec == boost::system::errc::too_many_files_open_in_system)
    return AcceptError::fd_limit;
  if (ec == boost::system::errc::no_buffer_space || ec == boost::system::errc::not_enough_memory)
    return AcceptError::no_memory;
  return AcceptError::other;
}

std::string_view to_string(Limit l) {
  switch (l) {
    case Limit::connections: return "connections";
    case Limit::connections_per_ip: return "connections_per_ip";
    case Limit::handshakes_in_flight: return "handshakes_in_flight";
    case Limit::handshake_rate: return "handshake_rate";
    case Limit::count_: break;
  }
  return "unknown";
}

namespace {
pm::Histogram::BucketBoundaries rtt_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
}
pm::Histogram::BucketBoundaries duration_buckets() {
  return {0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 14400, 86400};
}
}  // namespace

ProxyMetrics::ProxyMetrics(pm::Registry& r, std::uint32_t max_private_close_codes)
    : connections_active(pm::BuildGauge()
                             .Name("wsgate_connections_active")
                             .Help("WebSocket sessions currently relayed")
                             .Register(r)
                             .Add({})),
      ping_rtt_seconds(pm::BuildHistogram()
                           .Name("wsgate_ping_rtt_seconds")
                           .Help("Ping to matching pong, measured passively at the proxy")
                           .Register(r)
                           .Add({}, rtt_buckets())),
      connection_duration_seconds(pm::BuildHistogram()
                                      .Name("wsgate_connection_duration_seconds")
                                      .Help("WebSocket session duration, 101 to end")
                                      .Register(r)
                                      .Add({}, duration_buckets())),
      tls_cert_expiry(pm::BuildGauge()
                          .Name("wsgate_tls_cert_expiry_timestamp_seconds")
                          .Help("notAfter of the listener certificate (0 without TLS)")
                          .Register(r)
                          .Add({})),
      ready(pm::BuildGauge()
                .Name("wsgate_ready")
                .Help("1 while accepting sessions, 0 while draining")
                .Register(r)
                .Add({})),
      workers(pm::BuildGauge()
                  .Name("wsgate_workers")
                  .Help("I/O workers (threads with an io_context each) relaying sessions")
                  .Register(r)
                  .Add({})),
      handshakes_in_flight(pm::BuildGauge()
                               .Name("wsgate_handshakes_in_flight")
                               .Help("Client connections accepted and not yet relaying "
                                     "(TLS, upgrade request, upstream handshake)")
                               .Register(r)
                               .Add({})),
      rate_limit_table_full(pm::BuildCounter()
                                .Name("wsgate_handshake_rate_table_full_total")
                                .Help("New client IPs let through without a handshake-rate "
                                      "bucket because --rate-limit-max-ips were tracked")
                                .Register(r)
                                .Add({})),
      ping_rtt_evicted(pm::BuildCounter()
                           .Name("wsgate_ping_rtt_evicted_total")
                           .Help("Pings dropped from a direction's outstanding window "
                                 "(--ping-rtt-window) before their pong: no RTT sample")
                           .Register(r)
                           .Add({})),
      upstream_lost(pm::BuildCounter()
                        .Name("wsgate_upstream_lost_total")
                        .Help("Sessions whose upstream ended without a close frame; the "
                              "client's close is counted in wsgate_closes_total (1014 from "
                              "the proxy, or 1006 when no close could be sent)")
                        .Register(r)
                        .Add({})),
      flight_recorder_busy_reads(pm::BuildCounter()
                                     .Name("wsgate_flight_recorder_busy_reads_total")
                                     .Help("Live flight recorder reads (/connections/{id}) that "
                                           "left a direction out: its writer was mid-write on "
                                           "every try (frames_incomplete in the answer)")
                                     .Register(r)
                                     .Add({})),
      memory_trims(pm::BuildCounter()
                       .Name("wsgate_memory_trims_total")
                       .Help("Freed heap handed back to the kernel (malloc_trim) once a burst "
                             "of connections settled (--memory-trim-interval)")
                       .Register(r)
                       .Add({})),
      memory_trim_released_bytes(pm::BuildCounter()
                                     .Name("wsgate_memory_trim_released_bytes_total")
                                     .Help("Drop in resident bytes across each memory trim "
                                           "(an estimate: workers allocate meanwhile)")
                                     .Register(r)
                                     .Add({})),
      handshakes_family_(pm::BuildCounter()
                             .Name("wsgate_handshakes_total")
                             .Help("Client upgrade attempts by outcome")
                             .Register(r)),
      closes_family_(pm::BuildCounter()
                         .Name("wsgate_closes_total")
                         .Help("Ended WebSocket sessions by close code and initiator")
                         .Register(r)),
      frames_family_(pm::BuildCounter()
                         .Name("wsgate_frames_total")
                         .Help("WebSocket frames relayed by direction and opcode")
                         .Register(r)),
      bytes_family_(pm::BuildCounter()
                        .Name("wsgate_bytes_total")
                        .Help("Bytes relayed after the upgrade, by direction")
                        .Register(r)),
      violations_family_(pm::BuildCounter()
                             .Name("wsgate_protocol_violations_total")
                             .Help("RFC 6455 violations seen by the tap")
                             .Register(r)),
      timeouts_family_(pm::BuildCounter()
                           .Name("wsgate_timeouts_total")
                           .Help("Timeouts that ended a handshake or a session, by kind")
                           .Register(r)),
      incidents_family_(pm::BuildCounter()
                            .Name("wsgate_incidents_total")
                            .Help("Incidents opened, by close code and failing backend stage")
                            .Register(r)),
      trace_fetch_family_(pm::BuildCounter()
                              .Name("wsgate_incident_trace_fetch_total")
                              .Help("Backend stage-trace fetches for incidents, by outcome")
                              .Register(r)),
      accept_errors_family_(pm::BuildCounter()
                                .Name("wsgate_accept_errors_total")
                                .Help("Failed accept() calls on the client listener by reason; "
                                      "each pauses accepting (backoff)")
                                .Register(r)),
      limit_refusals_family_(pm::BuildCounter()
                                 .Name("wsgate_limit_refusals_total")
                                 .Help("Client connections refused at accept, by the limit "
                                       "that refused them")
                                 .Register(r)),
      admin_errors_family_(pm::BuildCounter()
                               .Name("wsgate_admin_errors_total")
                               .Help("Admin requests refused or failed, by reason")
                               .Register(r)),
      missing_attributes_family_(pm::BuildCounter()
                                     .Name("wsgate_incident_missing_attributes_total")
                                     .Help("Attributes the failing backend stage lacked, per "
                                           "incident, by close code, stage and attribute")
                                     .Register(r)),
      missing_attribute_overflow_(
          &pm::BuildCounter()
               .Name("wsgate_incident_missing_attribute_labels_overflow_total")
               .Help("Missing attributes counted as attribute=\"other\": past the cap of 32 "
                     "distinct names, or not a plain name")
               .Register(r)
               .Add({})),
      max_private_close_codes_(max_private_close_codes),
      incident_path(r),
      trace_location(r),
      upstream_endpoints(r) {
  for (int i = 0; i < static_cast<int>(HandshakeOutcome::count_); ++i)
    handshakes_[i] = &handshakes_family_.Add(
        {{"outcome", std::string(to_string(static_cast<HandshakeOutcome>(i)))}});
  for (int i = 0; i < static_cast<int>(TimeoutKind::count_); ++i)
    timeouts_[i] =
        &timeouts_family_.Add({{"kind", std::string(to_string(static_cast<TimeoutKind>(i)))}});
  for (int i = 0; i < static_cast<int>(AcceptError::count_); ++i)
    accept_errors_[i] = &accept_errors_family_.Add(
        {{"reason", std::string(to_string(static_cast<AcceptError>(i)))}});
  for (int i = 0; i < static_cast<int>(Limit::count_); ++i)
    limit_refusals_[i] =
        &limit_refusals_family_.Add({{"limit", std::string(to_string(static_cast<Limit>(i)))}});
  for (std::size_t i = 0; i < kAdminErrorKinds; ++i)
    admin_errors_[i] =
        &admin_errors_family_.Add({{"reason", std::string(to_string(static_cast<AdminError>(i)))}});
  for (int d = 0; d < 2; ++d) {
    auto dir = std::string(tap::to_string(static_cast<Direction>(d)));
    bytes_[d] = &bytes_family_.Add({{"direction", dir}});
    // Every kind exists from the start (at zero), so dashboards and alerts
    // see the series before the first violation.
    for (std::size_t k = 1; k < tap::kViolationKinds; ++k)
      violations_[d][k] = &violations_family_.Add(
          {{"direction", dir}, {"kind", std::string(tap::to_string(static_cast<tap::Violation>(k)))}});
    for (unsigned op = 0; op < 16; ++op)
      frames_[d][op] =
          &frames_family_.Add({{"direction", dir}, {"opcode", std::string(tap::opcode_label(static_cast<uint8_t>(op)))}});
  }
  for (int code = 0; code < 16; ++code)
    for (int who = 0; who < 3; ++who)
      standard_closes_[code][who] = &closes_family_.Add(
          {{"code", std::to_string(1000 + code)},
           {"initiator", std::string(to_string(static_cast<Initiator>(who)))}});
}

std::string_view to_string(TraceLocationRejection r) {
  switch (r) {
    case TraceLocationRejection::not_allowed:
      return "not_allowed";
    case TraceLocationRejection::invalid_url:
      return "invalid_url";
    case TraceLocationRejection::count_:
      break;
  }
  return "unknown";
}

TraceLocationMetrics::TraceLocationMetrics(pm::Registry& r)
    : accepted(pm::BuildCounter()
                   .Name("wsgate_trace_location_accepted_total")
                   .Help("Trace URLs announced by an upstream (Wsgate-Trace-Location) and "
                         "used for the session's incident")
                   .Register(r)
                   .Add({})) {
  auto& family = pm::BuildCounter()
                     .Name("wsgate_trace_location_rejected_total")
                     .Help(
                         "Wsgate-Trace-Location announcements ignored: from an address outside "
                         "--trace-location-allow (not_allowed) or not a usable URL (invalid_url)")
                     .Register(r);
  for (int i = 0; i < static_cast<int>(TraceLocationRejection::count_); ++i)
    rejected_[i] =
        &family.Add({{"reason", std::string(to_string(static_cast<TraceLocationRejection>(i)))}});
}

std::string_view to_string(IncidentLogError e) {
  switch (e) {
    case IncidentLogError::write: return "write";
    case IncidentLogError::open: return "open";
    case IncidentLogError::sync: return "sync";
    case IncidentLogError::rotate: return "rotate";
    case IncidentLogError::count_: break;
  }
  return "unknown";
}

UpstreamEndpointMetrics::UpstreamEndpointMetrics(pm::Registry& r)
    : ejections(pm::BuildCounter()
                    .Name("wsgate_upstream_endpoint_ejections_total")
                    .Help("Upstream endpoints taken out of rotation after a failed connect or "
                          "upgrade, by route")
                    .Register(r)),
      retries(pm::BuildCounter()
                  .Name("wsgate_upstream_endpoint_retries_total")
                  .Help("Upstream connects retried on another endpoint after one failed, by route")
                  .Register(r)),
      resolve_failures(pm::BuildCounter()
                           .Name("wsgate_upstream_resolve_failures_total")
                           .Help("Upstream name resolutions that failed (the last endpoint set is "
                                 "kept), by route")
                           .Register(r)),
      endpoints(pm::BuildGauge()
                    .Name("wsgate_upstream_endpoints")
                    .Help("Upstream endpoints by route and state (healthy, ejected)")
                    .Register(r)),
      sessions(pm::BuildGauge()
                   .Name("wsgate_upstream_endpoint_sessions")
                   .Help("Sessions (relaying or connecting) per upstream endpoint; endpoints past "
                         "--upstream-endpoint-metrics-max share endpoint=\"other\"")
                   .Register(r)) {}

IncidentPathMetrics::IncidentPathMetrics(pm::Registry& r)
    : trace_fetches_in_flight(pm::BuildGauge()
                                  .Name("wsgate_incident_trace_fetches_in_flight")
                                  .Help("Backend trace fetches running (bound: --trace-fetch-concurrency)")
                                  .Register(r)
                                  .Add({})),
      trace_truncated(pm::BuildCounter()
                          .Name("wsgate_incident_trace_truncated_total")
                          .Help("Stored backend traces cut to --incident-trace-max-bytes")
                          .Register(r)
                          .Add({})),
      log_dropped(pm::BuildCounter()
                      .Name("wsgate_incident_log_dropped_total")
                      .Help("Incident log writes dropped because the writer queue was full "
                            "(--incident-queue-max); the record stays in memory")
                      .Register(r)
                      .Add({})),
      log_reopens(pm::BuildCounter()
                      .Name("wsgate_incident_log_reopens_total")
                      .Help("Incident log reopened: file missing, replaced, or SIGHUP")
                      .Register(r)
                      .Add({})),
      log_lines_too_long(pm::BuildCounter()
                             .Name("wsgate_incident_log_lines_too_long_total")
                             .Help("Incident log lines past the load limit, skipped at start")
                             .Register(r)
                             .Add({})) {
  auto& family = pm::BuildCounter()
                     .Name("wsgate_incident_log_write_errors_total")
                     .Help("Incident log writes, opens, syncs and rotations that failed, by reason")
                     .Register(r);
  for (int i = 0; i < static_cast<int>(IncidentLogError::count_); ++i)
    write_errors_[i] =
        &family.Add({{"reason", std::string(to_string(static_cast<IncidentLogError>(i)))}});
}

std::string ProxyMetrics::close_label(std::uint16_t code) {
  if (code >= 1000 && code <= 1015) return std::to_string(code);
  if (!is_private_close_code(code)) return "other";
  std::lock_guard lock(mutex_);
  if (private_codes_seen_.count(code)) return std::to_string(code);
  if (private_codes_seen_.size() >= max_private_close_codes_) return "other";
  private_codes_seen_[code] = true;
  return std::to_string(code);
}

pm::Counter& ProxyMetrics::close(std::uint16_t code, Initiator who) {
  if (code >= 1000 && code <= 1015) return *standard_closes_[code - 1000][static_cast<int>(who)];
  std::string label = close_label(code);
  std::string initiator(to_string(who));
  std::lock_guard lock(mutex_);
  return cached(closes_family_, close_cache_, {{"code", label}, {"initiator", initiator}},
                label + "/" + initiator);
}

pm::Counter& ProxyMetrics::incident(std::uint16_t code, std::string_view stage) {
  std::string label = close_label(code);
  std::string s(stage);
  std::lock_guard lock(mutex_);
  return cached(incidents_family_, incident_cache_, {{"code", label}, {"stage", s}},
                label + "/" + s);
}

namespace {
bool is_attribute_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}
}  // namespace

pm::Counter& ProxyMetrics::incident_missing_attribute(std::uint16_t code, std::string_view stage,
                                                      std::string_view attribute) {
  std::string label = close_label(code);
  std::string s(stage);
  std::string a(attribute);
  std::lock_guard lock(mutex_);
  if (!is_attribute_name(a)) {
    a = "other";
  } else if (!missing_attribute_names_.count(a)) {
    if (missing_attribute_names_.size() >= kMaxMissingAttributeLabels)
      a = "other";
    else
      missing_attribute_names_.insert(a);
  }
  if (a == "other" && attribute != "other") missing_attribute_overflow_->Increment();
  return cached(missing_attributes_family_, missing_attribute_cache_,
                {{"code", label}, {"stage", s}, {"attribute", a}}, label + "/" + s + "/" + a);
}

pm::Counter& ProxyMetrics::trace_fetch(std::string_view outcome) {
  std::string o(outcome);
  std::lock_guard lock(mutex_);
  return cached(trace_fetch_family_, trace_fetch_cache_, {{"outcome", o}}, o);
}

pm::Counter& ProxyMetrics::cached(pm::Family<pm::Counter>& family,
                                  std::map<std::string, pm::Counter*>& cache,
                                  const std::map<std::string, std::string>& labels,
                                  const std::string& key) {
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  pm::Counter& counter = family.Add(labels);
  cache.emplace(key, &counter);
  return counter;
}

}  // namespace wsgate::proxy
