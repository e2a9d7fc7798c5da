#include "common/session_registry.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace {

struct FakeSession {
  int n;
};

TEST(SessionRegistry, AddRemoveAndLiveInRegistrationOrder) {
  wsgate::SessionRegistry<FakeSession> reg;
  auto a = std::make_shared<FakeSession>(FakeSession{1});
  auto b = std::make_shared<FakeSession>(FakeSession{2});
  auto c = std::make_shared<FakeSession>(FakeSession{3});
  auto ida = reg.add(a);
  auto idb = reg.add(b);
  auto idc = reg.add(c);
  EXPECT_NE(ida, 0u);  // 0 means "not registered" to the callers
  EXPECT_LT(ida, idb);
  EXPECT_LT(idb, idc);
  EXPECT_EQ(reg.size(), 3u);

  reg.remove(idb);
  auto live = reg.live();
  ASSERT_EQ(live.size(), 2u);
  EXPECT_EQ(live[0]->n, 1);
  EXPECT_EQ(live[1]->n, 3);
  reg.remove(idb);  // twice is harmless
  EXPECT_EQ(reg.size(), 2u);
}

TEST(SessionRegistry, DeadSessionsAreSkippedNotReturned) {
  wsgate::SessionRegistry<FakeSession> reg;
  auto kept = std::make_shared<FakeSession>(FakeSession{7});
  {
    auto gone = std::make_shared<FakeSession>(FakeSession{8});
    reg.add(gone);
  }
  reg.add(kept);
  EXPECT_EQ(reg.size(), 2u);  // still counted until it unregisters
  auto live = reg.live();
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0]->n, 7);
}

TEST(SessionRegistry, ConcurrentAddAndRemoveLeaveItEmpty) {
  wsgate::SessionRegistry<FakeSession> reg;
  auto s = std::make_shared<FakeSession>(FakeSession{0});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        auto id = reg.add(s);
        (void)reg.live();
        reg.remove(id);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(reg.size(), 0u);
  EXPECT_EQ(reg.add(s), 8001u);  // every add took its own id
}

}  // namespace
