// feed() allocates nothing but the text-capture buffer and the per-kind
// violation counts, each once per tap: count every operator new
// and feed streams that exercise every path (capture, UTF-8, control frames,
// violations, 1 TiB lengths, byte-by-byte splits).

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "proxy/tap/frame_tap.hpp"
#include "tests/unit/tap/tap_test_util.hpp"

namespace {
std::atomic<size_t> g_allocations{0};
}

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n ? n : 1);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

using namespace wsgate::tap;
using namespace wsgate::tap::testing;

TEST(FrameTapNoAlloc, FeedAllocatesOnlyTheCaptureBufferOnce) {
  const Bytes stream = concat(
      cframe(0x1, bytes("hello \xE2\x82\xAC"), {.fin = false}), cframe(0x9, bytes("ping")),
      cframe(0x0, Bytes(5000, 'x')), cframe(0x2, Bytes(70000, 0)), cframe(0xA, {}),
      frame(0x1, bytes("unmasked"), {}), cframe(0x3, bytes("reserved")),
      cframe(0x1, Bytes{0xFF, 0xFE}), cframe(0x8, close_payload(1011, "Internal error")),
      cframe(0x2, {}, {.announced = uint64_t{1} << 40}));
  for (bool deflate : {false, true}) {
    TapConfig cfg;
    cfg.direction = Direction::client_to_upstream;
    cfg.deflate_negotiated = deflate;
    cfg.validate_text_utf8 = true;
    cfg.capture_text_bytes = 4096;
    FrameTap whole(cfg);
    FrameTap bytewise(cfg);
    const size_t before = g_allocations.load();
    int* volatile probe = new int(1);  // the counter itself works
    delete probe;
    ASSERT_EQ(g_allocations.load(), before + 1);
    const size_t start = g_allocations.load();
    whole.feed(stream.data(), stream.size());
    for (uint8_t b : stream) bytewise.feed(&b, 1);
    // The capture buffer comes with the first text message and the
    // per-kind violation counts with the first violation, once per tap.
    EXPECT_EQ(g_allocations.load(), start + 4);
    whole.feed(stream.data(), stream.size());
    for (uint8_t b : stream) bytewise.feed(&b, 1);
    EXPECT_EQ(g_allocations.load(), start + 4);
    EXPECT_EQ(whole.stats(), bytewise.stats());
    EXPECT_EQ(whole.last_text(), "\xFF\xFE");  // the last text message, though invalid
    EXPECT_EQ(bytewise.last_text(), whole.last_text());
    EXPECT_TRUE(whole.failed());
  }
}
