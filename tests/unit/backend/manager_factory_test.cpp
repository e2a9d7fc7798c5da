#include "backend/manager_factory.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

using namespace wsgate::backend;

namespace {

class FakeConnection : public Connection {
 public:
  void deliver(std::shared_ptr<const std::string> message) override {
    std::lock_guard lock(mutex_);
    received_.push_back(*message);
  }
  std::vector<std::string> received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> received_;
};

ManagerLease take(ManagerFactory& f, const std::string& user, const std::string& thread,
                  const std::shared_ptr<FakeConnection>& c) {
  auto r = f.acquire(user, thread, c);
  EXPECT_TRUE(std::holds_alternative<ManagerLease>(r));
  return std::move(std::get<ManagerLease>(r));
}

auto msg(const char* s) { return std::make_shared<const std::string>(s); }

}  // namespace

TEST(ManagerFactory, RunEventsReachOnlyThatUsersConnectionsOnThatThread) {
  ManagerFactory f(16);
  auto a1 = std::make_shared<FakeConnection>(), a2 = std::make_shared<FakeConnection>();
  auto a_other = std::make_shared<FakeConnection>(), b = std::make_shared<FakeConnection>();
  auto la1 = take(f, "alice", "t1", a1);
  auto la2 = take(f, "alice", "t1", a2);
  auto la3 = take(f, "alice", "t2", a_other);
  auto lb = take(f, "bob", "t1", b);
  EXPECT_EQ(f.manager_count(), 2u);
  EXPECT_NE(la1.manager(), lb.manager());
  EXPECT_EQ(la1.manager(), la2.manager());

  EXPECT_EQ(la1.manager()->broadcast("t1", msg("for alice t1")), 2u);
  EXPECT_EQ(a1->received(), std::vector<std::string>{"for alice t1"});
  EXPECT_EQ(a2->received(), std::vector<std::string>{"for alice t1"});
  EXPECT_TRUE(a_other->received().empty());
  EXPECT_TRUE(b->received().empty());
  EXPECT_EQ(lb.manager()->broadcast("t1", msg("for bob")), 1u);
  EXPECT_EQ(a1->received().size(), 1u);
  EXPECT_EQ(b->received(), std::vector<std::string>{"for bob"});
}

TEST(ManagerFactory, ManagerGoesWithItsLastConnection) {
  int created = 0, removed = 0;
  ManagerFactory f(16, [&](int d) { (d > 0 ? created : removed)++; });
  auto c1 = std::make_shared<FakeConnection>(), c2 = std::make_shared<FakeConnection>();
  auto l1 = take(f, "alice", "t", c1);
  auto l2 = take(f, "alice", "t", c2);
  std::weak_ptr<UserManager> weak = l1.manager();
  l1.release();
  EXPECT_EQ(f.manager_count(), 1u);
  EXPECT_EQ(weak.lock()->connection_count(), 1u);
  { auto moved = std::move(l2); }  // destroying the (moved) lease releases it
  EXPECT_EQ(f.manager_count(), 0u);
  EXPECT_EQ(f.find("alice"), nullptr);
  EXPECT_TRUE(weak.expired());
  EXPECT_EQ(created, 1);
  EXPECT_EQ(removed, 1);
  // A new connection gets a fresh manager.
  auto l3 = take(f, "alice", "t", c1);
  EXPECT_EQ(created, 2);
}

TEST(ManagerFactory, PerUserCapRefusesAndFreesSlots) {
  ManagerFactory f(2);
  auto c = std::make_shared<FakeConnection>();
  auto l1 = take(f, "alice", "t", c);
  auto l2 = take(f, "alice", "t", c);
  auto refused = f.acquire("alice", "t", c);
  ASSERT_TRUE(std::holds_alternative<ManagerFactory::CapReached>(refused));
  EXPECT_EQ(std::get<ManagerFactory::CapReached>(refused).cap, 2u);
  EXPECT_EQ(l1.manager()->connection_count(), 2u);
  auto other_user = take(f, "bob", "t", c);  // the cap is per user
  l1.release();
  auto l3 = take(f, "alice", "t", c);
  EXPECT_EQ(l3.manager()->connection_count(), 2u);
}

TEST(ManagerFactory, DeadConnectionsAreSkipped) {
  ManagerFactory f(4);
  auto c = std::make_shared<FakeConnection>();
  auto l = take(f, "alice", "t", c);
  c.reset();
  EXPECT_EQ(l.manager()->broadcast("t", msg("x")), 0u);
}

// Many threads connect and disconnect the same few users while others
// broadcast. Invariants: the cap is never exceeded, every successful
// acquire is matched, no manager outlives its last lease, and no event ever
// reaches another user's connection.
TEST(ManagerFactory, ConcurrentConnectsAndDisconnectsKeepIsolationAndCap) {
  constexpr std::size_t kCap = 3;
  constexpr int kThreads = 8, kIterations = 2000;
  std::atomic<int> managers{0}, max_seen{0}, refused{0}, cap_violations{0}, leaks{0};
  ManagerFactory f(kCap, [&](int d) { managers += d; });
  const std::vector<std::string> users = {"u0", "u1", "u2", "u3"};

  struct Tagged : Connection {
    std::string user;
    std::atomic<int>* leaks;
    void deliver(std::shared_ptr<const std::string> m) override {
      if (*m != user) ++*leaks;
    }
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      std::vector<ManagerLease> held;
      std::vector<std::shared_ptr<Tagged>> conns;
      for (int i = 0; i < kIterations; ++i) {
        const auto& user = users[rng() % users.size()];
        if (held.empty() || rng() % 3 != 0) {
          auto c = std::make_shared<Tagged>();
          c->user = user;
          c->leaks = &leaks;
          auto r = f.acquire(user, "t", c);
          if (auto* lease = std::get_if<ManagerLease>(&r)) {
            auto n = lease->manager()->connection_count();
            if (n > kCap) ++cap_violations;
            int seen = max_seen.load();
            while (static_cast<int>(n) > seen &&
                   !max_seen.compare_exchange_weak(seen, static_cast<int>(n))) {
            }
            lease->manager()->broadcast("t", std::make_shared<const std::string>(user));
            held.push_back(std::move(*lease));
            conns.push_back(std::move(c));
          } else {
            ++refused;
          }
        } else {
          auto k = rng() % held.size();
          held.erase(held.begin() + static_cast<long>(k));
          conns.erase(conns.begin() + static_cast<long>(k));
        }
        if (held.size() > 4) {
          held.erase(held.begin());
          conns.erase(conns.begin());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(cap_violations.load(), 0);
  EXPECT_EQ(leaks.load(), 0);
  EXPECT_LE(max_seen.load(), static_cast<int>(kCap));
  EXPECT_GT(refused.load(), 0);  // the cap was actually exercised
  EXPECT_EQ(f.manager_count(), 0u);
  EXPECT_EQ(managers.load(), 0);
}
