#pragma once
// A route's upstream endpoint set: every address its upstream resolves to
// (or the --upstream-endpoint list), the sessions each one holds, and which
// are out of rotation after a failed connect or upgrade. Shared by every
// worker thread: each call takes the set's mutex for a scan of a few
// entries, never for I/O. Names are resolved by EndpointResolver on a
// thread of its own, so no worker ever waits on DNS.
#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/endpoint.hpp"
#include "proxy/metrics.hpp"

namespace wsgate::proxy {

using EndpointClock = std::chrono::steady_clock;

struct EndpointSetOptions {
  // Back-off of an ejected endpoint: `eject_backoff` after its first
  // failure, doubling with each failure in a row, at most `eject_backoff_max`.
  std::chrono::milliseconds eject_backoff{1000};
  std::chrono::milliseconds eject_backoff_max{30000};
  // Endpoints with a sessions series of their own; the rest share
  // endpoint="other", so a large headless Service cannot blow up the labels.
  std::size_t metrics_max = 64;
};

// "1.2.3.4:80", "[::1]:80": the form logs, incidents and labels use.
std::string endpoint_name(const boost::asio::ip::tcp::endpoint& ep);

struct EndpointEntry {
  boost::asio::ip::tcp::endpoint endpoint;
  std::string name;
  std::size_t sessions = 0;  // leases held: sessions connecting or relaying
  unsigned failures = 0;     // in a row; sets the back-off
  bool ejected = false;
  EndpointClock::time_point ejected_until{};
  bool probing = false;  // an expired ejection is being tried by one session
  bool removed = false;  // gone from the resolution; kept while sessions remain
  prometheus::Gauge* sessions_gauge = nullptr;
  bool own_label = false;
};

class EndpointSet;

// One session's hold on an endpoint: counted among its active sessions
// until destroyed (or reset()).
class EndpointLease {
 public:
  EndpointLease() = default;
  EndpointLease(EndpointLease&& other) noexcept = default;
  EndpointLease& operator=(EndpointLease&& other) noexcept;
  EndpointLease(const EndpointLease&) = delete;
  EndpointLease& operator=(const EndpointLease&) = delete;
  ~EndpointLease() { reset(); }

  explicit operator bool() const { return entry_ != nullptr; }
  const boost::asio::ip::tcp::endpoint& endpoint() const { return entry_->endpoint; }
  const std::string& name() const { return entry_->name; }
  void reset();

 private:
  friend class EndpointSet;
  std::shared_ptr<EndpointSet> set_;
  std::shared_ptr<EndpointEntry> entry_;
  bool probe_ = false;  // taken while the endpoint was ejected
};

class EndpointSet : public std::enable_shared_from_this<EndpointSet> {
 public:
  EndpointSet(std::string route, EndpointSetOptions options, UpstreamEndpointMetrics& metrics,
              std::uint64_t seed = std::random_device{}());
  ~EndpointSet();

  // The endpoint with the fewest active sessions, ties broken at random,
  // among those in rotation and not in `exclude` (the ones this session
  // already tried). An ejected endpoint whose back-off has run out is in
  // rotation for one session at a time (the probe). When every endpoint
  // left is ejected, the least loaded of them is tried anyway: a total
  // outage should not outlast its cause by the back-off. Empty when
  // nothing is left to try.
  EndpointLease acquire(const std::vector<boost::asio::ip::tcp::endpoint>& exclude,
                        EndpointClock::time_point now = EndpointClock::now());
  // The connect or upgrade on `lease` failed: eject its endpoint (once per
  // ejection: sessions that picked it before it was ejected do not extend it).
  void report_failure(const EndpointLease& lease,
                      EndpointClock::time_point now = EndpointClock::now());
  // It answered: back in rotation, back-off reset.
  void report_success(const EndpointLease& lease);

  // A new resolution: endpoints not in it leave rotation (their sessions
  // keep their counts until they end), new ones join, the rest keep their
  // counts and ejection state.
  void update(std::vector<boost::asio::ip::tcp::endpoint> endpoints);

  struct View {
    std::string name;
    std::size_t sessions;
    bool ejected;
    bool removed;
  };
  std::vector<View> snapshot() const;
  std::size_t size() const;  // endpoints in the current resolution
  const std::string& route() const { return route_; }
  // wsgate_upstream_endpoint_retries_total{route}: a connect moved on to
  // another endpoint.
  prometheus::Counter& retries() { return retries_; }

 private:
  friend class EndpointLease;
  void release(EndpointEntry& entry, bool probe);
  void attach_gauge(EndpointEntry& entry);
  void drop(std::size_t index);
  void update_state_gauges();

  const std::string route_;
  const EndpointSetOptions options_;
  UpstreamEndpointMetrics& metrics_;
  prometheus::Counter& ejections_;
  prometheus::Counter& retries_;
  prometheus::Gauge& healthy_;
  prometheus::Gauge& ejected_;
  prometheus::Gauge* other_sessions_ = nullptr;

  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<EndpointEntry>> entries_;
  std::size_t labelled_ = 0;
  std::mt19937_64 rng_;
};

// Resolves the names behind each endpoint set, at start (on the caller's
// thread) and then every `interval` on a thread of its own.
class EndpointResolver {
 public:
  using ResolveFn = std::function<std::vector<boost::asio::ip::tcp::endpoint>(
      const HostPort& source, boost::system::error_code& ec)>;
  struct Target {
    std::shared_ptr<EndpointSet> set;
    std::vector<HostPort> sources;  // names or address literals, each with its port
    prometheus::Counter* failures = nullptr;
  };

  // interval 0: resolve until every source has resolved once, then stop.
  EndpointResolver(std::vector<Target> targets, std::chrono::milliseconds interval,
                   ResolveFn resolve = system_resolve);
  ~EndpointResolver();

  // Resolves every source now and updates the sets. A source that fails
  // keeps its last addresses (logged at warn and counted). True when all
  // resolved.
  bool resolve_all();
  // Starts the re-resolution thread when some source is a name.
  void start();

  static std::vector<boost::asio::ip::tcp::endpoint> system_resolve(const HostPort& source,
                                                                    boost::system::error_code& ec);

 private:
  struct Source {
    HostPort where;
    bool literal = false;
    bool resolved = false;
    std::vector<boost::asio::ip::tcp::endpoint> last;
  };
  struct State {
    std::shared_ptr<EndpointSet> set;
    prometheus::Counter* failures;
    std::vector<Source> sources;
  };
  void loop();

  std::vector<State> states_;
  std::chrono::milliseconds interval_;
  ResolveFn resolve_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace wsgate::proxy
