#include "proxy/options.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iostream>
#include <thread>

#include "common/version.hpp"
#include "common/admin_server.hpp"
#include "common/yaml_config.hpp"
#include "proxy/incidents/trace_fetcher.hpp"

namespace wsgate::proxy {
namespace {

struct HostPortValidator : CLI::Validator {
  HostPortValidator() : CLI::Validator("HOST:PORT") {
    func_ = [](std::string& s) { return host_port_error(s); };
  }
};

struct ThreadsValidator : CLI::Validator {
  ThreadsValidator() : CLI::Validator("auto|1..256") {
    func_ = [](std::string& s) -> std::string {
      if (s == "auto") return {};
      unsigned v = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec == std::errc() && end == s.data() + s.size() && v >= 1 && v <= 256) return {};
      return "--threads must be auto or a number of workers from 1 to 256, got '" + s + "'";
    };
  }
};

struct UrlValidator : CLI::Validator {
  UrlValidator() : CLI::Validator("URL") {
    func_ = [](std::string& s) {
      std::string error;
      return parse_upstream_url(s, error) ? std::string() : error;
    };
  }
};

// The trace fetcher speaks plain HTTP only: anything else would fail every
// fetch after a clean start.
std::string trace_url_error(const std::string& url) {
  if (url.find("{correlation_id}") == std::string::npos)
    return "trace URL template must hold {correlation_id}: " + url;
  for (auto open = url.find('{'); open != std::string::npos; open = url.find('{', open + 1)) {
    const auto name = std::string_view(url).substr(open, url.find('}', open) + 1 - open);
    if (std::find(std::begin(incidents::kTracePlaceholders),
                  std::end(incidents::kTracePlaceholders),
                  name) == std::end(incidents::kTracePlaceholders))
      return "unknown placeholder in trace URL template (known: {correlation_id}, "
             "{upstream_host}, {upstream_port}): " +
             url;
  }
  if (url.rfind("https://", 0) == 0)
    return "https trace URLs are not supported (use http://): " + url;
  if (url.rfind("http://", 0) != 0 || url.size() == 7 || url[7] == '/')
    return "trace URL must be http://HOST[:PORT]/...: " + url;
  return {};
}

// A timeout or size that must be positive (0 would mean nothing sensible).
template <class T>
CLI::Range positive_up_to(T max) {
  return CLI::Range(T{1}, max);
}

}  // namespace

