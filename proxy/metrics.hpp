#pragma once
// Every proxy metric, declared in this one place. Handles are looked up at
// start-up and kept; sessions batch their per-frame counts and add them here
// once a second and at close, so the tap never touches Prometheus.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "common/admin_errors.hpp"
#include "proxy/close_codes.hpp"
#include "proxy/tap/frame_tap.hpp"

namespace wsgate::proxy {

enum class HandshakeOutcome : std::uint8_t {
  ok,
  bad_request,       // 400
  version,           // 426
  not_found,         // 404
  headers_too_large, // 431
  limit,             // 503: connection caps
  rate_limited,      // per-IP handshake rate: closed at accept
  draining,          // 503: shutting down
  timeout,           // client too slow (TLS or upgrade)
  tls_failed,
  client_gone,
  upstream_connect_failed,  // 502
  upstream_timeout,         // 504
  upstream_refused,         // non-101 passed through
  upstream_bad_response,    // 502: bad accept key, extension, subprotocol
  count_
};
std::string_view to_string(HandshakeOutcome outcome);

enum class TimeoutKind : std::uint8_t {
  tls_handshake, handshake, upstream_connect, upstream_handshake, idle, close_handshake, drain,
  count_
};
std::string_view to_string(TimeoutKind kind);

// Why accept() failed; every kind pauses the accept loop (backoff).
enum class AcceptError : std::uint8_t { fd_limit, no_memory, other, count_ };
std::string_view to_string(AcceptError e);
AcceptError classify_accept_error(const boost::system::error_code& ec);

// Which limit refused a connection at accept.
enum class Limit : std::uint8_t {
  connections, connections_per_ip, handshakes_in_flight, handshake_rate, count_
};
std::string_view to_string(Limit l);

using tap::Direction;

// Why an incident log write failed: the `reason` label of
// wsgate_incident_log_write_errors_total.
enum class IncidentLogError : std::uint8_t { write, open, sync, rotate, count_ };
std::string_view to_string(IncidentLogError e);

// The incident path's limits and failures (docs/reliability.md,
// "Incident path limits").
struct IncidentPathMetrics {
  explicit IncidentPathMetrics(prometheus::Registry& registry);
  prometheus::Gauge& trace_fetches_in_flight;
  prometheus::Counter& trace_truncated;     // stored traces cut to --incident-trace-max-bytes
  prometheus::Counter& log_dropped;         // log writes dropped: writer queue full
  prometheus::Counter& log_reopens;         // log reopened: missing, replaced, SIGHUP
  prometheus::Counter& log_lines_too_long;  // skipped while loading
  prometheus::Counter& log_write_error(IncidentLogError e) {
    return *write_errors_[static_cast<int>(e)];
  }

 private:
  std::array<prometheus::Counter*, static_cast<int>(IncidentLogError::count_)> write_errors_{};
};

// Wsgate-Trace-Location announcements (an upstream's 101 naming the URL of
// its own trace for the session): honoured, or ignored and why.
enum class TraceLocationRejection : std::uint8_t { not_allowed, invalid_url, count_ };
std::string_view to_string(TraceLocationRejection r);

struct TraceLocationMetrics {
  explicit TraceLocationMetrics(prometheus::Registry& registry);
  prometheus::Counter& accepted;
  prometheus::Counter& rejected(TraceLocationRejection r) {
    return *rejected_[static_cast<int>(r)];
  }

 private:
  std::array<prometheus::Counter*, static_cast<int>(TraceLocationRejection::count_)> rejected_{};
};

// Upstream endpoint sets (docs/reliability.md, "Upstream endpoint sets"). The
// families only: each route's EndpointSet adds its series once and keeps them.
struct UpstreamEndpointMetrics {
  explicit UpstreamEndpointMetrics(prometheus::Registry& registry);
  prometheus::Family<prometheus::Counter>& ejections;         // {route}
  prometheus::Family<prometheus::Counter>& retries;           // {route}
  prometheus::Family<prometheus::Counter>& resolve_failures;  // {route}
  prometheus::Family<prometheus::Gauge>& endpoints;           // {route,state}
  prometheus::Family<prometheus::Gauge>& sessions;            // {route,endpoint}
};

class ProxyMetrics {
 public:
  ProxyMetrics(prometheus::Registry& registry, std::uint32_t max_private_close_codes);

  prometheus::Gauge& connections_active;
  prometheus::Histogram& ping_rtt_seconds;
  prometheus::Histogram& connection_duration_seconds;
  prometheus::Gauge& tls_cert_expiry;
  prometheus::Gauge& ready;
  // I/O workers (--threads, or one per CPU the process may use).
  prometheus::Gauge& workers;
  // Connections accepted but not yet relaying (TLS, upgrade, upstream).
  prometheus::Gauge& handshakes_in_flight;
  // New IPs the handshake-rate table had no room for (let through).
  prometheus::Counter& rate_limit_table_full;
  // Pings evicted from a direction's outstanding window (--ping-rtt-window)
  // before their pong came: no RTT sample for them.
  prometheus::Counter& ping_rtt_evicted;
  // Sessions whose upstream ended without a close frame. The client got the
  // proxy's 1014 (wsgate_closes_total{code="1014",initiator="proxy"}) or,
  // mid-frame, a bare TCP end (code="1006",initiator="upstream").
  prometheus::Counter& upstream_lost;
  // /connections/{id} reads that left a direction's frames out: its writer
  // was mid-write on every try.
  prometheus::Counter& flight_recorder_busy_reads;
  // Heap handed back to the kernel once a burst settled
  // (--memory-trim-interval): each trim, and the drop in resident bytes
  // across it.
  prometheus::Counter& memory_trims;
  prometheus::Counter& memory_trim_released_bytes;

