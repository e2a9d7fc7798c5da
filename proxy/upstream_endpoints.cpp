#include "proxy/upstream_endpoints.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>

namespace wsgate::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string endpoint_name(const tcp::endpoint& ep) {
  const auto addr = ep.address();
  return (addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string()) + ":" +
         std::to_string(ep.port());
}

// ---------------------------------------------------------------- EndpointLease

EndpointLease& EndpointLease::operator=(EndpointLease&& other) noexcept {
  if (this != &other) {
    reset();
    set_ = std::move(other.set_);
    entry_ = std::move(other.entry_);
    probe_ = other.probe_;
  }
  return *this;
}

void EndpointLease::reset() {
  if (!entry_) return;
  set_->release(*entry_, probe_);
  entry_.reset();
  set_.reset();
}

// ---------------------------------------------------------------- EndpointSet

EndpointSet::EndpointSet(std::string route, EndpointSetOptions options,
                         UpstreamEndpointMetrics& metrics, std::uint64_t seed)
    : route_(std::move(route)),
      options_(options),
      metrics_(metrics),
      ejections_(metrics.ejections.Add({{"route", route_}})),
      retries_(metrics.retries.Add({{"route", route_}})),
      healthy_(metrics.endpoints.Add({{"route", route_}, {"state", "healthy"}})),
      ejected_(metrics.endpoints.Add({{"route", route_}, {"state", "ejected"}})),
      rng_(seed) {}

EndpointSet::~EndpointSet() {
  std::lock_guard lock(mutex_);
  for (auto& e : entries_)
    if (e->own_label) metrics_.sessions.Remove(e->sessions_gauge);
}

EndpointLease EndpointSet::acquire(const std::vector<tcp::endpoint>& exclude,
                                   EndpointClock::time_point now) {
  std::lock_guard lock(mutex_);
  auto excluded = [&](const EndpointEntry& e) {
    return std::find(exclude.begin(), exclude.end(), e.endpoint) != exclude.end();
  };
  // Reservoir sampling over the least loaded: a uniform pick among ties
  // in one pass.
  auto pick = [&](auto eligible) -> EndpointEntry* {
    EndpointEntry* best = nullptr;
    std::uint64_t ties = 0;
    for (auto& p : entries_) {
      EndpointEntry& e = *p;
      if (e.removed || excluded(e) || !eligible(e)) continue;
      if (!best || e.sessions < best->sessions) {
        best = &e;
        ties = 1;
      } else if (e.sessions == best->sessions &&
                 std::uniform_int_distribution<std::uint64_t>(0, ties++)(rng_) == 0) {
        best = &e;
      }
    }
    return best;
  };
  EndpointEntry* chosen = pick(
      [&](const EndpointEntry& e) { return !e.ejected || (now >= e.ejected_until && !e.probing); });
  if (!chosen) chosen = pick([](const EndpointEntry&) { return true; });
  if (!chosen) return {};

  EndpointLease lease;
  lease.set_ = shared_from_this();
  for (auto& p : entries_)
    if (p.get() == chosen) lease.entry_ = p;
  lease.probe_ = chosen->ejected;
  if (chosen->ejected) chosen->probing = true;
  ++chosen->sessions;
  chosen->sessions_gauge->Increment();
  return lease;
}

void EndpointSet::report_failure(const EndpointLease& lease, EndpointClock::time_point now) {
  if (!lease) return;
  std::lock_guard lock(mutex_);
  EndpointEntry& e = *lease.entry_;
  // Picked before another session ejected it: that ejection stands.
  if (e.ejected && !lease.probe_) return;
  e.failures = std::min(e.failures + 1, 31u);
  auto backoff = options_.eject_backoff;
  for (unsigned i = 1; i < e.failures && backoff < options_.eject_backoff_max; ++i) backoff *= 2;
  backoff = std::min(backoff, options_.eject_backoff_max);
  e.ejected = true;
  e.probing = false;
  e.ejected_until = now + backoff;
  ejections_.Increment();
  update_state_gauges();
  spdlog::warn("upstream endpoint {} (route {}) ejected for {} ms after {} failure(s) in a row",
               e.name, route_, backoff.count(), e.failures);
}

void EndpointSet::report_success(const EndpointLease& lease) {
  if (!lease) return;
  std::lock_guard lock(mutex_);
  EndpointEntry& e = *lease.entry_;
  e.failures = 0;
  e.probing = false;
  if (!e.ejected) return;
  e.ejected = false;
  update_state_gauges();
  spdlog::info("upstream endpoint {} (route {}) answered: back in rotation", e.name, route_);
}

void EndpointSet::release(EndpointEntry& e, bool probe) {
  std::lock_guard lock(mutex_);
  if (probe) e.probing = false;  // a probe that ended unanswered lets the next one try
  --e.sessions;
  e.sessions_gauge->Decrement();
  if (e.removed && e.sessions == 0)
    for (std::size_t i = 0; i < entries_.size(); ++i)
      if (entries_[i].get() == &e) return drop(i);
}

void EndpointSet::attach_gauge(EndpointEntry& e) {
  if (labelled_ < options_.metrics_max) {
    e.sessions_gauge = &metrics_.sessions.Add({{"route", route_}, {"endpoint", e.name}});
    e.own_label = true;
    ++labelled_;
    return;
  }
  if (!other_sessions_)
    other_sessions_ = &metrics_.sessions.Add({{"route", route_}, {"endpoint", "other"}});
  e.sessions_gauge = other_sessions_;
}

