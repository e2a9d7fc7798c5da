// The incident store: ring bound, query filters, log rotation, reload after
// a restart, corrupt lines.
#include "proxy/incidents/incident_store.hpp"
#include "proxy/incidents/incident.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <thread>

using namespace wsgate::proxy::incidents;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json incident(int i, int code = 1011, std::string stage = "factory.create_manager",
              std::string time = "2024-05-01T12:00:00.000Z") {
  return {{"correlation_id", "cid-" + std::to_string(i)},
          {"time", time},
          {"close", {{"code", code}, {"reason", "Internal error"}, {"initiator", "upstream"}}},
          {"failing_stage", stage},
          {"summary", "incident " + std::to_string(i)}};
}

std::string cid_of(const std::shared_ptr<const std::string>& text) {
  return json::parse(*text)["correlation_id"].get<std::string>();
}

std::vector<std::string> cids(const std::vector<std::shared_ptr<const std::string>>& v) {
  std::vector<std::string> out;
  for (auto& t : v) out.push_back(cid_of(t));
  return out;
}

std::size_t line_count(const fs::path& p) {
  std::ifstream in(p);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("wsgate-incidents-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

}  // namespace

TEST(IncidentStore, RingKeepsTheNewestCapacity) {
  IncidentStore store({.capacity = 3});
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(store.add(incident(i)));
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(cids(store.query({.limit = 10})), (std::vector<std::string>{"cid-5", "cid-4", "cid-3"}));
  EXPECT_EQ(store.find("cid-1"), nullptr);
  ASSERT_NE(store.find("cid-4"), nullptr);
  EXPECT_EQ(cid_of(store.find("cid-4")), "cid-4");
}

TEST(IncidentStore, RejectsRecordsWithoutKeyFields) {
  IncidentStore store({.capacity = 3});
  EXPECT_FALSE(store.add(json{{"time", "2024-05-01T12:00:00Z"}}));
  auto no_time = incident(1);
  no_time.erase("time");
  EXPECT_FALSE(store.add(no_time));
  EXPECT_EQ(store.size(), 0u);
}

TEST(IncidentStore, QueryFilters) {
  IncidentStore store({.capacity = 100});
  store.add(incident(1, 1011, "factory.create_manager", "2024-05-01T10:00:00.000Z"));
  store.add(incident(2, 1011, "message.handle", "2024-05-01T11:00:00.000Z"));
  store.add(incident(3, 1008, "unknown", "2024-05-01T12:00:00.000Z"));
  store.add(incident(4, 1011, "message.handle", "2024-05-01T13:00:00.000Z"));
  EXPECT_EQ(cids(store.query({.code = 1011})), (std::vector<std::string>{"cid-4", "cid-2", "cid-1"}));
  EXPECT_EQ(cids(store.query({.stage = "message.handle"})), (std::vector<std::string>{"cid-4", "cid-2"}));
  EXPECT_EQ(cids(store.query({.since = parse_time("2024-05-01T11:00:00Z")})),
            (std::vector<std::string>{"cid-4", "cid-3", "cid-2"}));
  EXPECT_EQ(cids(store.query({.code = 1011, .limit = 1})), (std::vector<std::string>{"cid-4"}));
}

TEST(IncidentStore, QueryFiltersByRouteUpstreamAndUntil) {
  IncidentStore store({.capacity = 100});
  auto with = [](json j, std::string route, std::string upstream, std::string endpoint) {
    j["route"] = route;
    j["upstream"] = upstream;
    if (!endpoint.empty()) j["upstream_endpoint"] = endpoint;
    return j;
  };
  store.add(with(incident(1, 1011, "context.validate", "2024-05-01T10:00:00.000Z"), "/",
                 "ws://a:9000", ""));
  store.add(with(incident(2, 1011, "context.validate", "2024-05-01T11:00:00.000Z"), "/chat",
                 "ws://b:9000", "10.0.0.2:9000"));
  store.add(with(incident(3, 1011, "message.handle", "2024-05-01T12:00:00.000Z"), "/chat",
                 "ws://a:9000", "10.0.0.1:9000"));
  EXPECT_EQ(cids(store.query({.route = "/chat"})), (std::vector<std::string>{"cid-3", "cid-2"}));
  EXPECT_EQ(cids(store.query({.upstream = "ws://a:9000"})),
            (std::vector<std::string>{"cid-3", "cid-1"}));
  EXPECT_EQ(cids(store.query({.upstream = "10.0.0.2:9000"})), (std::vector<std::string>{"cid-2"}));
  EXPECT_EQ(cids(store.query({.until = parse_time("2024-05-01T11:00:00Z")})),
            (std::vector<std::string>{"cid-2", "cid-1"}));
  EXPECT_EQ(
      cids(store.query({.since = parse_time("1714561200"), .until = parse_time("1714561200")})),
      (std::vector<std::string>{"cid-2"}));
}

TEST(IncidentStore, ReloadsAfterRestart) {
  TempDir dir;
  auto log = dir / "incidents.jsonl";
  {
    IncidentStore store({.capacity = 10, .log_path = log.string(), .fsync = FsyncPolicy::always});
    for (int i = 1; i <= 4; ++i) store.add(incident(i));
    store.flush();
    EXPECT_EQ(store.stats().written, 4u);
    EXPECT_EQ(store.stats().fsyncs, 4u);
  }
  EXPECT_EQ(line_count(log), 4u);
  IncidentStore again({.capacity = 3, .log_path = log.string()});
  EXPECT_EQ(again.stats().loaded, 3u);
  EXPECT_EQ(cids(again.query({})), (std::vector<std::string>{"cid-4", "cid-3", "cid-2"}));
  again.add(incident(5));
  again.flush();
  EXPECT_EQ(line_count(log), 5u);
}

TEST(IncidentStore, RotatesAtTheSizeCapAndReloadsAcrossFiles) {
  TempDir dir;
  auto log = dir / "incidents.jsonl";
  const std::size_t line = incident(10).dump().size() + 1;
  {
    IncidentStore store({.capacity = 100, .log_path = log.string(), .max_log_bytes = 3 * line,
                         .keep_rotated = 2, .fsync = FsyncPolicy::never});
    for (int i = 10; i < 20; ++i) store.add(incident(i));  // 10 lines, 3 per file
    store.flush();
    EXPECT_EQ(store.stats().rotations, 3u);
    EXPECT_EQ(store.stats().fsyncs, 0u);
  }
  EXPECT_EQ(line_count(log), 1u);                // cid-19
  EXPECT_EQ(line_count(log.string() + ".1"), 3u);  // 16..18
  EXPECT_EQ(line_count(log.string() + ".2"), 3u);  // 13..15
  EXPECT_FALSE(fs::exists(log.string() + ".3"));   // 10..12 dropped
  IncidentStore again({.capacity = 5, .log_path = log.string(), .keep_rotated = 2});
  EXPECT_EQ(cids(again.query({})),
            (std::vector<std::string>{"cid-19", "cid-18", "cid-17", "cid-16", "cid-15"}));
  IncidentStore all({.capacity = 100, .log_path = log.string(), .keep_rotated = 2});
  EXPECT_EQ(all.stats().loaded, 7u);
}

TEST(IncidentStore, SkipsCorruptLinesAndRepairsAPartialLastLine) {
  TempDir dir;
  auto log = dir / "incidents.jsonl";
  {
    std::ofstream out(log);
    out << incident(1).dump() << "\n"
        << "not json at all\n"
        << R"({"correlation_id":"x"})" << "\n"  // JSON, but not an incident
        << incident(2).dump() << "\n"
        << R"({"correlation_id":"cid-3","ti)";   // crash mid-write
  }
  {
    IncidentStore store({.capacity = 10, .log_path = log.string()});
    EXPECT_EQ(store.stats().loaded, 2u);
    EXPECT_EQ(store.stats().corrupt_lines, 3u);
    EXPECT_EQ(cids(store.query({})), (std::vector<std::string>{"cid-2", "cid-1"}));
    store.add(incident(4));
    store.flush();
  }
  IncidentStore again({.capacity = 10, .log_path = log.string()});
  EXPECT_EQ(cids(again.query({})), (std::vector<std::string>{"cid-4", "cid-2", "cid-1"}));
  EXPECT_EQ(again.stats().corrupt_lines, 3u);
}

