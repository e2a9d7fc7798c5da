#include "proxy/workers.hpp"

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>

using namespace wsgate::proxy;
namespace fs = std::filesystem;

TEST(CpuBudget, CpuMaxIsQuotaOverPeriod) {
  EXPECT_DOUBLE_EQ(*parse_cpu_max("150000 100000\n"), 1.5);
  EXPECT_DOUBLE_EQ(*parse_cpu_max("50000 100000"), 0.5);
  EXPECT_DOUBLE_EQ(*parse_cpu_max("200000"), 2.0);  // period defaults to 100 ms
  EXPECT_FALSE(parse_cpu_max("max 100000"));
  EXPECT_FALSE(parse_cpu_max(""));
  EXPECT_FALSE(parse_cpu_max("lots 100000"));
  EXPECT_FALSE(parse_cpu_max("0 100000"));
}

TEST(CpuBudget, WorkersAreTheQuotaRoundedUpWithinTheAffinityMask) {
  EXPECT_EQ((CpuBudget{4, 1.5, "x"}.workers()), 2u);  // a pod limited to 1500m
  EXPECT_EQ((CpuBudget{4, 2.0, "x"}.workers()), 2u);
  EXPECT_EQ((CpuBudget{2, 8.0, "x"}.workers()), 2u);
  EXPECT_EQ((CpuBudget{8, 0.2, "x"}.workers()), 1u);
  EXPECT_EQ((CpuBudget{6, std::nullopt, ""}.workers()), 6u);
  EXPECT_EQ((CpuBudget{0, std::nullopt, ""}.workers()), 1u);
}

TEST(CpuBudget, TheTightestCpuMaxOnTheWayToTheRootWins) {
  fs::path root = fs::temp_directory_path() / ("wsgate-cgroup-" + std::to_string(::getpid()));
  fs::create_directories(root / "kubepods/pod1/ctr");
  std::ofstream(root / "cpu.max") << "max 100000\n";
  std::ofstream(root / "kubepods/cpu.max") << "400000 100000\n";
  std::ofstream(root / "kubepods/pod1/cpu.max") << "150000 100000\n";
  std::ofstream(root / "kubepods/pod1/ctr/cpu.max") << "max 100000\n";
  std::ofstream(root / "self_cgroup") << "12:cpu,cpuacct:/ignored/v1\n0::/kubepods/pod1/ctr\n";
  auto b = read_cpu_budget(root.string(), (root / "self_cgroup").string());
  ASSERT_TRUE(b.quota);
  EXPECT_DOUBLE_EQ(*b.quota, 1.5);
  EXPECT_EQ(b.quota_source, (root / "kubepods/pod1/cpu.max").string());
  EXPECT_GE(b.affinity, 1u);
  EXPECT_EQ(b.workers(), std::min(b.affinity, 2u));
  EXPECT_NE(b.describe().find("1.5 CPUs"), std::string::npos);

  // Inside a container's cgroup namespace the process sits at "/".
  std::ofstream(root / "self_cgroup", std::ios::trunc) << "0::/\n";
  std::ofstream(root / "cpu.max", std::ios::trunc) << "50000 100000\n";
  auto inside = read_cpu_budget(root.string(), (root / "self_cgroup").string());
  ASSERT_TRUE(inside.quota);
  EXPECT_DOUBLE_EQ(*inside.quota, 0.5);
  EXPECT_EQ(inside.workers(), 1u);

  // No cgroup v2 line, no quota: the affinity mask alone.
  std::ofstream(root / "self_cgroup", std::ios::trunc) << "3:memory:/x\n";
  EXPECT_FALSE(read_cpu_budget(root.string(), (root / "self_cgroup").string()).quota);
  fs::remove_all(root);
}

TEST(Workers, NewSessionsGoToTheWorkerWithFewest) {
  Workers w(3);
  auto a = w.count_session(0);
  auto b = w.count_session(0);
  auto c = w.count_session(1);
  EXPECT_EQ(w.pick(), 2u);
  auto d = w.count_session(2);
  EXPECT_EQ(w.pick(), 1u);  // 2, 1, 1: the first of the least loaded in turn
  {
    Workers::Load moved = std::move(a);
    EXPECT_EQ(w.sessions(0), 2u);
  }
  EXPECT_EQ(w.sessions(0), 1u);  // the load goes with the session that ends
}

TEST(Workers, TiesRotateSoAnIdleProxySpreadsItsFirstSessions) {
  Workers w(2);
  std::set<unsigned> picked;
  for (int i = 0; i < 4; ++i) picked.insert(w.pick());
  EXPECT_EQ(picked.size(), 2u);
}

TEST(Workers, EachWorkerRunsOnAThreadOfItsOwn) {
  Workers w(2);
  w.start();
  std::promise<std::thread::id> first, second;
  boost::asio::post(w.context(0), [&] { first.set_value(std::this_thread::get_id()); });
  boost::asio::post(w.context(1), [&] { second.set_value(std::this_thread::get_id()); });
  auto t0 = first.get_future().get();
  auto t1 = second.get_future().get();
  EXPECT_NE(t0, t1);
  EXPECT_NE(t0, std::this_thread::get_id());
  w.stop();
  w.join();
}
