// Every answered ping is an RTT sample, several may be outstanding.
#include "proxy/ping_tracker.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

using namespace wsgate::proxy;
using namespace std::chrono_literals;

namespace {

std::span<const std::uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace

TEST(PingTracker, EachPongTimesItsOwnPing) {
  PingTracker t(4);
  const auto t0 = PingTracker::Clock::now();
  EXPECT_FALSE(t.on_ping(bytes("a"), t0));
  EXPECT_FALSE(t.on_ping(bytes("b"), t0 + 10ms));
  EXPECT_FALSE(t.on_ping(bytes("c"), t0 + 20ms));
  EXPECT_EQ(t.outstanding(), 3u);
  // Answered out of order.
  EXPECT_EQ(t.on_pong(bytes("b"), t0 + 25ms), std::chrono::microseconds(15000));
  EXPECT_EQ(t.on_pong(bytes("a"), t0 + 30ms), std::chrono::microseconds(30000));
  EXPECT_EQ(t.on_pong(bytes("c"), t0 + 21ms), std::chrono::microseconds(1000));
  EXPECT_EQ(t.outstanding(), 0u);
}

TEST(PingTracker, UnsolicitedAndRepeatedPongsGiveNoSample) {
  PingTracker t(4);
  const auto t0 = PingTracker::Clock::now();
  EXPECT_FALSE(t.on_pong(bytes("x"), t0).has_value());
  t.on_ping(bytes("x"), t0);
  EXPECT_FALSE(t.on_pong(bytes("y"), t0 + 1ms).has_value());
  EXPECT_FALSE(t.on_pong(bytes(""), t0 + 1ms).has_value());
  EXPECT_TRUE(t.on_pong(bytes("x"), t0 + 1ms).has_value());
  EXPECT_FALSE(t.on_pong(bytes("x"), t0 + 2ms).has_value());
}

TEST(PingTracker, SamePayloadTwiceMatchesTheOldestFirst) {
  PingTracker t(4);
  const auto t0 = PingTracker::Clock::now();
  t.on_ping(bytes(""), t0);
  t.on_ping(bytes(""), t0 + 5ms);
  EXPECT_EQ(t.on_pong(bytes(""), t0 + 6ms), std::chrono::microseconds(6000));
  EXPECT_EQ(t.on_pong(bytes(""), t0 + 7ms), std::chrono::microseconds(2000));
}

TEST(PingTracker, FullWindowEvictsTheOldest) {
  PingTracker t(2);
  const auto t0 = PingTracker::Clock::now();
  EXPECT_FALSE(t.on_ping(bytes("1"), t0));
  EXPECT_FALSE(t.on_ping(bytes("2"), t0));
  EXPECT_TRUE(t.on_ping(bytes("3"), t0));
  EXPECT_EQ(t.outstanding(), 2u);
  EXPECT_FALSE(t.on_pong(bytes("1"), t0 + 1ms).has_value());
  EXPECT_TRUE(t.on_pong(bytes("2"), t0 + 1ms).has_value());
  EXPECT_TRUE(t.on_pong(bytes("3"), t0 + 1ms).has_value());
}

TEST(PingTracker, WindowIsClamped) {
  PingTracker big(100), small(0);
  const auto t0 = PingTracker::Clock::now();
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(big.on_ping(bytes(std::to_string(i)), t0));
  EXPECT_TRUE(big.on_ping(bytes("x"), t0));
  EXPECT_FALSE(small.on_ping(bytes("a"), t0));
  EXPECT_TRUE(small.on_ping(bytes("b"), t0));
}
