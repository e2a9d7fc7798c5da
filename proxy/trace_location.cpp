#include "proxy/trace_location.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>

#include "common/logging.hpp"
#include "proxy/incidents/trace_fetcher.hpp"

namespace wsgate::proxy {

namespace {

// One warning per interval for the whole process: a misconfigured
// balancer announces on every session, and every session would log.
class WarnLimiter {
 public:
  // True when this call may log; `suppressed` is how many were not since.
  bool allow(std::uint64_t& suppressed) {
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    auto next = next_.load(std::memory_order_relaxed);
    if (now < next ||
        !next_.compare_exchange_strong(next, now + std::chrono::nanoseconds(kInterval).count(),
                                       std::memory_order_relaxed)) {
      suppressed_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
    return true;
  }

 private:
  static constexpr std::chrono::seconds kInterval{10};
  std::atomic<std::int64_t> next_{0};
  std::atomic<std::uint64_t> suppressed_{0};
};

WarnLimiter& warn_limiter() {
  static WarnLimiter limiter;
  return limiter;
}

}  // namespace

std::string endpoint_string(const boost::asio::ip::tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  const std::string host = address.to_string();
  return (address.is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(endpoint.port());
}

TraceLocationVerdict judge_trace_location(const ResponseHeader& response,
                                          const boost::asio::ip::address& peer,
                                          const std::vector<Cidr>& allow, std::size_t max_bytes) {
  TraceLocationVerdict v;
  const auto count = response.count(kTraceLocationHeader);
  if (count == 0) return v;
  if (!any_contains(allow, peer)) {
    v.rejected = TraceLocationRejection::not_allowed;
    v.why = "upstream " + peer.to_string() + " is not in --trace-location-allow";
    return v;
  }
  if (count > 1) {
    v.rejected = TraceLocationRejection::invalid_url;
    v.why = std::to_string(count) + " " + std::string(kTraceLocationHeader) + " fields, not one";
    return v;
  }
  std::string_view url = response[kTraceLocationHeader];
  if (url.size() > max_bytes) {
    v.rejected = TraceLocationRejection::invalid_url;
    v.why = "URL of " + std::to_string(url.size()) + " bytes (at most " +
            std::to_string(max_bytes) + ", --trace-location-max-bytes)";
    return v;
  }
  for (unsigned char c : url)
    if (c <= 0x20 || c >= 0x7f) {
      v.rejected = TraceLocationRejection::invalid_url;
      v.why = "URL holds a space, control or non-ASCII byte";
      return v;
    }
  if (auto error = incidents::http_url_error(url); !error.empty()) {
    v.rejected = TraceLocationRejection::invalid_url;
    v.why = std::move(error);
    return v;
  }
  v.url = std::string(url);
  return v;
}

void note_upstream(const ResponseHeader& response, const boost::asio::ip::tcp::endpoint& peer,
                   const ProxyConfig& config, TraceLocationMetrics& metrics,
                   SessionSummary& summary) {
  summary.upstream_endpoint = endpoint_string(peer);
  auto verdict = judge_trace_location(response, peer.address(), config.trace_location_allow,
                                      config.trace_location_max_bytes);
  if (!verdict.url.empty()) {
    metrics.accepted.Increment();
    summary.trace_location = std::move(verdict.url);
    return;
  }
  if (!verdict.rejected) return;
  metrics.rejected(*verdict.rejected).Increment();
  std::uint64_t suppressed = 0;
  if (warn_limiter().allow(suppressed))
    WSG_LOG(spdlog::level::warn, summary.correlation_id,
            "ignored {} from upstream {} ({}): {}; the route's trace URL applies ({} more ignored "
            "since the last warning)",
            kTraceLocationHeader, summary.upstream_endpoint, to_string(*verdict.rejected),
            verdict.why, suppressed);
}

}  // namespace wsgate::proxy
