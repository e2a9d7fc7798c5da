// The pure parts of `wsgate incidents`: address expansion, the query, the
// merge order, the table and the one-incident account.
#include "proxy/incidents_cli.hpp"

#include <gtest/gtest.h>

#include <map>
#include <sstream>

using namespace wsgate::proxy::incidents_cli;

namespace {

Resolve fake_dns(std::map<std::string, std::vector<std::string>> names, int* calls = nullptr) {
  return [names = std::move(names), calls](const std::string& host, std::string& error) {
    if (calls) ++*calls;
    auto it = names.find(host);
    if (it == names.end()) {
      error = "Host not found";
      return std::vector<std::string>{};
    }
    return it->second;
  };
}

std::vector<std::string> labels(const std::vector<Replica>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r.label);
  return out;
}

Row row(const std::string& time, const std::string& replica, const std::string& id,
        const std::string& summary = "1011 at x",
        const std::string& stage = "factory.create_manager") {
  std::string body =
      R"({"incidents":[{"time":")" + time + R"(","correlation_id":")" + id +
      R"(","close":{"code":1011,"reason":"r","initiator":"upstream"},"failing_stage":")" + stage +
      R"(","summary":)" + nlohmann::json(summary).dump() + "}]}";
  std::string error;
  auto rows = rows_from_body(body, replica, error);
  EXPECT_TRUE(rows) << error;
  return rows->at(0);
}

}  // namespace

TEST(IncidentsCliExpand, NameBecomesOneReplicaPerAddress) {
  auto rs = expand_admins({"replicas.svc:9090"},
                          fake_dns({{"replicas.svc", {"10.0.0.1", "10.0.0.2", "fd00::3"}}}));
  EXPECT_EQ(labels(rs),
            (std::vector<std::string>{"10.0.0.1:9090", "10.0.0.2:9090", "[fd00::3]:9090"}));
  for (const auto& r : rs) {
    EXPECT_EQ(r.port, 9090);
    EXPECT_TRUE(r.error.empty());
  }
  EXPECT_EQ(rs[2].host, "fd00::3");
}

TEST(IncidentsCliExpand, LiteralsAreNotResolvedAndDuplicatesKeptOnce) {
  int calls = 0;
  auto rs = expand_admins({"127.0.0.1:9090", "[::1]:9091", "127.0.0.1:9090", "a:9092", "b:9092"},
                          fake_dns({{"a", {"10.0.0.1"}}, {"b", {"10.0.0.1", "10.0.0.2"}}}, &calls));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(labels(rs), (std::vector<std::string>{"127.0.0.1:9090", "[::1]:9091", "10.0.0.1:9092",
                                                  "10.0.0.2:9092"}));
}

TEST(IncidentsCliExpand, NameThatDoesNotResolveIsAFailedReplica) {
  auto rs = expand_admins({"gone.svc:9090", "127.0.0.1:1"}, fake_dns({}));
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].label, "gone.svc:9090");
  EXPECT_EQ(rs[0].error, "cannot resolve gone.svc: Host not found");
  EXPECT_TRUE(rs[1].error.empty());
}

TEST(IncidentsCliExpand, SystemResolverFindsLocalhost) {
  std::string error;
  auto addrs = system_resolve("localhost", error);
  EXPECT_NE(std::find(addrs.begin(), addrs.end(), "127.0.0.1"), addrs.end()) << error;
}

TEST(IncidentsCliQuery, ValuesArePercentEncodedInOrder) {
  EXPECT_EQ(incidents_target({}), "/incidents");
  EXPECT_EQ(incidents_target(
                {{"code", "1011"}, {"since", "2026-11-29T06:00:00.000Z"}, {"route", "/a b&c=d"}}),
            "/incidents?code=1011&since=2026-11-29T06%3A00%3A00.000Z&route=%2Fa%20b%26c%3Dd");
}

TEST(IncidentsCliMerge, NewestFirstAcrossReplicasTiesInEachReplicasOrder) {
  std::vector<Row> rows{row("2026-11-29T06:00:01.000Z", "b:1", "id-1"),
                        row("2026-11-29T06:00:03.500Z", "a:1", "id-2"),
                        row("2026-11-29T06:00:02.000Z", "b:1", "id-3"),
                        row("2026-11-29T06:00:02.000Z", "a:1", "id-5"),
                        row("2026-11-29T06:00:02.000Z", "a:1", "id-4")};
  sort_newest_first(rows);
  std::vector<std::string> got;
  for (const auto& r : rows)
    got.push_back(r.record["replica"].get<std::string>() + "/" +
                  r.record["correlation_id"].get<std::string>());
  EXPECT_EQ(got,
            (std::vector<std::string>{"a:1/id-2", "a:1/id-5", "a:1/id-4", "b:1/id-3", "b:1/id-1"}));
}

TEST(IncidentsCliMerge, BodyThatIsNotAnIncidentListIsAnError) {
  std::string error;
  EXPECT_FALSE(rows_from_body("<html>", "a:1", error));
  EXPECT_EQ(error, "answer is not an /incidents document");
  EXPECT_FALSE(rows_from_body(R"({"incidents":3})", "a:1", error));
  auto rows = rows_from_body(R"({"incidents":[],"count":0})", "a:1", error);
  ASSERT_TRUE(rows);
  EXPECT_TRUE(rows->empty());
}