  prometheus::Counter& accept_error(AcceptError e) { return *accept_errors_[static_cast<int>(e)]; }
  prometheus::Counter& limit_refusal(Limit l) { return *limit_refusals_[static_cast<int>(l)]; }

  prometheus::Counter& handshake(HandshakeOutcome o) { return *handshakes_[static_cast<int>(o)]; }
  prometheus::Counter& timeout(TimeoutKind k) { return *timeouts_[static_cast<int>(k)]; }
  prometheus::Counter& bytes(Direction d) { return *bytes_[static_cast<int>(d)]; }
  // Opcodes 3-7 and 11-15 are reserved; they share the "reserved" series.
  prometheus::Counter& frames(Direction d, unsigned opcode) {
    return *frames_[static_cast<int>(d)][opcode & 0xf];
  }
  // Close counts: 1000-1015 and a capped set of private codes are labels of
  // their own, the rest "other". Called once per session.
  prometheus::Counter& close(std::uint16_t code, Initiator who);
  // Rare events with open-ended labels: looked up under a mutex and cached.
  prometheus::Counter& violation(Direction d, tap::Violation kind) {
    return *violations_[static_cast<int>(d)][static_cast<std::size_t>(kind)];
  }
  prometheus::Counter& incident(std::uint16_t code, std::string_view stage);
  // wsgate_incident_missing_attributes_total{code,stage,attribute}: what the
  // failing stage lacked, so the 1011 alert can name it. Attribute names come
  // from the backend: the first kMaxMissingAttributeLabels distinct plain
  // names keep their label, any other counts as "other" and bumps
  // missing_attribute_label_overflow(). `stage` is already a bounded label.
  static constexpr std::size_t kMaxMissingAttributeLabels = 32;
  prometheus::Counter& incident_missing_attribute(std::uint16_t code, std::string_view stage,
                                                  std::string_view attribute);
  prometheus::Counter& missing_attribute_label_overflow() { return *missing_attribute_overflow_; }
  prometheus::Counter& trace_fetch(std::string_view outcome);
  // wsgate_admin_errors_total{reason}: refused or failed admin requests.
  prometheus::Counter& admin_error(AdminError e) {
    return *admin_errors_[static_cast<std::size_t>(e)];
  }
  // The label value `code` gets in wsgate_closes_total.
  std::string close_label(std::uint16_t code);

 private:
  prometheus::Counter& cached(prometheus::Family<prometheus::Counter>& family,
                              std::map<std::string, prometheus::Counter*>& cache,
                              const std::map<std::string, std::string>& labels,
                              const std::string& key);

  prometheus::Family<prometheus::Counter>& handshakes_family_;
  prometheus::Family<prometheus::Counter>& closes_family_;
  prometheus::Family<prometheus::Counter>& frames_family_;
  prometheus::Family<prometheus::Counter>& bytes_family_;
  prometheus::Family<prometheus::Counter>& violations_family_;
  prometheus::Family<prometheus::Counter>& timeouts_family_;
  prometheus::Family<prometheus::Counter>& incidents_family_;
  prometheus::Family<prometheus::Counter>& trace_fetch_family_;
  prometheus::Family<prometheus::Counter>& accept_errors_family_;
  prometheus::Family<prometheus::Counter>& limit_refusals_family_;
  prometheus::Family<prometheus::Counter>& admin_errors_family_;
  prometheus::Family<prometheus::Counter>& missing_attributes_family_;
  prometheus::Counter* missing_attribute_overflow_ = nullptr;

  std::array<prometheus::Counter*, static_cast<int>(HandshakeOutcome::count_)> handshakes_{};
  std::array<prometheus::Counter*, static_cast<int>(TimeoutKind::count_)> timeouts_{};
  std::array<prometheus::Counter*, kAdminErrorKinds> admin_errors_{};
  std::array<prometheus::Counter*, 2> bytes_{};
  std::array<prometheus::Counter*, static_cast<int>(AcceptError::count_)> accept_errors_{};
  std::array<prometheus::Counter*, static_cast<int>(Limit::count_)> limit_refusals_{};
  std::array<std::array<prometheus::Counter*, 16>, 2> frames_{};
  std::array<std::array<prometheus::Counter*, tap::kViolationKinds>, 2> violations_{};
  // [code - 1000][initiator] for 1000-1015; private and "other" in the map.
  std::array<std::array<prometheus::Counter*, 3>, 16> standard_closes_{};

  std::mutex mutex_;  // guards everything below
  std::uint32_t max_private_close_codes_;
  std::map<std::uint16_t, bool> private_codes_seen_;
  std::map<std::string, prometheus::Counter*> close_cache_;
  std::map<std::string, prometheus::Counter*> incident_cache_;
  std::map<std::string, prometheus::Counter*> trace_fetch_cache_;
  std::map<std::string, prometheus::Counter*> missing_attribute_cache_;
  std::set<std::string> missing_attribute_names_;

 public:
  IncidentPathMetrics incident_path;
  TraceLocationMetrics trace_location;
  UpstreamEndpointMetrics upstream_endpoints;
};

}  // namespace wsgate::proxy
