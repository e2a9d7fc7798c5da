// The incident path's bounds: trace nesting depth, the stored trace cap
// (keeping the failing stage), and an incident log that survives failed
// writes, a replaced or missing directory, non-regular files and over-long
// lines.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "proxy/incidents/incident.hpp"
#include "proxy/incidents/incident_store.hpp"
#include "proxy/metrics.hpp"

using namespace wsgate::proxy;
using namespace wsgate::proxy::incidents;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json incident(int i, std::size_t summary_bytes = 16) {
  return {{"correlation_id", "cid-" + std::to_string(i)},
          {"time", "2024-05-01T12:00:00.000Z"},
          {"close", {{"code", 1011}, {"reason", "Internal error"}, {"initiator", "upstream"}}},
          {"failing_stage", "factory.create_manager"},
          {"summary", std::string(summary_bytes, 's')}};
}

std::vector<std::string> lines_of(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::string> cids_in(const fs::path& p) {
  std::vector<std::string> out;
  for (auto& line : lines_of(p)) {
    auto doc = json::parse(line, nullptr, false);
    out.push_back(doc.is_object() && doc.contains("correlation_id")
                      ? doc["correlation_id"].get<std::string>()
                      : "CORRUPT:" + line.substr(0, 40));
  }
  return out;
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("wsgate-limits-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path operator/(const std::string& name) const { return path_ / name; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

double counter(prometheus::Registry& r, const std::string& name, const std::string& reason = "") {
  for (auto& family : r.Collect()) {
    if (family.name != name) continue;
    for (auto& m : family.metric) {
      bool match = reason.empty();
      for (auto& l : m.label) match |= l.name == "reason" && l.value == reason;
      if (match) return m.counter.value;
    }
  }
  return -1;
}

json trace_with_stages(std::size_t n, std::size_t failing, std::size_t detail_bytes) {
  json stages = json::array();
  for (std::size_t i = 0; i < n; ++i)
    stages.push_back({{"stage", "stage." + std::to_string(i)},
                      {"outcome", i == failing ? "error" : "ok"},
                      {"detail", std::string(detail_bytes, 'd')}});
  return {{"correlation_id", "cid"}, {"policy", "strict"}, {"stages", stages}};
}

}  // namespace

TEST(TraceDepth, CountsOnlyStructuralBrackets) {
  EXPECT_FALSE(json_nesting_exceeds(std::string(64, '[') + std::string(64, ']'), 64));
  EXPECT_TRUE(json_nesting_exceeds(std::string(65, '[') + std::string(65, ']'), 64));
  EXPECT_TRUE(json_nesting_exceeds(R"({"a":{"b":[[)", 3));
  // Brackets inside strings, escaped quotes included, do not nest.
  EXPECT_FALSE(json_nesting_exceeds(R"({"a":"[[[[{{{{\"[[[[[[","b":[1]})", 3));
  EXPECT_TRUE(json_nesting_exceeds(R"({"a":"\\",[[[[]]]]})", 3));
  // Depth is nesting, not the number of brackets.
  std::string flat = "[";
  for (int i = 0; i < 1000; ++i) flat += "[],";
  flat += "[]]";
  EXPECT_FALSE(json_nesting_exceeds(flat, 2));
}

TEST(TraceCap, SmallTraceIsKeptWhole) {
  auto trace = trace_with_stages(5, 2, 10);
  auto before = trace;
  EXPECT_FALSE(cap_trace(trace, 64 * 1024).has_value());
  EXPECT_EQ(trace, before);
}

TEST(TraceCap, KeepsTheFailingStageAndItsNeighbours) {
  auto trace = trace_with_stages(200, 150, 1000);  // ~210 KB
  auto cut = cap_trace(trace, 16 * 1024);
  ASSERT_TRUE(cut.has_value());
  EXPECT_LE(trace.dump().size(), 16u * 1024);
  EXPECT_GT(cut->original_bytes, 200u * 1000);
  EXPECT_FALSE(cut->fields_dropped);
  EXPECT_EQ(trace["policy"], "strict");
  auto& stages = trace["stages"];
  ASSERT_GE(stages.size(), 3u);
  EXPECT_EQ(cut->stages_dropped_before + cut->stages_dropped_after + stages.size(), 200u);
  // A contiguous window holding 149, 150 and 151.
  const std::size_t first = cut->stages_dropped_before;
  for (std::size_t i = 0; i < stages.size(); ++i)
    EXPECT_EQ(stages[i]["stage"], "stage." + std::to_string(first + i));
  EXPECT_LT(first, 150u);
  EXPECT_GT(first + stages.size() - 1, 150u);
  EXPECT_EQ(analyze_trace(trace).failing_stage, "stage.150");
}

TEST(TraceCap, HugeFailingStageKeepsItsNameAndACutDetail) {
  auto trace = trace_with_stages(3, 1, 200 * 1024);
  trace["extra"] = std::string(100 * 1024, 'x');
  auto cut = cap_trace(trace, 8 * 1024);
  ASSERT_TRUE(cut.has_value());
  EXPECT_TRUE(cut->fields_dropped);
  EXPECT_LE(trace.dump().size(), 8u * 1024);
  ASSERT_EQ(trace["stages"].size(), 1u);
  EXPECT_EQ(trace["stages"][0]["stage"], "stage.1");
  EXPECT_EQ(trace["stages"][0]["outcome"], "error");
  EXPECT_EQ(cut->stages_dropped_before, 1u);
  EXPECT_EQ(cut->stages_dropped_after, 1u);
  EXPECT_FALSE(trace.contains("extra"));
}

TEST(TraceCap, IncidentRecordCarriesTheCutAndTheRightSummary) {
  SessionSummary s;
  s.correlation_id = "cid-big";
  s.code = 1011;
  s.initiator = Initiator::upstream;
  TraceFetchResult fetch;
  fetch.outcome = FetchOutcome::ok;
  fetch.trace = trace_with_stages(1000, 700, 1000);  // ~1 MB, the fetch cap
  auto j = build_incident(s, std::chrono::system_clock::now(), fetch, 4096, 64 * 1024);
  EXPECT_LE(j["backend_trace"].dump().size(), 64u * 1024);
  ASSERT_TRUE(j.contains("backend_trace_truncated"));
  EXPECT_EQ(j["backend_trace_truncated"]["max_bytes"], 64 * 1024);
  EXPECT_GT(j["backend_trace_truncated"]["stages_dropped_before"].get<int>(), 0);
  EXPECT_GT(j["backend_trace_truncated"]["stages_dropped_after"].get<int>(), 0);
  EXPECT_EQ(j["failing_stage"], "stage.700");
  // The whole record stays near the cap (the default capacity of 1000 such
  // records is then ~70 MB, not a gigabyte).
  EXPECT_LT(j.dump().size(), 72u * 1024);
}

TEST(IncidentLog, RefusesFilesThatAreNotRegular) {
  TempDir dir;
  auto expect_refused = [](const std::string& path, const std::string& kind) {
    try {
      IncidentStore store({.capacity = 1, .log_path = path});
      ADD_FAILURE() << path << " accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("--incident-log " + path), std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find(kind + ", not a regular file"), std::string::npos)
          << e.what();
    }
  };
  expect_refused("/dev/full", "a character device");
  expect_refused(dir.path().string(), "a directory");
  auto fifo = (dir / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_refused(fifo, "a FIFO");
}

TEST(IncidentLog, FailedWriteIsCutBackToTheLastWholeLine) {
  TempDir dir;
  auto log = dir / "incidents.jsonl";
  prometheus::Registry registry;
  IncidentPathMetrics metrics(registry);
  // RLIMIT_FSIZE makes the write past the limit short, then EFBIG: the
  // disk-full shape without a mount. SIGXFSZ ignored so it is an error.
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  {
    IncidentStore store({.capacity = 10,
                         .log_path = log.string(),
                         .fsync = FsyncPolicy::always,
                         .metrics = &metrics});
    store.add(incident(1));
    store.add(incident(2));
    store.flush();
    const auto size = fs::file_size(log);
    rlimit tight = old_limit;
    tight.rlim_cur = size + 100;  // part of the next (4 KB) line fits
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &tight), 0);
    store.add(incident(3, 4096));
    store.flush();
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old_limit), 0);
    EXPECT_EQ(fs::file_size(log), size);  // the partial line is gone
    EXPECT_EQ(store.stats().write_errors, 1u);
    EXPECT_EQ(store.stats().rolled_back, 1u);
    EXPECT_EQ(counter(registry, "wsgate_incident_log_write_errors_total", "write"), 1);
    EXPECT_EQ(store.size(), 3u);  // still served from memory
    store.add(incident(4));       // "disk freed"
    store.flush();
    EXPECT_EQ(store.stats().written, 3u);
  }
  ::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(cids_in(log), (std::vector<std::string>{"cid-1", "cid-2", "cid-4"}));
  IncidentStore again({.capacity = 10, .log_path = log.string()});
  EXPECT_EQ(again.stats().loaded, 3u);
  EXPECT_EQ(again.stats().corrupt_lines, 0u);
}

TEST(IncidentLog, ReopensAfterTheDirectoryIsReplaced) {
  TempDir dir;
  auto sub = dir / "logs";
  fs::create_directories(sub);
  auto log = sub / "incidents.jsonl";
  prometheus::Registry registry;
  IncidentPathMetrics metrics(registry);
  IncidentStore store(
      {.capacity = 10, .log_path = log.string(), .fsync = FsyncPolicy::never, .metrics = &metrics});
  store.add(incident(1));
  store.flush();
  fs::remove_all(sub);
  store.add(incident(2));  // nowhere to go: counted, not silent
  store.flush();
  EXPECT_GE(counter(registry, "wsgate_incident_log_write_errors_total", "open"), 1);
  fs::create_directories(sub);
  store.add(incident(3));
  store.flush();
  EXPECT_EQ(cids_in(log), (std::vector<std::string>{"cid-3"}));
  EXPECT_EQ(store.stats().reopens, 1u);
  EXPECT_EQ(counter(registry, "wsgate_incident_log_reopens_total"), 1);
  // Replaced while open: a new directory with the same name.
  fs::rename(sub, dir / "old");
  fs::create_directories(sub);
  store.add(incident(4));
  store.flush();
  EXPECT_EQ(cids_in(log), (std::vector<std::string>{"cid-4"}));
  EXPECT_EQ(cids_in(dir / "old" / "incidents.jsonl"), (std::vector<std::string>{"cid-3"}));
}

TEST(IncidentLog, RotationIntoAMissingDirectoryRecoversWhenItReturns) {
  TempDir dir;
  auto sub = dir / "logs";
  fs::create_directories(sub);
  auto log = sub / "incidents.jsonl";
  const std::size_t line = incident(10).dump().size() + 1;
  IncidentStore store({.capacity = 100,
                       .log_path = log.string(),
                       .max_log_bytes = 2 * line,
                       .keep_rotated = 1,
                       .fsync = FsyncPolicy::never});
  store.add(incident(10));
  store.add(incident(11));
  store.flush();
  fs::remove_all(sub);
  for (int i = 12; i < 16; ++i) store.add(incident(i));  // each would rotate or open
  store.flush();
  EXPECT_GE(store.stats().write_errors, 4u);
  fs::create_directories(sub);
  store.add(incident(16));
  store.add(incident(17));
  store.flush();
  EXPECT_EQ(cids_in(log), (std::vector<std::string>{"cid-16", "cid-17"}));
}

TEST(IncidentLog, ExternalRotationAndRequestedReopen) {
  TempDir dir;
  auto log = dir / "incidents.jsonl";
  IncidentStore store({.capacity = 10, .log_path = log.string(), .fsync = FsyncPolicy::never});
  store.add(incident(1));
  store.flush();
  fs::rename(log, dir / "incidents.jsonl.old");  // logrotate without copytruncate
  store.request_reopen();                        // SIGHUP
  for (int i = 0; i < 200 && !fs::exists(log); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(fs::exists(log));
  store.add(incident(2));
  store.flush();
  EXPECT_EQ(cids_in(log), (std::vector<std::string>{"cid-2"}));
  EXPECT_EQ(cids_in(dir / "incidents.jsonl.old"), (std::vector<std::string>{"cid-1"}));
}

TEST(IncidentLog, OverLongLinesAreSkippedOnLoad) {
  TempDir dir;
  auto log = dir / "incidents.jsonl";
  {
    std::ofstream out(log);
    out << incident(1).dump() << "\n"
        << std::string(1 << 20, 'x') << "\n"  // 1 MiB of junk, one line
        << incident(2, 8000).dump() << "\n"   // a record longer than the limit
        << incident(3).dump() << "\n"
        << std::string(100000, '[');  // unterminated and deep
  }
  prometheus::Registry registry;
  IncidentPathMetrics metrics(registry);
  IncidentStore store(
      {.capacity = 10, .log_path = log.string(), .max_line_bytes = 4096, .metrics = &metrics});
  EXPECT_EQ(store.stats().loaded, 2u);
  EXPECT_EQ(store.stats().lines_too_long, 3u);
  EXPECT_EQ(counter(registry, "wsgate_incident_log_lines_too_long_total"), 3);
  EXPECT_NE(store.find("cid-1"), nullptr);
  EXPECT_NE(store.find("cid-3"), nullptr);
}

TEST(IncidentLog, DeepLineIsCorruptNotACrash) {
  TempDir dir;
  auto log = dir / "incidents.jsonl";
  {
    std::ofstream out(log);
    auto deep = incident(1);
    out << deep.dump().substr(0, deep.dump().size() - 1) << R"(,"x":)" << std::string(50000, '[')
        << std::string(50000, ']') << "}\n"
        << incident(2).dump() << "\n";
  }
  IncidentStore store({.capacity = 10, .log_path = log.string()});
  EXPECT_EQ(store.stats().loaded, 1u);
  EXPECT_EQ(store.stats().corrupt_lines, 1u);
}

TEST(IncidentLog, FullWriterQueueDropsTheLogWriteButKeepsTheRecord) {
  constexpr int kRecords = 5000;
  // Bounded by records, then by bytes (one record waits at a time).
  for (auto [max_records, max_bytes] : {std::pair<std::size_t, std::size_t>{1, 64u << 20},
                                        std::pair<std::size_t, std::size_t>{10000, 1}}) {
    SCOPED_TRACE("queue_max " + std::to_string(max_records) + ", bytes " +
                 std::to_string(max_bytes));
    TempDir dir;
    auto log = dir / "incidents.jsonl";
    prometheus::Registry registry;
    IncidentPathMetrics metrics(registry);
    {
      IncidentStore store({.capacity = kRecords,
                           .log_path = log.string(),
                           .fsync = FsyncPolicy::always,
                           .queue_max = max_records,
                           .queue_max_bytes = max_bytes,
                           .metrics = &metrics});
      for (int i = 0; i < kRecords; ++i) store.add(incident(i));
      store.flush();
      auto st = store.stats();
      EXPECT_EQ(store.size(), static_cast<std::size_t>(kRecords));
      EXPECT_GT(st.dropped, 0u);
      EXPECT_GT(st.written, 0u);
      EXPECT_EQ(st.written + st.dropped, static_cast<std::uint64_t>(kRecords));
      EXPECT_EQ(counter(registry, "wsgate_incident_log_dropped_total"),
                static_cast<double>(st.dropped));
    }
    IncidentStore again({.capacity = kRecords, .log_path = log.string()});
    EXPECT_EQ(again.stats().corrupt_lines, 0u);
  }
}