TEST(IncidentStore, IntervalPolicySyncsAtMostOncePerInterval) {
  TempDir dir;
  auto log = dir / "incidents.jsonl";
  IncidentStore store({.capacity = 100, .log_path = log.string(), .fsync = FsyncPolicy::interval,
                       .fsync_interval = std::chrono::milliseconds(200)});
  for (int i = 0; i < 50; ++i) store.add(incident(i));
  store.flush();
  EXPECT_EQ(store.stats().written, 50u);
  EXPECT_LE(store.stats().fsyncs, 1u);
  // The writer syncs the dirty tail once the interval has passed.
  for (int i = 0; i < 100 && store.stats().fsyncs < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(store.stats().fsyncs, 1u);
}

TEST(IncidentStore, ConcurrentAddsLoseNothing) {
  TempDir dir;
  auto log = dir / "incidents.jsonl";
  {
    IncidentStore store({.capacity = 1000, .log_path = log.string(), .fsync = FsyncPolicy::never});
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&store, t] {
        for (int i = 0; i < 100; ++i) store.add(incident(t * 1000 + i));
      });
    for (auto& th : threads) th.join();
    EXPECT_EQ(store.size(), 400u);
  }
  EXPECT_EQ(line_count(log), 400u);
}

TEST(IncidentStore, UnopenableLogFailsLoudly) {
  EXPECT_THROW((IncidentStore({.capacity = 1, .log_path = "/nonexistent-dir/x/incidents.jsonl"})),
               std::runtime_error);
}