TEST(IncidentsCliTable, AlignedColumnsWithHeader) {
  std::vector<Row> rows{
      row("2026-11-29T06:00:03.500Z", "127.0.0.1:40001", "cid-aaaaaaaa", "first one"),
      row("2026-11-29T06:00:01.000Z", "[::1]:9", "c2", "second", "unknown")};
  auto text = format_table(rows, {});
  EXPECT_EQ(text,
            "TIME                      REPLICA          CODE  STAGE                   CORRELATION "
            "ID  SUMMARY\n"
            "2026-11-29T06:00:03.500Z  127.0.0.1:40001  1011  factory.create_manager  cid-aaaaaaaa "
            "   first one\n"
            "2026-11-29T06:00:01.000Z  [::1]:9          1011  unknown                 c2           "
            "   second\n");
  EXPECT_EQ(format_table(rows, {}, false).find("TIME"), std::string::npos);
}

TEST(IncidentsCliTable, LongCellsAreCutUnlessAskedNotTo) {
  std::string summary(200, 's');
  std::string id(60, 'i');
  std::vector<Row> rows{row("2026-11-29T06:00:03.500Z", "a:1", id, summary + "\nsecond line")};
  TableOptions opts;
  auto line = format_table(rows, opts);
  line = line.substr(line.find('\n') + 1);
  EXPECT_NE(line.find(std::string(33, 'i') + "...  "), std::string::npos);
  EXPECT_NE(line.find(std::string(69, 's') + "...\n"), std::string::npos);
  EXPECT_EQ(line.find(std::string(34, 'i')), std::string::npos);
  opts.truncate = false;
  auto wide = format_table(rows, opts);
  EXPECT_NE(wide.find(id), std::string::npos);
  // A newline inside a cell never breaks the row.
  EXPECT_NE(wide.find(summary + " second line\n"), std::string::npos);
}

TEST(IncidentsCliTable, TruncationKeepsUtf8Whole) {
  EXPECT_EQ(truncate_cell("short", 10), "short");
  EXPECT_EQ(truncate_cell("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 5),
            "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
  EXPECT_EQ(truncate_cell("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 5),
            "\xc3\xa9\xc3\xa9...");
  EXPECT_EQ(truncate_cell("abcdef", 2), "..");
}

TEST(IncidentsCliShow, ReadableAccountOfOneIncident) {
  auto rec = nlohmann::json::parse(R"J({
    "correlation_id":"cid-1","replica":"127.0.0.1:9","time":"2026-11-29T06:00:03.500Z",
    "summary":"1011 at factory.create_manager: context missing thread_id (policy strict)",
    "close":{"code":1011,"reason":"Factory SSOT validation failed","initiator":"upstream"},
    "failing_stage":"factory.create_manager","missing_attributes":["thread_id","org_id"],
    "upstream":"ws://b:1/ws","upstream_endpoint":"10.0.0.7:8080","route":"/","client":"127.0.0.1:5",
    "backend_trace":{"user_id":"u-1","stages":[
      {"stage":"auth.verify_jwt","outcome":"ok","t_us":5,"detail":"sub ok"},
      {"stage":"factory.create_manager","outcome":"error","t_us":12,"detail":"missing: thread_id"}]}})J");
  auto text = format_incident(rec);
  EXPECT_NE(
      text.find("summary             1011 at factory.create_manager: context missing thread_id"),
      std::string::npos);
  EXPECT_NE(text.find("user                u-1\n"), std::string::npos);
  EXPECT_NE(
      text.find("close               1011 \"Factory SSOT validation failed\" from upstream\n"),
      std::string::npos);
  EXPECT_NE(text.find("failing stage       factory.create_manager\n"), std::string::npos);
  EXPECT_NE(text.find("missing attributes  thread_id, org_id\n"), std::string::npos);
  EXPECT_NE(text.find("upstream            ws://b:1/ws (endpoint 10.0.0.7:8080)\n"),
            std::string::npos);
  EXPECT_NE(text.find("trace stages:\n"
                      "  +5us   auth.verify_jwt         ok     sub ok\n"
                      "  +12us  factory.create_manager  error  missing: thread_id\n"),
            std::string::npos)
      << text;
  rec["user_id"] = "u-top";
  rec.erase("backend_trace");
  rec["backend_trace_error"] = "HTTP 404 after 3 tries";
  text = format_incident(rec);
  EXPECT_NE(text.find("user                u-top\n"), std::string::npos);
  EXPECT_NE(text.find("backend trace       unavailable: HTTP 404 after 3 tries\n"),
            std::string::npos);
}

TEST(IncidentsCliTail, SeenSetDedupesPerReplicaAndForgetsOldOnes) {
  using namespace std::chrono;
  SeenSet seen;
  system_clock::time_point t0{seconds(1000)};
  EXPECT_TRUE(seen.insert("a:1", "x", t0));
  EXPECT_FALSE(seen.insert("a:1", "x", t0));
  EXPECT_TRUE(seen.insert("b:1", "x", t0));  // same id, other replica: another incident
  EXPECT_TRUE(seen.insert("a:1", "y", t0 + seconds(10)));
  seen.forget_before("a:1", t0 + seconds(5));
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_FALSE(seen.insert("a:1", "y", t0 + seconds(10)));
  EXPECT_FALSE(seen.insert("b:1", "x", t0));
}
