#pragma once
// Relay buffers are taken when data is ready and given back when it has been
// written, so an idle session holds none: 9,000 idle sessions cost no relay
// memory at all. A small per-thread free list keeps busy sessions off malloc.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace wsgate::proxy {

class BufferPool {
 public:
  using Buffer = std::unique_ptr<std::uint8_t[]>;

  static Buffer take(std::size_t size) {
    auto& cache = local();
    if (cache.size == size && !cache.free.empty()) {
      Buffer b = std::move(cache.free.back());
      cache.free.pop_back();
      return b;
    }
    // Uninitialised on purpose: untouched pages cost no RSS.
    return Buffer(new std::uint8_t[size]);
  }

  static void give(Buffer b, std::size_t size) {
    if (!b) return;
    auto& cache = local();
    if (cache.size != size) {
      cache.free.clear();
      cache.size = size;
    }
    if (cache.free.size() < kMaxCached) cache.free.push_back(std::move(b));
  }

 private:
  static constexpr std::size_t kMaxCached = 64;
  struct Cache {
    std::size_t size = 0;
    std::vector<Buffer> free;
  };
  static Cache& local() {
    thread_local Cache cache;
    return cache;
  }
};

}  // namespace wsgate::proxy
