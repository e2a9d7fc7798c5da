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
    if (Cache* c = cache_for(size); c && !c->free.empty()) {
      Buffer b = std::move(c->free.back());
      c->free.pop_back();
      return b;
    }
    // Uninitialised on purpose: untouched pages cost no RSS.
    return Buffer(new std::uint8_t[size]);
  }

  static void give(Buffer b, std::size_t size) {
    if (!b) return;
    Cache* c = cache_for(size);
    if (c && c->free.size() < kMaxCached) c->free.push_back(std::move(b));
  }

 private:
  static constexpr std::size_t kMaxCached = 64;
  // Two sizes are in use at most (the relay buffer and the smaller one an
  // upstream TLS stream keeps): one free list each, claimed by first use.
  static constexpr std::size_t kSizes = 2;
  struct Cache {
    std::size_t size = 0;
    std::vector<Buffer> free;
  };
  static Cache* cache_for(std::size_t size) {
    thread_local Cache caches[kSizes];
    for (Cache& c : caches) {
      if (c.size == size) return &c;
      if (c.size == 0) {
        c.size = size;
        return &c;
      }
    }
    return nullptr;  // a third size: plain new/delete
  }
};

}  // namespace wsgate::proxy
