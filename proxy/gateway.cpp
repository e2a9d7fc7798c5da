#include "proxy/gateway.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "common/logging.hpp"
#include "common/tls.hpp"
#include "proxy/session_summary.hpp"

namespace wsgate::proxy {

Gateway::Gateway(ProxyConfig config)
    : config_(std::move(config)),
      registry_(std::make_shared<prometheus::Registry>()),
      metrics_(*registry_, config_.max_private_close_codes),
      upstream_tls_(
          tls::make_client_context({config_.upstream_ca, config_.upstream_client_cert,
                                    config_.upstream_client_key, config_.upstream_verify})) {
  std::vector<EndpointResolver::Target> targets;
  for (const auto& r : config_.routes) {
    EndpointSetOptions opts{config_.upstream_eject_backoff, config_.upstream_eject_backoff_max,
                            config_.upstream_endpoint_metrics_max};
    auto set = std::make_shared<EndpointSet>(r.path_prefix, opts, metrics_.upstream_endpoints);
    std::vector<HostPort> sources = r.endpoints;
    if (sources.empty()) sources.push_back({r.upstream.host, r.upstream.port});
    targets.push_back(
        {set, std::move(sources),
         &metrics_.upstream_endpoints.resolve_failures.Add({{"route", r.path_prefix}})});
    endpoint_sets_.push_back(std::move(set));
  }
  resolver_ =
      std::make_unique<EndpointResolver>(std::move(targets), config_.upstream_resolve_interval);
  resolver_->resolve_all();
  resolver_->start();
  metrics_.ready.Set(1);
  metrics_.workers.Set(config_.threads);
}

Gateway::~Gateway() = default;

std::shared_ptr<boost::asio::ssl::context> Gateway::server_tls() const {
  std::lock_guard lock(tls_mutex_);
  return server_tls_;
}

void Gateway::set_server_tls(std::shared_ptr<boost::asio::ssl::context> ctx) {
  std::lock_guard lock(tls_mutex_);
  server_tls_ = std::move(ctx);
}

const Route* Gateway::route_for(std::string_view target) const {
  std::string_view path = target.substr(0, target.find('?'));
  // Routes are sorted longest prefix first (options.cpp).
  for (const auto& r : config_.routes) {
    if (r.path_prefix == "/" || path == r.path_prefix) return &r;
    if (path.starts_with(r.path_prefix) &&
        (r.path_prefix.back() == '/' || path[r.path_prefix.size()] == '/'))
      return &r;
  }
  return nullptr;
}

Gateway::Admission Gateway::try_admit(const std::string& client_ip) {
  std::lock_guard lock(limits_mutex_);
  if (total_connections_ >= config_.max_connections) return Admission::global_cap;
  auto& n = per_ip_[client_ip];
  if (config_.max_connections_per_ip != 0 && n >= config_.max_connections_per_ip) {
    if (n == 0) per_ip_.erase(client_ip);
    return Admission::ip_cap;
  }
  ++n;
  ++total_connections_;
  return Admission::ok;
}

void Gateway::release(const std::string& client_ip) {
  std::lock_guard lock(limits_mutex_);
  auto it = per_ip_.find(client_ip);
  if (it == per_ip_.end()) return;
  if (--it->second == 0) per_ip_.erase(it);
  --total_connections_;
}

bool Gateway::allow_handshake(const std::string& client_ip) {
  const double rate = config_.handshake_rate_per_ip;
  if (rate <= 0) return true;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(rate_mutex_);
  if (rate_buckets_.size() >= config_.rate_limit_max_ips && !rate_buckets_.count(client_ip)) {
    // Forget IPs whose bucket has refilled: they are indistinguishable from
    // new ones. At most once a second, so a full table costs no sweep per accept.
    if (now - last_rate_sweep_ >= std::chrono::seconds(1)) {
      last_rate_sweep_ = now;
      for (auto it = rate_buckets_.begin(); it != rate_buckets_.end();) {
        std::chrono::duration<double> idle = now - it->second.last;
        it = idle.count() * rate >= rate ? rate_buckets_.erase(it) : std::next(it);
      }
    }
    if (rate_buckets_.size() >= config_.rate_limit_max_ips) {
      // Fail open: refusing every new IP would let one busy range lock out the rest.
      metrics_.rate_limit_table_full.Increment();
      return true;
    }
  }
  auto [it, fresh] = rate_buckets_.try_emplace(client_ip, Bucket{rate, now});
  Bucket& b = it->second;
  if (!fresh) {
    std::chrono::duration<double> elapsed = now - b.last;
    b.tokens = std::min(rate, b.tokens + elapsed.count() * rate);
    b.last = now;
  }
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

nlohmann::json Gateway::sessions_json(std::size_t offset, std::size_t limit,
                                      std::vector<std::shared_ptr<LiveSession>>& held) const {
  held = sessions_.live();
  auto out = nlohmann::json::array();
  for (std::size_t i = offset; i < held.size() && out.size() < limit; ++i)
    out.push_back(held[i]->snapshot());
  return {{"connections", std::move(out)}, {"total", held.size()}};
}

void Gateway::release_on_owners(std::vector<std::shared_ptr<LiveSession>>&& held) {
  for (auto& s : held) {
    auto ex = s->executor();
    boost::asio::post(ex, [s = std::move(s)] {});
  }
  held.clear();
}

nlohmann::json Gateway::session_json(std::string_view correlation_id,
                                     std::shared_ptr<LiveSession>& held) const {
  for (auto& s : sessions_.live())
    if (s->correlation_id() == correlation_id) {
      held = s;
      return s->detail();
    }
  return nullptr;
}

void Gateway::drain_all() {
  for (auto& s : sessions_.live()) s->drain();
  for (auto& h : pending_handshakes_.live()) h->abort_for_drain();
}

std::uint64_t Gateway::handshake_started(std::weak_ptr<PendingHandshake> h) {
  handshakes_.fetch_add(1, std::memory_order_relaxed);
  metrics_.handshakes_in_flight.Increment();
  return pending_handshakes_.add(std::move(h));
}

void Gateway::handshake_ended(std::uint64_t registration) {
  if (registration) pending_handshakes_.remove(registration);
  metrics_.handshakes_in_flight.Decrement();
  handshakes_.fetch_sub(1, std::memory_order_relaxed);
}

void Gateway::set_draining() {
  draining_.store(true);
  metrics_.ready.Set(0);
}

void Gateway::report_session_end(const SessionSummary& s) {
  // wsgate_closes_total counts what the client received: a close of the
  // proxy's own that replaced a peer's abnormal end counts under its code.
  // The upstream's end stays visible in wsgate_upstream_lost_total.
  const bool proxy_sent = s.proxy_close_to_client != 0;
  const std::uint16_t client_code = proxy_sent ? s.proxy_close_to_client : s.code;
  const Initiator client_initiator = proxy_sent ? Initiator::proxy : s.initiator;
  metrics_.close(client_code, client_initiator).Increment();
  if (s.code == kCloseAbnormal && s.initiator == Initiator::upstream)
    metrics_.upstream_lost.Increment();
  if (client_code ==
      kCloseInternalError)  // the Grafana panel jumps from the 1011 spike to this session
    exemplars_.record(
        "wsgate_closes_total",
        {{"code", metrics_.close_label(client_code)},
         {"initiator", std::string(to_string(client_initiator))}},
        Exemplar{{{"trace_id", s.correlation_id}}, 1, std::chrono::system_clock::now()});
  metrics_.connection_duration_seconds.Observe(static_cast<double>(s.duration.count()) / 1000.0);
  auto level = s.code == kCloseInternalError ? spdlog::level::warn : spdlog::level::info;
  WSG_LOG(level, s.correlation_id,
          "session closed client={} upstream={} upstream_endpoint={} code={} reason=\"{}\" "
          "initiator={} close_handshake={} duration_ms={} c2u_frames={} c2u_bytes={} u2c_frames={} "
          "u2c_bytes={} end=\"{}\"",
          s.client, s.upstream, s.upstream_endpoint, s.code, s.reason, to_string(s.initiator),
          s.close_handshake_complete ? "complete" : "incomplete", s.duration.count(),
          s.client_to_upstream.frames, s.client_to_upstream.bytes, s.upstream_to_client.frames,
          s.upstream_to_client.bytes, s.end_detail);
  if (end_hook_) end_hook_(s);
}

}  // namespace wsgate::proxy
