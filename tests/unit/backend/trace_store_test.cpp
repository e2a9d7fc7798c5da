#include "backend/trace_store.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

using namespace wsgate::backend;
using json = nlohmann::json;

TEST(TraceStore, TraceJsonHasTheContractShape) {
  TraceStore store({});
  auto t = store.begin("cid-00000001", "strict");
  store.set_user(*t, "staging-e2e-user-001");
  store.add(*t, Stage::auth_verify_jwt, Outcome::ok, "HS256");
  store.add(*t, Stage::context_validate, Outcome::error, "missing: thread_id");
  store.set_attributes(*t, {"thread_id"}, {});
  store.add(*t, Stage::session_close, Outcome::error, "code=1011");
  auto j = json::parse(*store.find_json("cid-00000001"));
  EXPECT_EQ(j["correlation_id"], "cid-00000001");
  EXPECT_EQ(j["user_id"], "staging-e2e-user-001");
  EXPECT_EQ(j["policy"], "strict");
  EXPECT_TRUE(j["traceparent"].is_null());
  EXPECT_EQ(j["missing_attributes"], json::array({"thread_id"}));
  EXPECT_EQ(j["fallback_attributes"], json::array());
  ASSERT_EQ(j["stages"].size(), 3u);
  EXPECT_EQ(j["stages"][0]["stage"], "auth.verify_jwt");
  EXPECT_EQ(j["stages"][0]["outcome"], "ok");
  EXPECT_EQ(j["stages"][1]["stage"], "context.validate");
  EXPECT_EQ(j["stages"][1]["outcome"], "error");
  EXPECT_EQ(j["stages"][1]["detail"], "missing: thread_id");
  EXPECT_EQ(j["stages"][2]["stage"], "session.close");
  EXPECT_GE(j["stages"][2]["t_us"].get<std::int64_t>(), j["stages"][1]["t_us"].get<std::int64_t>());
  EXPECT_FALSE(store.find_json("cid-unknown1").has_value());
}

TEST(TraceStore, TraceparentIsKeptAndCountedInTheByteBudget) {
  TraceStore store({});
  auto t = store.begin("cid-00000002", "fallback");
  const auto before = store.bytes();
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  store.set_traceparent(*t, tp);
  EXPECT_EQ(store.bytes(), before + tp.size());
  auto j = json::parse(*store.find_json("cid-00000002"));
  EXPECT_EQ(j["traceparent"], tp);
}

TEST(TraceStore, AllStageNamesMatchTheContract) {
  std::vector<std::string> names;
  for (Stage s : kAllStages) names.emplace_back(stage_name(s));
  EXPECT_EQ(names,
            (std::vector<std::string>{"auth.verify_jwt", "context.create", "context.validate",
                                      "factory.create_manager", "session.established",
                                      "message.parse", "message.handle", "session.close"}));
}

TEST(TraceStore, CountBoundEvictsOldestAndListsNewestFirst) {
  TraceStore store({3, 1 << 20, 100});
  for (int i = 0; i < 5; ++i) store.begin("cid-" + std::to_string(10000000 + i), "fallback");
  EXPECT_EQ(store.size(), 3u);
  EXPECT_FALSE(store.find_json("cid-10000000").has_value());
  EXPECT_FALSE(store.find_json("cid-10000001").has_value());
  auto list = json::parse(store.recent_json(2));
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]["correlation_id"], "cid-10000004");
  EXPECT_EQ(list[1]["correlation_id"], "cid-10000003");
}

TEST(TraceStore, ByteBoundEvicts) {
  TraceStore store({1000, 8192, 100});
  for (int i = 0; i < 50; ++i) {
    auto t = store.begin("cid-" + std::to_string(20000000 + i), "fallback");
    store.add(*t, Stage::context_create, Outcome::ok, std::string(400, 'x'));
  }
  EXPECT_LE(store.bytes(), 8192u);
  EXPECT_LT(store.size(), 50u);
  EXPECT_GT(store.size(), 0u);
  EXPECT_TRUE(store.find_json("cid-20000049").has_value());
}

TEST(TraceStore, StageCapKeepsErrorsAndTheClose) {
  TraceStore store({10, 1 << 20, 8});
  auto t = store.begin("cid-30000000", "fallback");
  store.add(*t, Stage::auth_verify_jwt, Outcome::ok, "");
  for (int i = 0; i < 100; ++i) store.add(*t, Stage::message_parse, Outcome::ok, "type=ping");
  store.add(*t, Stage::message_handle, Outcome::error, "exception: boom");
  store.add(*t, Stage::session_close, Outcome::error, "code=1011");
  store.add(*t, Stage::session_close, Outcome::ok, "second close is ignored");
  auto j = json::parse(*store.find_json("cid-30000000"));
  auto& stages = j["stages"];
  EXPECT_EQ(stages.size(), 9u);  // 8 + the close
  EXPECT_EQ(stages[0]["stage"], "auth.verify_jwt");
  EXPECT_EQ(stages[stages.size() - 2]["detail"], "exception: boom");
  EXPECT_EQ(stages.back()["detail"], "code=1011");
  EXPECT_EQ(j["stages_dropped"], 94);  // 93 parses pushed out + 1 for the error
}

TEST(TraceStore, SameCorrelationIdReplacesTheOlderEntry) {
  TraceStore store({});
  auto old_trace = store.begin("cid-40000000", "strict");
  auto new_trace = store.begin("cid-40000000", "strict");
  store.add(*old_trace, Stage::context_create, Outcome::ok, "old");  // still safe to write
  store.add(*new_trace, Stage::context_create, Outcome::ok, "new");
  EXPECT_EQ(store.size(), 1u);
  auto j = json::parse(*store.find_json("cid-40000000"));
  EXPECT_EQ(j["stages"][0]["detail"], "new");
}

TEST(TraceStore, ConcurrentWritersAndReaders) {
  TraceStore store({64, 1 << 16, 16});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&store, t] {
      for (int i = 0; i < 300; ++i) {
        auto tr = store.begin("cid-" + std::to_string(t) + "-" + std::to_string(100000 + i), "x");
        store.add(*tr, Stage::message_parse, Outcome::ok, "m");
        store.add(*tr, Stage::session_close, Outcome::ok, "c");
        if (i % 10 == 0) (void)store.recent_json(5);
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_LE(store.size(), 64u);
  EXPECT_LE(store.bytes(), 1u << 16);
}

TEST(TraceStore, StageNamesEachMissingAttributeAndWhereItComesFrom) {
  TraceStore store({});
  auto t = store.begin("cid-00000002", "strict");
  store.add(*t, Stage::auth_verify_jwt, Outcome::ok, "HS256");
  store.add(*t, Stage::context_validate, Outcome::error, "missing: thread_id",
            {{"thread_id", "JWT claim thread_id, else header X-Thread-ID", "absent"}});
  auto j = json::parse(*store.find_json("cid-00000002"));
  // A stage without missing attributes keeps exactly the contract's four fields.
  EXPECT_FALSE(j["stages"][0].contains("missing"));
  EXPECT_EQ(j["stages"][0].size(), 4u);
  ASSERT_TRUE(j["stages"][1]["missing"].is_array());
  ASSERT_EQ(j["stages"][1]["missing"].size(), 1u);
  EXPECT_EQ(j["stages"][1]["missing"][0]["attribute"], "thread_id");
  EXPECT_EQ(j["stages"][1]["missing"][0]["source"], "JWT claim thread_id, else header X-Thread-ID");
  EXPECT_EQ(j["stages"][1]["missing"][0]["found"], "absent");
  EXPECT_EQ(j["stages"][1]["detail"], "missing: thread_id");
}