std::optional<ProxyOptions> parse_options(int argc, char** argv, int& exit_code) {
  ProxyOptions out;
  ProxyConfig& c = out.config;
  CLI::App app{"wsgate: transparent WebSocket proxy and diagnostic gateway", "wsgate"};
  app.get_formatter()->column_width(40);
  add_yaml_config_option(app);
  app.set_version_flag("--version", "wsgate " + std::string(version()),
                       "Print the version and exit")
      ->configurable(false);
  app.footer(std::string("Subcommand:\n  wsgate incidents list|show ID|tail  incidents of one or "
                         "many replicas, merged by time (wsgate incidents --help)\n") +
             kExitCodesHelp);

  std::string listen = c.listen.to_string(), admin = c.admin.to_string();
  std::string upstream, trace_url, tap_mode = "enforce", log_format = "text", log_level = "info";
  std::vector<std::string> routes, upstream_endpoints;
  int resolve_interval_s = 5, eject_backoff_ms = 1000, eject_backoff_max_ms = 30000;
  std::vector<int> incident_codes{1011};
  int tls_hs_ms = 10000, hs_ms = 10000, connect_ms = 5000, idle_s = 0, close_ms = 5000,
      drain_s = 10, trace_fetch_ms = 2000, admin_write_ms = 10000;
  double memory_trim_s = 1;
  std::string admin_token_file, trace_fetch_token_file;
  std::string threads = "auto";

  app.add_option("--listen", listen, "Client listener address")->check(HostPortValidator())->capture_default_str();
  app.add_option("--tls-cert", c.tls_cert, "Listener certificate chain (PEM); TLS when given with --tls-key")->check(CLI::ExistingFile);
  app.add_option("--tls-key", c.tls_key, "Listener private key (PEM)")->check(CLI::ExistingFile);
  app.add_option("--upstream", upstream, "Default upstream, ws://HOST:PORT[/prefix] or wss://...")->check(UrlValidator());
  app.add_option("--upstream-endpoint", upstream_endpoints,
                 "Default route's upstream endpoint HOST:PORT (repeatable; names resolve to all "
                 "their addresses); the --upstream URL then names only Host and SNI")
      ->check(HostPortValidator());
  app.add_option("--upstream-resolve-interval", resolve_interval_s,
                 "Seconds between re-resolutions of upstream names, off the worker threads (0: "
                 "resolve once at start)")
      ->check(CLI::Range(0, 86400))
      ->capture_default_str();
  app.add_option("--upstream-eject-backoff-ms", eject_backoff_ms,
                 "An upstream endpoint whose connect or upgrade fails leaves rotation this long, "
                 "doubling with each failure in a row")
      ->check(positive_up_to(3600000))
      ->capture_default_str();
  app.add_option("--upstream-eject-backoff-max-ms", eject_backoff_max_ms,
                 "Longest ejection of an upstream endpoint")
      ->check(positive_up_to(3600000))
      ->capture_default_str();
  app.add_option("--upstream-connect-attempts", c.upstream_connect_attempts,
                 "Endpoints one session tries (a failed TCP or TLS connect moves on to the next) "
                 "before its client gets a 502")
      ->check(CLI::Range(1u, 16u))
      ->capture_default_str();
  app.add_option("--upstream-endpoint-metrics-max", c.upstream_endpoint_metrics_max,
                 "Endpoints per route with a wsgate_upstream_endpoint_sessions series of their "
                 "own; the rest share endpoint=\"other\"")
      ->check(CLI::Range(std::size_t{0}, std::size_t{10000}))
      ->capture_default_str();
  app.add_option("--route", routes, "Extra route PREFIX=URL[,TRACE_URL] (repeatable); longest prefix wins");
  app.add_option(
      "--upstream-trace-url", trace_url,
      "Backend stage-trace URL template holding {correlation_id}, for the default route; "
      "{upstream_host} and {upstream_port} name the upstream endpoint the session used");
  std::vector<std::string> trace_location_allow;
  app.add_option("--trace-location-allow", trace_location_allow,
                 "Honour a backend's Wsgate-Trace-Location (its trace URL, announced in the 101) "
                 "only from upstream addresses in this CIDR (repeatable, IPv4 or IPv6); default "
                 "none: always stripped, never honoured");
  app.add_option("--trace-location-max-bytes", c.trace_location_max_bytes,
                 "Longest Wsgate-Trace-Location URL honoured; a longer one is ignored "
                 "(wsgate_trace_location_rejected_total{reason=\"invalid_url\"})")
      ->check(CLI::Range(std::size_t{64}, std::size_t{65536}))
      ->capture_default_str();
  app.add_option("--upstream-ca", c.upstream_ca, "CA bundle for wss:// upstreams (default: system CAs)")->check(CLI::ExistingFile);
  app.add_option("--upstream-client-cert", c.upstream_client_cert, "Client certificate for wss:// upstreams")->check(CLI::ExistingFile);
  app.add_option("--upstream-client-key", c.upstream_client_key, "Client key for wss:// upstreams")->check(CLI::ExistingFile);
  app.add_flag("!--upstream-insecure", c.upstream_verify, "Do not verify the upstream certificate (testing only)");
  app.add_option("--admin", admin, "Admin HTTP address: /metrics /healthz /readyz /incidents /connections")->check(HostPortValidator())->capture_default_str();
  app.add_option("--incident-log", c.incident_log, "Append-only JSONL incident log (loaded back on start)");
  app.add_option("--incident-codes", incident_codes, "Close codes that open an incident")->capture_default_str();
  app.add_option("--incident-capacity", c.incident_capacity, "Incidents kept in memory")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}))
      ->capture_default_str();
  app.add_option("--incident-log-max-bytes", c.incident_log_max_bytes,
                 "Rotate the incident log past this size")
      ->check(CLI::Range(std::uint64_t{4096}, std::uint64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--incident-fsync", c.incident_fsync, "Incident log fsync policy")->check(CLI::IsMember({"always", "interval", "never"}))->capture_default_str();
  app.add_option("--trace-fetch-timeout-ms", trace_fetch_ms, "Backend trace fetch timeout")
      ->check(positive_up_to(3600000))
      ->capture_default_str();
  app.add_option("--trace-fetch-concurrency", c.trace_fetch_concurrency, "Backend trace fetches in flight at most; past it an incident is recorded without its trace")->check(CLI::Range(std::size_t{1}, std::size_t{100000}))->capture_default_str();
  app.add_option("--incident-trace-max-bytes", c.incident_trace_max_bytes, "Stored backend trace per incident at most (serialized); a larger one keeps the failing stage and its neighbours")->check(CLI::Range(std::size_t{1024}, std::size_t{64} << 20))->capture_default_str();
  app.add_option("--incident-queue-max", c.incident_queue_max, "Incident records waiting for the log writer at most; past it the log write is dropped (the record stays in memory)")->check(CLI::Range(std::size_t{1}, std::size_t{10000000}))->capture_default_str();
  app.add_option("--incident-queue-max-bytes", c.incident_queue_max_bytes, "Bytes of incident records waiting for the log writer at most (one record is always taken when none wait)")->check(CLI::Range(std::size_t{1}, std::size_t{1} << 34))->capture_default_str();
  app.add_option("--incident-log-max-line-bytes", c.incident_log_max_line_bytes, "Longest incident log line loaded back on start; longer lines are skipped")->check(CLI::Range(std::size_t{4096}, std::size_t{1} << 30))->capture_default_str();
  app.add_option("--log-format", log_format, "Log line format")->check(CLI::IsMember({"json", "text"}))->capture_default_str();
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|critical|off")->check(CLI::IsMember({"trace", "debug", "info", "warn", "warning", "error", "critical", "off"}))->capture_default_str();
  app.add_option("--threads", threads, "I/O workers, each one thread with its own event loop; a session stays on the worker that accepted it. auto: one per CPU this process may use (its affinity mask and cgroup cpu.max quota, rounded up), logged at start")->check(ThreadsValidator())->capture_default_str();
  app.add_option("--tap-mode", tap_mode, "Frame tap: enforce (close on violations), observe (count only), off")->check(CLI::IsMember({"enforce", "observe", "off"}))->capture_default_str();
  app.add_option("--max-message-bytes", c.max_message_bytes,
                 "Per-message size cap enforced by the tap")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--max-fragments", c.max_fragments_per_message, "Frames per message cap")
      ->check(CLI::Range(std::uint32_t{1}, std::uint32_t{100000000}))
      ->capture_default_str();
  app.add_option("--max-header-bytes", c.max_header_bytes,
                 "Upgrade request header limit (431 past it)")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 20))
      ->capture_default_str();
  app.add_option("--relay-buffer-bytes", c.relay_buffer_bytes, "Relay buffer per direction, held only while a chunk is in flight (a wss upstream keeps up to 16 KiB of it for the session); lower it when many clients read slowly")->check(CLI::Range(1024ul, 1ul << 24))->capture_default_str();
  app.add_option("--tls-handshake-timeout-ms", tls_hs_ms, "Client TLS handshake timeout")
      ->check(positive_up_to(3600000))
      ->capture_default_str();
  app.add_option("--handshake-timeout-ms", hs_ms, "HTTP upgrade timeout (client and upstream)")
      ->check(positive_up_to(3600000))
      ->capture_default_str();
  app.add_option("--upstream-connect-timeout-ms", connect_ms,
                 "Upstream TCP connect timeout per endpoint tried (all tries together: "
                 "--handshake-timeout-ms)")
      ->check(positive_up_to(3600000))
      ->capture_default_str();
  app.add_option("--flight-recorder-frames", c.flight_recorder_frames,
                 "Frame headers kept per direction per session for incidents and /connections/{id} "
                 "(0: off; 12 bytes each, allocated on the first frame)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_option("--flight-recorder-text-bytes", c.flight_recorder_text_bytes,
                 "First bytes of each text message kept with its recorded frame, shown redacted "
                 "(a word cut at the end is dropped) in incidents and /connections/{id}; message "
                 "contents are user data, so 0 (off) unless you need them")
      ->check(CLI::Range(std::size_t{0}, std::size_t{124}))
      ->capture_default_str();
  app.add_option(
         "--ping-rtt-window", c.ping_rtt_window,
         "Pings per direction awaiting their pong, each timed into wsgate_ping_rtt_seconds; past "
         "it the oldest is dropped (wsgate_ping_rtt_evicted_total)")
      ->check(CLI::Range(1, 4))
      ->capture_default_str();
  app.add_option("--idle-timeout", idle_s, "Close sessions idle this many seconds (0: never)")
      ->check(CLI::Range(0, 7 * 86400))
      ->capture_default_str();
  app.add_option("--close-timeout-ms", close_ms, "Time allowed for a close handshake")
      ->check(positive_up_to(3600000))
      ->capture_default_str();
  app.add_option("--drain-timeout", drain_s, "Seconds to wait for sessions on SIGTERM")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
  app.add_option("--memory-trim-interval", memory_trim_s,
                 "Seconds between checks whether a burst of connections has settled; once the "
                 "count of sessions and handshakes holds still for one interval after a change, "
                 "the heap they freed goes back to the kernel (malloc_trim; "
                 "wsgate_memory_trims_total). 0: never")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--max-connections", c.max_connections, "Global session cap (503 past it)")
      ->check(CLI::Range(std::uint32_t{1}, std::uint32_t{10000000}))
      ->capture_default_str();
  app.add_option("--max-connections-per-ip", c.max_connections_per_ip,
                 "Per-client-IP cap (0: none)")
      ->check(CLI::Range(std::uint32_t{0}, std::uint32_t{10000000}))
      ->capture_default_str();
  app.add_option("--handshake-rate-per-ip", c.handshake_rate_per_ip, "New connections per second per client IP, burst of the same size (0: no limit)")->check(CLI::Range(0.0, 1e6))->capture_default_str();
  app.add_option("--max-handshakes-in-flight", c.max_handshakes_in_flight, "Connections accepted and not yet relaying (TLS, upgrade, upstream); more are closed at accept")->check(CLI::Range(1u, 1000000u))->capture_default_str();
  app.add_option("--rate-limit-max-ips", c.rate_limit_max_ips, "Client IPs tracked by --handshake-rate-per-ip; new IPs beyond it pass unlimited (counted)")->check(CLI::Range(std::size_t{1}, std::size_t{100000000}))->capture_default_str();
  app.add_flag("!--no-trust-client-correlation-id", c.trust_client_correlation_id, "Always generate correlation IDs");
  app.add_option("--max-private-close-codes", c.max_private_close_codes,
                 "Distinct 3000-4999 close-code labels before 'other'")
      ->check(CLI::Range(std::uint32_t{0}, std::uint32_t{2000}))
      ->capture_default_str();
  app.add_option("--admin-token-file", admin_token_file, "Bearer token (the file's content) that /incidents, /incidents/ID, /ui/ (incident browser) and /connections require; none when not given");
  app.add_option("--admin-token-scope", c.admin_token_scope, "What the admin token guards: users (endpoints naming users) or all (also /metrics /healthz /readyz)")->check(CLI::IsMember({"users", "all"}))->capture_default_str();
  app.add_option("--admin-write-timeout-ms", admin_write_ms, "Time an admin client has to read an answer before the connection is dropped")->check(CLI::Range(1, 3600000))->capture_default_str();
  app.add_option("--admin-max-page", c.admin_max_page, "Most sessions one /connections answer lists (?limit=N&offset=M pages; default limit 100)")->check(CLI::Range(std::size_t{1}, std::size_t{1000000}))->capture_default_str();
  app.add_option("--trace-fetch-token-file", trace_fetch_token_file, "Bearer token (the file's content) sent with backend trace fetches: the backend's --admin-token-file");
  app.add_option("--port-file", c.port_file, "Write the bound ports as JSON here (for tests and scripts)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    exit_code = report_parse_error(app, e);
    return std::nullopt;
  }

  auto fail = [&](const std::string& msg) -> std::optional<ProxyOptions> {
    std::cerr << "wsgate: " << msg << "\n";
    exit_code = 2;
    return std::nullopt;
  };
  c.listen = *parse_host_port(listen);
  c.admin = *parse_host_port(admin);
  if (c.tls_cert.empty() != c.tls_key.empty()) return fail("--tls-cert and --tls-key go together");
  std::string error;
  if (!trace_url.empty())
    if (auto why = trace_url_error(trace_url); !why.empty())
      return fail("--upstream-trace-url: " + why);
  if (!upstream.empty())
    c.routes.push_back({"/", *parse_upstream_url(upstream, error), trace_url, {}});
  if (!upstream_endpoints.empty() && upstream.empty())
    return fail("--upstream-endpoint needs --upstream (the URL names Host, SNI and the path)");
  for (auto& e : upstream_endpoints) {
    auto where = *parse_host_port(e);
    if (where.port == 0) return fail("--upstream-endpoint " + e + ": port 0 is not an endpoint");
    c.routes.back().endpoints.push_back(std::move(where));
  }
  if (eject_backoff_max_ms < eject_backoff_ms)
    return fail("--upstream-eject-backoff-max-ms is below --upstream-eject-backoff-ms");
  c.upstream_resolve_interval = std::chrono::seconds(resolve_interval_s);
  c.upstream_eject_backoff = std::chrono::milliseconds(eject_backoff_ms);
  c.upstream_eject_backoff_max = std::chrono::milliseconds(eject_backoff_max_ms);
  for (auto& r : routes) {
    auto eq = r.find('=');
    if (eq == std::string::npos || eq == 0 || r[0] != '/')
      return fail("--route must be PREFIX=URL[,TRACE_URL], got '" + r + "'");
    std::string url_part = r.substr(eq + 1), trace_part;
    if (auto comma = url_part.find(','); comma != std::string::npos) {
      trace_part = url_part.substr(comma + 1);
      url_part.resize(comma);
    }
    auto url = parse_upstream_url(url_part, error);
    if (!url) return fail("--route " + r + ": " + error);
    if (!trace_part.empty())
      if (auto why = trace_url_error(trace_part); !why.empty())
        return fail("--route " + r + ": " + why);
    std::string prefix = r.substr(0, eq);
    while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
    c.routes.push_back({prefix, *url, trace_part, {}});
  }
  if (c.routes.empty()) return fail("no upstream: give --upstream URL (or --route)");
  std::stable_sort(c.routes.begin(), c.routes.end(), [](const Route& a, const Route& b) {
    return a.path_prefix.size() > b.path_prefix.size();
  });
  c.incident_codes.clear();
  for (int code : incident_codes) {
    if (code < 1000 || code > 4999) return fail("--incident-codes: " + std::to_string(code) + " is not a close code");
    c.incident_codes.push_back(static_cast<std::uint16_t>(code));
  }
  c.threads = threads == "auto" ? 0u : static_cast<unsigned>(std::stoul(threads));
  c.tap_mode = tap_mode == "enforce" ? TapMode::enforce : tap_mode == "observe" ? TapMode::observe : TapMode::off;
  c.tls_handshake_timeout = std::chrono::milliseconds(tls_hs_ms);
  c.handshake_timeout = std::chrono::milliseconds(hs_ms);
  c.upstream_connect_timeout = std::chrono::milliseconds(connect_ms);
  c.idle_timeout = std::chrono::seconds(idle_s);
  c.close_timeout = std::chrono::milliseconds(close_ms);
  c.drain_timeout = std::chrono::seconds(drain_s);
  c.memory_trim_interval = std::chrono::milliseconds(std::llround(std::ceil(memory_trim_s * 1000)));
  c.trace_fetch_timeout = std::chrono::milliseconds(trace_fetch_ms);
  c.admin_write_timeout = std::chrono::milliseconds(admin_write_ms);
  if (!admin_token_file.empty()) {
    auto token = read_token_file(admin_token_file, error);
    if (!token) return fail("--admin-token-file: " + error);
    c.admin_token = std::move(*token);
  } else if (c.admin_token_scope == "all") {
    return fail("--admin-token-scope all needs --admin-token-file");
  }
  for (const auto& text : trace_location_allow) {
    auto cidr = parse_cidr(text, error);
    if (!cidr) return fail("--trace-location-allow: " + error);
    c.trace_location_allow.push_back(*cidr);
  }
  if (!trace_fetch_token_file.empty()) {
    auto token = read_token_file(trace_fetch_token_file, error);
    if (!token) return fail("--trace-fetch-token-file: " + error);
    c.trace_fetch_token = std::move(*token);
  }
  out.log_format = *logging::parse_format(log_format);
  out.log_level = *logging::parse_level(log_level == "warning" ? "warn" : log_level);
  return out;
}

}  // namespace wsgate::proxy
