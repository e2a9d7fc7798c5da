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
#include <cstdint>
#include <map>
#include <mutex>
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

using tap::Direction;

class ProxyMetrics {
 public:
  ProxyMetrics(prometheus::Registry& registry, std::uint32_t max_private_close_codes);

  prometheus::Gauge& connections_active;
  prometheus::Histogram& ping_rtt_seconds;
  prometheus::Histogram& connection_duration_seconds;
  prometheus::Gauge& tls_cert_expiry;
  prometheus::Gauge& ready;
  // Tunnel sockets the edge-triggered set could not take; they wait through
  // Asio (correct, one syscall more per wait).
  prometheus::Counter& edge_poller_fallbacks;

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
  prometheus::Family<prometheus::Counter>& admin_errors_family_;

  std::array<prometheus::Counter*, static_cast<int>(HandshakeOutcome::count_)> handshakes_{};
  std::array<prometheus::Counter*, static_cast<int>(TimeoutKind::count_)> timeouts_{};
  std::array<prometheus::Counter*, kAdminErrorKinds> admin_errors_{};
  std::array<prometheus::Counter*, 2> bytes_{};
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
};

}  // namespace wsgate::proxy
