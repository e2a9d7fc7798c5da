#include "proxy/memory_trim.hpp"

#include <gtest/gtest.h>
#include <prometheus/counter.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

using namespace wsgate::proxy;

TEST(TrimPolicy, NothingToTrimWhileNothingHappens) {
  TrimPolicy policy;
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(policy.tick({0, 0}));
}

TEST(TrimPolicy, TrimsOnceWhenABurstHoldsStillForAnInterval) {
  TrimPolicy policy;
  EXPECT_FALSE(policy.tick({0, 64}));                                 // handshakes arriving
  EXPECT_FALSE(policy.tick({3000, 64}));                              // still arriving
  EXPECT_FALSE(policy.tick({5000, 0}));                               // the last ones done
  EXPECT_TRUE(policy.tick({5000, 0}));                                // held still: trim
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(policy.tick({5000, 0}));  // once only
  EXPECT_FALSE(policy.tick({0, 0}));                                  // they all left
  EXPECT_TRUE(policy.tick({0, 0}));
}

TEST(TrimPolicy, AChurnBackToTheSameCountStillTrims) {
  TrimPolicy policy;
  EXPECT_FALSE(policy.tick({10, 0}));
  EXPECT_TRUE(policy.tick({10, 0}));
  EXPECT_FALSE(policy.tick({900, 0}));
  EXPECT_FALSE(policy.tick({10, 0}));  // back where the last trim was
  EXPECT_TRUE(policy.tick({10, 0}));
}

TEST(TrimPolicy, ABurstThatNeverStopsIsTrimmedEveryMaxWaitTicks) {
  TrimPolicy policy(4);
  EXPECT_FALSE(policy.tick({1, 0}));
  EXPECT_FALSE(policy.tick({2, 0}));
  EXPECT_FALSE(policy.tick({3, 0}));
  EXPECT_TRUE(policy.tick({4, 0}));  // fourth tick of change
  EXPECT_FALSE(policy.tick({5, 0}));
  EXPECT_FALSE(policy.tick({6, 0}));
  EXPECT_FALSE(policy.tick({7, 0}));
  EXPECT_TRUE(policy.tick({8, 0}));
  EXPECT_FALSE(policy.tick({8, 0}));  // nothing changed since that trim
}

namespace {
struct Counters {
  prometheus::Counter trims;
  prometheus::Counter released;
};
}  // namespace

TEST(MemoryTrimmer, TrimsOnTheTimerAfterActivitySettlesAndCountsTheBytes) {
  boost::asio::io_context control;
  Counters c;
  std::vector<Activity> script{{0, 0}, {5, 2}, {7, 0}, {7, 0}, {7, 0}, {0, 0}, {0, 0}};
  std::size_t step = 0;
  int trims = 0;
  MemoryTrimmer trimmer(
      control, std::chrono::milliseconds(1),
      [&] {
        const auto a = script[std::min(step, script.size() - 1)];
        if (++step == script.size()) control.stop();
        return a;
      },
      c.trims, c.released,
      [&] {
        ++trims;
        return std::uint64_t{4096};
      });
  trimmer.start();
  control.run_for(std::chrono::seconds(10));
  EXPECT_EQ(step, script.size());
  EXPECT_EQ(trims, 2);  // after {7,0} held, after {0,0} held
  EXPECT_EQ(c.trims.Value(), 2.0);
  EXPECT_EQ(c.released.Value(), 8192.0);
}

TEST(MemoryTrimmer, ZeroIntervalNeverArmsTheTimer) {
  boost::asio::io_context control;
  Counters c;
  int samples = 0;
  MemoryTrimmer trimmer(
      control, std::chrono::milliseconds(0),
      [&] {
        ++samples;
        return Activity{static_cast<std::size_t>(samples), 0};
      },
      c.trims, c.released, [] { return std::uint64_t{1}; });
  trimmer.start();
  EXPECT_EQ(control.run_for(std::chrono::milliseconds(50)), 0u);  // no work at all
  EXPECT_EQ(samples, 0);
  EXPECT_EQ(c.trims.Value(), 0.0);
}

TEST(MemoryTrimmer, StopCancelsThePendingCheck) {
  boost::asio::io_context control;
  Counters c;
  MemoryTrimmer trimmer(
      control, std::chrono::hours(1), [] { return Activity{}; }, c.trims, c.released,
      [] { return std::uint64_t{1}; });
  trimmer.start();
  trimmer.stop();
  const auto start = std::chrono::steady_clock::now();
  control.run();  // returns once the cancelled wait completes
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
}

// The real trim hands freed heap back: touch and free a few MiB in small
// blocks (below the mmap threshold, so they stay in the heap), then trim.
TEST(MemoryTrimmer, TrimHeapGivesFreedMemoryBack) {
  std::vector<void*> blocks;
  for (int i = 0; i < 4096; ++i) {
    void* p = std::malloc(4000);
    std::memset(p, 0x5a, 4000);
    blocks.push_back(p);
  }
  // Keep the last one so the freed run is not at the heap's top only.
  for (std::size_t i = 0; i + 1 < blocks.size(); ++i) std::free(blocks[i]);
  const auto released = MemoryTrimmer::trim_heap();
  std::free(blocks.back());
  EXPECT_GT(released, 4u << 20);  // most of the ~16 MiB freed
}
