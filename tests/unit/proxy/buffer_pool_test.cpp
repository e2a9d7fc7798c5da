#include "proxy/buffer_pool.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

using wsgate::proxy::BufferPool;

// Each test runs its checks on a fresh thread: the pool is per thread, so
// the size classes start unclaimed.
template <class F>
void on_fresh_thread(F f) {
  std::thread(f).join();
}

TEST(BufferPool, GivenBufferIsTakenAgainForTheSameSize) {
  on_fresh_thread([] {
    auto b = BufferPool::take(65536);
    auto* raw = b.get();
    BufferPool::give(std::move(b), 65536);
    EXPECT_EQ(BufferPool::take(65536).get(), raw);
  });
}

TEST(BufferPool, TwoSizesKeepSeparateFreeLists) {
  on_fresh_thread([] {
    auto big = BufferPool::take(65536);
    auto small = BufferPool::take(16384);
    auto* big_raw = big.get();
    auto* small_raw = small.get();
    BufferPool::give(std::move(big), 65536);
    // Giving the other size must not drop the cached big buffer (a single
    // size cache would have cleared it here).
    BufferPool::give(std::move(small), 16384);
    EXPECT_EQ(BufferPool::take(16384).get(), small_raw);
    EXPECT_EQ(BufferPool::take(65536).get(), big_raw);
  });
}

TEST(BufferPool, AThirdSizeIsNotCachedAndDisturbsNothing) {
  on_fresh_thread([] {
    auto a = BufferPool::take(65536);
    auto b = BufferPool::take(16384);
    auto* a_raw = a.get();
    BufferPool::give(std::move(a), 65536);
    BufferPool::give(std::move(b), 16384);
    auto odd = BufferPool::take(4096);
    BufferPool::give(std::move(odd), 4096);  // freed, not cached
    auto odd_again = BufferPool::take(4096);
    ASSERT_NE(odd_again, nullptr);
    EXPECT_EQ(BufferPool::take(65536).get(), a_raw);
  });
}

TEST(BufferPool, KeepsAtMost64FreeBuffersPerSize) {
  on_fresh_thread([] {
    std::vector<BufferPool::Buffer> held;
    std::vector<std::uint8_t*> raws;
    for (int i = 0; i < 80; ++i) {
      held.push_back(BufferPool::take(1024));
      raws.push_back(held.back().get());
    }
    for (auto& b : held) BufferPool::give(std::move(b), 1024);
    // The first 64 given are cached and come back newest first; the last
    // 16 found the list full and were freed.
    for (int i = 0; i < 64; ++i) EXPECT_EQ(BufferPool::take(1024).get(), raws[63 - i]) << i;
  });
}
