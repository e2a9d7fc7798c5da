#pragma once
// Hands freed heap back to the kernel once a burst of connections settles.
// glibc keeps what sessions and TLS handshakes freed in its arenas (one per
// worker thread) and returns only the top of each heap by itself, so after a
// burst of handshakes the process holds its peak RSS for good. malloc_trim(0)
// walks every arena and releases the free pages inside them too. It takes
// each arena's lock while it walks (milliseconds for a heap of thousands of
// sessions), so it runs on the control thread, and only once the number of
// sessions and handshakes has held still for one interval after a change:
// while connections keep coming and going, freed memory is soon reused, and
// a trim runs at most once per kMaxWaitTicks intervals.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>

namespace prometheus {
class Counter;
}

namespace wsgate::proxy {

// What the proxy is doing, sampled once per interval.
struct Activity {
  std::size_t sessions = 0;
  std::size_t handshakes = 0;
  bool operator==(const Activity&) const = default;
};

// When to trim, given one activity sample per interval: once the activity
// changed and then held still for a whole interval, or after `max_wait_ticks`
// of continuous change (a burst that never quite stops).
class TrimPolicy {
 public:
  static constexpr unsigned kMaxWaitTicks = 30;
  explicit TrimPolicy(unsigned max_wait_ticks = kMaxWaitTicks) : max_wait_ticks_(max_wait_ticks) {}
  // True: trim now.
  bool tick(const Activity& now);

 private:
  unsigned max_wait_ticks_;
  Activity last_;
  bool pending_ = false;  // changed since the last trim
  unsigned changing_ticks_ = 0;
};

class MemoryTrimmer {
 public:
  // Returns the bytes the trim gave back to the kernel (the drop in resident
  // memory across it; other threads allocate meanwhile, so an estimate).
  using TrimFn = std::function<std::uint64_t()>;
  using ActivityFn = std::function<Activity()>;

  // interval zero: never trims. `trims` and `released_bytes` count each trim
  // and what it gave back.
  MemoryTrimmer(boost::asio::io_context& control, std::chrono::milliseconds interval,
                ActivityFn activity, prometheus::Counter& trims,
                prometheus::Counter& released_bytes, TrimFn trim = trim_heap);
  MemoryTrimmer(const MemoryTrimmer&) = delete;
  MemoryTrimmer& operator=(const MemoryTrimmer&) = delete;

  void start();
  void stop();

  // malloc_trim(0) (under AddressSanitizer, its allocator's purge), measured
  // by resident memory before and after.
  static std::uint64_t trim_heap();

 private:
  void arm();

  boost::asio::steady_timer timer_;
  std::chrono::milliseconds interval_;
  ActivityFn activity_;
  prometheus::Counter& trims_;
  prometheus::Counter& released_bytes_;
  TrimFn trim_;
  TrimPolicy policy_;
};

}  // namespace wsgate::proxy