void EndpointSet::drop(std::size_t index) {
  EndpointEntry& e = *entries_[index];
  if (e.own_label) {
    metrics_.sessions.Remove(e.sessions_gauge);
    --labelled_;
  }
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(index));
}

void EndpointSet::update_state_gauges() {
  double healthy = 0, ejected = 0;
  for (auto& e : entries_) {
    if (e->removed) continue;
    (e->ejected ? ejected : healthy) += 1;
  }
  healthy_.Set(healthy);
  ejected_.Set(ejected);
}

void EndpointSet::update(std::vector<tcp::endpoint> endpoints) {
  std::sort(endpoints.begin(), endpoints.end());
  endpoints.erase(std::unique(endpoints.begin(), endpoints.end()), endpoints.end());
  std::lock_guard lock(mutex_);
  for (std::size_t i = entries_.size(); i-- > 0;) {
    EndpointEntry& e = *entries_[i];
    bool present = std::binary_search(endpoints.begin(), endpoints.end(), e.endpoint);
    if (present == !e.removed) continue;
    if (present) {
      e.removed = false;
      spdlog::info("upstream endpoint {} (route {}) resolved again", e.name, route_);
      continue;
    }
    e.removed = true;
    spdlog::info("upstream endpoint {} (route {}) no longer resolved; {} session(s) stay on it",
                 e.name, route_, e.sessions);
    if (e.sessions == 0) drop(i);
  }
  for (const auto& ep : endpoints) {
    bool known = std::any_of(entries_.begin(), entries_.end(),
                             [&](const auto& e) { return e->endpoint == ep; });
    if (known) continue;
    auto e = std::make_shared<EndpointEntry>();
    e->endpoint = ep;
    e->name = endpoint_name(ep);
    attach_gauge(*e);
    entries_.push_back(std::move(e));
  }
  update_state_gauges();
}

std::vector<EndpointSet::View> EndpointSet::snapshot() const {
  std::lock_guard lock(mutex_);
  std::vector<View> out;
  for (auto& e : entries_) out.push_back({e->name, e->sessions, e->ejected, e->removed});
  return out;
}

std::size_t EndpointSet::size() const {
  std::lock_guard lock(mutex_);
  return static_cast<std::size_t>(
      std::count_if(entries_.begin(), entries_.end(), [](const auto& e) { return !e->removed; }));
}

// ---------------------------------------------------------------- EndpointResolver

EndpointResolver::EndpointResolver(std::vector<Target> targets, std::chrono::milliseconds interval,
                                   ResolveFn resolve)
    : interval_(interval), resolve_(std::move(resolve)) {
  for (auto& t : targets) {
    State s{std::move(t.set), t.failures, {}};
    for (auto& where : t.sources) {
      boost::system::error_code ec;
      net::ip::make_address(where.host, ec);
      s.sources.push_back({std::move(where), !ec, false, {}});
    }
    states_.push_back(std::move(s));
  }
}

EndpointResolver::~EndpointResolver() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<tcp::endpoint> EndpointResolver::system_resolve(const HostPort& source,
                                                            boost::system::error_code& ec) {
  // Blocking getaddrinfo: only ever called at start or on the resolver's thread.
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(source.host, std::to_string(source.port), ec);
  std::vector<tcp::endpoint> out;
  if (!ec)
    for (const auto& r : results) out.push_back(r.endpoint());
  return out;
}

bool EndpointResolver::resolve_all() {
  bool all = true;
  for (auto& s : states_) {
    std::vector<tcp::endpoint> merged;
    for (auto& src : s.sources) {
      if (!src.literal || !src.resolved) {
        boost::system::error_code ec;
        auto found = resolve_(src.where, ec);
        if (ec || found.empty()) {
          all = false;
          if (s.failures) s.failures->Increment();
          spdlog::warn("upstream {} (route {}): cannot resolve: {}; keeping {} address(es)",
                       src.where.to_string(), s.set->route(), ec ? ec.message() : "no addresses",
                       src.last.size());
        } else {
          src.last = std::move(found);
          src.resolved = true;
        }
      }
      merged.insert(merged.end(), src.last.begin(), src.last.end());
    }
    s.set->update(std::move(merged));
  }
  return all;
}

void EndpointResolver::start() {
  bool names = std::any_of(states_.begin(), states_.end(), [](const State& s) {
    return std::any_of(s.sources.begin(), s.sources.end(),
                       [](const Source& src) { return !src.literal; });
  });
  if (!names || thread_.joinable()) return;
  thread_ = std::thread([this] { loop(); });
}

void EndpointResolver::loop() {
  bool done_once = std::all_of(states_.begin(), states_.end(), [](const State& s) {
    return std::all_of(s.sources.begin(), s.sources.end(),
                       [](const Source& src) { return src.resolved; });
  });
  for (;;) {
    // Interval 0 resolves once; until that has worked for every name, it
    // retries each second.
    if (interval_.count() == 0 && done_once) return;
    auto wait = interval_.count() == 0 ? std::chrono::milliseconds(1000) : interval_;
    {
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, wait, [this] { return stopping_; })) return;
    }
    done_once = resolve_all() || done_once;
  }
}

}  // namespace wsgate::proxy
