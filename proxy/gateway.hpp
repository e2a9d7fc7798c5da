#pragma once
// State shared by every session: configuration, metrics, TLS contexts, the
// registry of live sessions and the connection caps. Thread-safe; sessions
// hold a reference and keep their own per-connection state apart.
#include <prometheus/registry.h>

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <unordered_map>

#include "common/openmetrics.hpp"
#include "common/session_registry.hpp"
#include "proxy/config.hpp"
#include "proxy/metrics.hpp"
#include "proxy/upstream_endpoints.hpp"

namespace wsgate::proxy {

struct SessionSummary;

// A connection between accept and the 101, as drain sees it.
class PendingHandshake {
 public:
  virtual ~PendingHandshake() = default;
  // Any thread: ends the handshake unless it already waits on the upstream
  // (that one ends on its own deadline and is then refused or drained).
  virtual void abort_for_drain() = 0;
};

// A relayed session as the registry sees it.
class LiveSession {
 public:
  virtual ~LiveSession() = default;
  virtual nlohmann::json snapshot() const = 0;  // any thread
  virtual void drain() = 0;                     // any thread; posts to the session's worker
  // The session's worker: the only thread that may run its handlers or
  // destroy it.
  virtual boost::asio::any_io_executor executor() const = 0;
  // One session in full (its flight recorder too), for /connections/{id}.
  virtual nlohmann::json detail() const = 0;
  virtual std::string_view correlation_id() const = 0;  // any thread
};

// What happens with a finished session beyond metrics and the close log line
// (the incident recorder plugs in here).
using SessionEndHook = std::function<void(const SessionSummary&)>;

class Gateway {
 public:
  explicit Gateway(ProxyConfig config);
  ~Gateway();

  const ProxyConfig& config() const { return config_; }
  ProxyMetrics& metrics() { return metrics_; }
  prometheus::Registry& registry() { return *registry_; }
  // Latest exemplar (correlation ID) per counter series, for OpenMetrics.
  ExemplarStore& exemplars() { return exemplars_; }

  // Listener TLS context; replaced whole on SIGHUP, sessions keep the one
  // they started with. Null when serving plaintext.
  std::shared_ptr<boost::asio::ssl::context> server_tls() const;
  void set_server_tls(std::shared_ptr<boost::asio::ssl::context> ctx);
  boost::asio::ssl::context& upstream_tls() { return *upstream_tls_; }

  // Route for a request path: the longest matching prefix, else null.
  const Route* route_for(std::string_view target) const;

  // The endpoint set of a route from route_for(). Names are resolved once
  // here at start, then re-resolved on the resolver's own thread.
  std::shared_ptr<EndpointSet> endpoints(const Route& route) const {
    return endpoint_sets_[static_cast<std::size_t>(&route - config_.routes.data())];
  }

  // Connection caps. try_admit() counts the client in; release() must follow.
  enum class Admission { ok, global_cap, ip_cap };
  Admission try_admit(const std::string& client_ip);
  void release(const std::string& client_ip);

  // Per-IP token bucket for new connections (--handshake-rate-per-ip):
  // false means refuse this one.
  bool allow_handshake(const std::string& client_ip);

  // Live sessions.
  std::uint64_t add_session(std::weak_ptr<LiveSession> s) { return sessions_.add(std::move(s)); }
  void remove_session(std::uint64_t id) { sessions_.remove(id); }
  std::size_t session_count() const { return sessions_.size(); }
  // {"connections": [snapshots of live sessions offset.. (at most limit)],
  // "total": live sessions}. Every session reference taken is handed to
  // `held`: the caller hands them to release_on_owners() once done, since
  // the last reference can be the one taken here.
  nlohmann::json sessions_json(std::size_t offset, std::size_t limit,
                               std::vector<std::shared_ptr<LiveSession>>& held) const;
  // Drops each reference on its session's worker, where a session may be
  // destroyed (its sockets belong to that worker's reactor).
  static void release_on_owners(std::vector<std::shared_ptr<LiveSession>>&& held);
  // detail() of the live session with this correlation ID, null if none;
  // the reference taken goes to `held` (see sessions_json).
  nlohmann::json session_json(std::string_view correlation_id,
                              std::shared_ptr<LiveSession>& held) const;
  void drain_all();

  // Connections between accept and the 101 (drain waits for them, and ends
  // those that have not reached the upstream yet).
  std::uint64_t handshake_started(std::weak_ptr<PendingHandshake> h);
  void handshake_ended(std::uint64_t registration);
  std::size_t handshakes_in_flight() const { return handshakes_.load(std::memory_order_relaxed); }
  std::size_t busy_count() const { return session_count() + handshakes_.load(); }

  bool draining() const { return draining_.load(std::memory_order_relaxed); }
  void set_draining();

  void set_session_end_hook(SessionEndHook hook) { end_hook_ = std::move(hook); }
  // Metrics, the close log line, then the hook. Called once per session.
  void report_session_end(const SessionSummary& summary);

 private:
  ProxyConfig config_;
  std::shared_ptr<prometheus::Registry> registry_;
  ProxyMetrics metrics_;
  ExemplarStore exemplars_;
  std::shared_ptr<boost::asio::ssl::context> upstream_tls_;
  std::vector<std::shared_ptr<EndpointSet>> endpoint_sets_;  // by index in config_.routes
  std::unique_ptr<EndpointResolver> resolver_;

  mutable std::mutex tls_mutex_;
  std::shared_ptr<boost::asio::ssl::context> server_tls_;

  std::mutex limits_mutex_;
  std::uint32_t total_connections_ = 0;
  std::unordered_map<std::string, std::uint32_t> per_ip_;

  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point last;
  };
  std::mutex rate_mutex_;
  std::unordered_map<std::string, Bucket> rate_buckets_;
  std::chrono::steady_clock::time_point last_rate_sweep_{};

  SessionRegistry<LiveSession> sessions_;
  SessionRegistry<PendingHandshake> pending_handshakes_;

  std::atomic<bool> draining_{false};
  std::atomic<std::size_t> handshakes_{0};
  SessionEndHook end_hook_;
};

}  // namespace wsgate::proxy
