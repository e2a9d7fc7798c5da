#pragma once
// Everything the proxy is told at start: plain data, filled by options.cpp,
// read-only after start-up and shared by every session.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/endpoint.hpp"
#include "proxy/cidr.hpp"
#include "proxy/upstream_url.hpp"

namespace wsgate::proxy {

enum class TapMode { enforce, observe, off };

struct Route {
  std::string path_prefix;  // "/" for the default route
  UpstreamUrl upstream;
  std::string trace_url_template;  // may be empty: no trace fetch
  // Where its sessions connect: empty means every address the URL's host
  // resolves to; else these (each resolved), and the URL names only Host and SNI.
  std::vector<HostPort> endpoints;
};

struct ProxyConfig {
  HostPort listen{"0.0.0.0", 8443};
  HostPort admin{"127.0.0.1", 9090};
  std::string tls_cert;
  std::string tls_key;
  std::vector<Route> routes;  // longest prefix first
  std::string upstream_ca;
  std::string upstream_client_cert;
  std::string upstream_client_key;
  bool upstream_verify = true;
  // Upstream endpoint sets (docs/reliability.md, "Upstream endpoint sets").
  std::chrono::milliseconds upstream_resolve_interval{5000};  // 0: resolve once
  std::chrono::milliseconds upstream_eject_backoff{1000};
  std::chrono::milliseconds upstream_eject_backoff_max{30000};
  unsigned upstream_connect_attempts = 3;  // endpoints one session tries at most
  std::size_t upstream_endpoint_metrics_max = 64;

  unsigned threads = 0;  // workers; 0: one per CPU the process may use
  TapMode tap_mode = TapMode::enforce;
  std::uint64_t max_message_bytes = 16ull << 20;
  std::uint32_t max_fragments_per_message = 100000;
  std::size_t max_header_bytes = 16 * 1024;
  // Held only while a chunk is in flight (idle sessions hold none), except
  // on a wss upstream, which keeps min(this, 16 KiB) for the session.
  std::size_t relay_buffer_bytes = 64 * 1024;

  std::chrono::milliseconds tls_handshake_timeout{10000};
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds upstream_connect_timeout{5000};
  std::chrono::milliseconds idle_timeout{0};  // 0: off
  std::chrono::milliseconds close_timeout{5000};
  std::chrono::milliseconds drain_timeout{10000};
  std::chrono::seconds long_session_log_interval{60};
  // How often the control thread checks whether a burst of sessions has
  // settled and hands the heap they freed back to the kernel; 0: never.
  std::chrono::milliseconds memory_trim_interval{1000};

  std::uint32_t max_connections = 20000;
  std::uint32_t max_connections_per_ip = 0;  // 0: no per-IP cap
  double handshake_rate_per_ip = 0;          // new connections per second per IP; 0: off
  // Connections between accept and the 101; each holds a TLS state (~40 KiB)
  // and a timer, so a flood of idle probes is capped well below memory.
  std::uint32_t max_handshakes_in_flight = 1024;
  // IPs whose handshake-rate bucket is kept; beyond it new IPs are not
  // rate-limited (fail open) and the overflow is counted.
  std::size_t rate_limit_max_ips = 100000;
  bool trust_client_correlation_id = true;
  std::uint32_t max_private_close_codes = 64;

  // Incidents.
  std::vector<std::uint16_t> incident_codes{1011};
  std::size_t incident_capacity = 1000;
  std::string incident_log;
  std::uint64_t incident_log_max_bytes = 64ull << 20;
  std::string incident_fsync = "interval";  // always | interval | never
  std::chrono::milliseconds trace_fetch_timeout{2000};
  // Incident path bounds (docs/reliability.md, "Incident path limits").
  std::size_t trace_fetch_concurrency = 64;
  std::size_t incident_trace_max_bytes = 64 * 1024;
  std::size_t incident_queue_max = 10000;
  std::size_t incident_queue_max_bytes = 64u << 20;
  std::size_t incident_log_max_line_bytes = 4u << 20;
  std::size_t last_message_capture_bytes = 4096;
  // Flight recorder: frame headers kept per direction per session (0: off).
  std::uint16_t flight_recorder_frames = 16;
  // First bytes of each text message kept with its frame, redacted when
  // shown (0: off; at most FlightLog::kMaxTextPrefix).
  std::size_t flight_recorder_text_bytes = 0;
  // Pings per direction waiting for their pong, each an RTT sample (1-4).
  std::size_t ping_rtt_window = 4;

  // Admin endpoints. A non-empty token is required (Authorization: Bearer)
  // by the endpoints that name users, and by all of them with scope "all".
  std::string admin_token;
  std::string admin_token_scope = "users";  // users | all
  std::chrono::milliseconds admin_write_timeout{10000};
  std::size_t admin_max_page = 1000;  // sessions in one /connections answer
  // Sent with backend trace fetches (the backend's admin token).
  std::string trace_fetch_token;
  // Upstream addresses whose Wsgate-Trace-Location is honoured; none by default.
  std::vector<Cidr> trace_location_allow;
  // Longest announced trace URL honoured (a host, a port and a path with one
  // correlation ID of at most 128 characters fit many times over).
  std::size_t trace_location_max_bytes = 2048;

  std::string port_file;
};

}  // namespace wsgate::proxy
