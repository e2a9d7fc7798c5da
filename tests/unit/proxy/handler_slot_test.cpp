// A handler slot holds one operation at a time and hands the rest to
// Asio's recycling allocator; the slot is free again before the handler
// runs, so the handler can start the next operation into it.
#include "proxy/handler_slot.hpp"

#include <gtest/gtest.h>

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>

namespace wsgate::proxy {
namespace {

namespace net = boost::asio;
constexpr std::size_t kBytes = 256;
using Slot = HandlerSlot<kBytes>;
using Alloc = SlotAllocator<void, kBytes>;

TEST(HandlerSlotTest, TakesOneRequestThatFitsAtATime) {
  Slot slot;
  void* first = slot.try_take(kBytes, alignof(std::max_align_t));
  ASSERT_NE(first, nullptr);
  EXPECT_TRUE(slot.in_use());
  EXPECT_EQ(slot.try_take(8, 8), nullptr);  // taken
  int elsewhere = 0;
  EXPECT_FALSE(slot.give_back(&elsewhere));  // not its storage
  EXPECT_TRUE(slot.give_back(first));
  EXPECT_FALSE(slot.in_use());
  EXPECT_EQ(slot.try_take(kBytes + 1, 8), nullptr);  // too large
  EXPECT_FALSE(slot.in_use());
}

TEST(HandlerSlotTest, AllocatorFallsBackWhenTakenOrTooLarge) {
  Slot slot;
  Alloc alloc(slot);
  SlotAllocator<char, kBytes> bytes(alloc);
  EXPECT_TRUE(bytes == alloc);
  char* a = bytes.allocate(64);
  EXPECT_TRUE(slot.in_use());
  char* b = bytes.allocate(64);  // the slot is taken: from the heap
  EXPECT_NE(a, b);
  char* big = bytes.allocate(kBytes + 1);
  EXPECT_NE(big, a);
  bytes.deallocate(b, 64);
  bytes.deallocate(big, kBytes + 1);
  EXPECT_TRUE(slot.in_use());
  bytes.deallocate(a, 64);
  EXPECT_FALSE(slot.in_use());
}

// A timer wait held in the slot: taken while pending, free when the
// handler runs, and taken again by the wait the handler starts.
TEST(HandlerSlotTest, HandlerRestartsIntoTheFreedSlot) {
  net::io_context ioc;
  net::steady_timer timer(ioc);
  Slot slot;
  int runs = 0;
  std::function<void(boost::system::error_code)> on_wait;
  auto arm = [&] {
    timer.expires_after(std::chrono::milliseconds(1));
    timer.async_wait(
        net::bind_allocator(Alloc(slot), [&](boost::system::error_code ec) { on_wait(ec); }));
  };
  on_wait = [&](boost::system::error_code ec) {
    EXPECT_FALSE(ec);
    EXPECT_FALSE(slot.in_use());  // freed before the handler ran
    if (++runs < 3) {
      arm();
      EXPECT_TRUE(slot.in_use());
    }
  };
  arm();
  EXPECT_TRUE(slot.in_use());
  ioc.run();
  EXPECT_EQ(runs, 3);
  EXPECT_FALSE(slot.in_use());
}

// A second operation while the first is pending runs from the fallback
// and does not disturb the one in the slot.
TEST(HandlerSlotTest, SecondOperationWhileTakenStillRuns) {
  net::io_context ioc;
  Slot slot;
  int order = 0, first = 0, second = 0;
  net::post(ioc, net::bind_allocator(Alloc(slot), [&] { first = ++order; }));
  EXPECT_TRUE(slot.in_use());
  net::post(ioc, net::bind_allocator(Alloc(slot), [&] { second = ++order; }));
  ioc.run();
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 2);
  EXPECT_FALSE(slot.in_use());
}

}  // namespace
}  // namespace wsgate::proxy
