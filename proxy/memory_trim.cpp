#include "proxy/memory_trim.hpp"

#include <prometheus/counter.h>
#include <unistd.h>

#include <cstdio>

#if defined(__SANITIZE_ADDRESS__)
#define WSGATE_ASAN_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WSGATE_ASAN_ALLOCATOR 1
#endif
#endif

#if defined(WSGATE_ASAN_ALLOCATOR)
#if __has_include(<sanitizer/allocator_interface.h>)
#include <sanitizer/allocator_interface.h>
#else
// Declared in LLVM's sanitizer/allocator_interface.h, which GCC does not
// ship; GCC's libasan exports it all the same.
extern "C" void __sanitizer_purge_allocator(void);
#endif
#elif defined(__GLIBC__)
#include <malloc.h>
#endif

namespace wsgate::proxy {

bool TrimPolicy::tick(const Activity& now) {
  const bool changed = !(now == last_);
  last_ = now;
  if (changed) {
    pending_ = true;
    if (++changing_ticks_ < max_wait_ticks_) return false;
  } else if (!pending_) {
    return false;
  }
  pending_ = false;
  changing_ticks_ = 0;
  return true;
}

MemoryTrimmer::MemoryTrimmer(boost::asio::io_context& control, std::chrono::milliseconds interval,
                             ActivityFn activity, prometheus::Counter& trims,
                             prometheus::Counter& released_bytes, TrimFn trim)
    : timer_(control),
      interval_(interval),
      activity_(std::move(activity)),
      trims_(trims),
      released_bytes_(released_bytes),
      trim_(std::move(trim)) {}

void MemoryTrimmer::start() {
  if (interval_.count() > 0) arm();
}

void MemoryTrimmer::stop() { timer_.cancel(); }

void MemoryTrimmer::arm() {
  timer_.expires_after(interval_);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    if (policy_.tick(activity_())) {
      released_bytes_.Increment(static_cast<double>(trim_()));
      trims_.Increment();
    }
    arm();
  });
}

namespace {
// Resident bytes from /proc/self/statm; zero when it cannot be read.
std::uint64_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  const int got = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  if (got != 2) return 0;
  return static_cast<std::uint64_t>(resident) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}
}  // namespace

std::uint64_t MemoryTrimmer::trim_heap() {
  const auto before = resident_bytes();
#if defined(WSGATE_ASAN_ALLOCATOR)
  // AddressSanitizer replaces malloc: its own allocator's free memory (and
  // quarantine) is what a sanitized build holds after a burst.
  __sanitizer_purge_allocator();
#elif defined(__GLIBC__)
  malloc_trim(0);
#endif
  const auto after = resident_bytes();
  return before > after ? before - after : 0;
}

}  // namespace wsgate::proxy
