// The incident builder: failing stage, missing attributes, summary text,
// redaction, and the time helpers.
#include "proxy/incidents/incident.hpp"

#include <gtest/gtest.h>

#include <boost/beast/zlib/deflate_stream.hpp>
#include <set>

#include "proxy/incidents/trace_fetcher.hpp"

using namespace wsgate::proxy;
using namespace wsgate::proxy::incidents;
using nlohmann::json;

namespace {

const std::string kJwt =
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzdGFnaW5nLWUyZS11c2VyLTAwMSJ9.c2lnbmF0dXJlc2lnbmF0dXJl";

json strict_trace() {
  return json::parse(R"J({
    "correlation_id": "cid-strict-0001", "user_id": "staging-e2e-user-001", "policy": "strict",
    "stages": [
      {"stage": "auth.verify_jwt", "outcome": "ok", "t_us": 10, "detail": "sub=staging-e2e-user-001"},
      {"stage": "context.create", "outcome": "ok", "t_us": 20, "detail": "user_id from jwt"},
      {"stage": "factory.create_manager", "outcome": "error", "t_us": 30,
       "detail": "missing: thread_id (policy strict: Factory SSOT validation failed)"},
      {"stage": "session.close", "outcome": "error", "t_us": 40, "detail": "1011"}
    ],
    "missing_attributes": ["thread_id"]
  })J");
}

SessionSummary summary_1011() {
  SessionSummary s;
  s.correlation_id = "cid-strict-0001";
  s.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  s.client = "127.0.0.1:50000";
  s.route = "/";
  s.upstream = "ws://127.0.0.1:9000";
  s.target = "/ws?token=" + kJwt;
  s.code = 1011;
  s.reason = "Factory SSOT validation failed";
  s.initiator = Initiator::upstream;
  s.duration = std::chrono::milliseconds(42);
  s.client_to_upstream = {3, 120, 2, 0};
  s.upstream_to_client = {4, 300, 1, 0};
  s.last_upstream_message = R"({"type":"error","code":"FACTORY_INIT_FAILED"})";
  return s;
}

TraceFetchResult ok(json trace) {
  TraceFetchResult r;
  r.outcome = FetchOutcome::ok;
  r.trace = std::move(trace);
  r.attempts = 1;
  return r;
}

TraceFetchResult failed(FetchOutcome o, std::string error) {
  TraceFetchResult r;
  r.outcome = o;
  r.error = std::move(error);
  r.attempts = 3;
  return r;
}

const auto kEnd = std::chrono::system_clock::time_point(std::chrono::milliseconds(1714564800123));

}  // namespace

TEST(IncidentAnalysis, FirstErrorStageIsTheFailingStage) {
  auto a = analyze_trace(strict_trace());
  EXPECT_EQ(a.failing_stage, "factory.create_manager");
  EXPECT_EQ(a.failing_detail, "missing: thread_id (policy strict: Factory SSOT validation failed)");
  EXPECT_EQ(a.missing_attributes, std::vector<std::string>{"thread_id"});
  EXPECT_EQ(a.policy, "strict");
}

TEST(IncidentAnalysis, NoErrorStageIsUnknown) {
  auto t = json::parse(R"({"policy":"fallback","stages":[{"stage":"auth.verify_jwt","outcome":"ok"},
                           {"stage":"context.validate","outcome":"fallback"}]})");
  auto a = analyze_trace(t);
  EXPECT_EQ(a.failing_stage, "unknown");
  EXPECT_TRUE(a.missing_attributes.empty());
  EXPECT_EQ(analyze_trace(json::array()).failing_stage, "unknown");
  EXPECT_EQ(analyze_trace(json::parse(R"({"stages":"nope"})")).failing_stage, "unknown");
}

TEST(IncidentAnalysis, MissingAttributesParsedFromDetailWhenTheTraceHasNoList) {
  auto t = json::parse(R"J({"stages":[{"stage":"context.validate","outcome":"error",
                           "detail":"missing: thread_id, run_id (policy strict)"}]})J");
  auto a = analyze_trace(t);
  EXPECT_EQ(a.failing_stage, "context.validate");
  EXPECT_EQ(a.missing_attributes, (std::vector<std::string>{"thread_id", "run_id"}));
  EXPECT_EQ(a.policy, "");
}

TEST(IncidentAnalysis, ParseMissingAttributes) {
  EXPECT_EQ(parse_missing_attributes("missing: thread_id"), std::vector<std::string>{"thread_id"});
  EXPECT_EQ(parse_missing_attributes("context missing thread_id,run_id; filled"),
            (std::vector<std::string>{"thread_id", "run_id"}));
  EXPECT_EQ(parse_missing_attributes("missing attributes: user_id"),
            std::vector<std::string>{"user_id"});
  EXPECT_TRUE(parse_missing_attributes("all present").empty());
  EXPECT_TRUE(parse_missing_attributes("missing").empty());
}

TEST(IncidentSummary, ContextFailureNamesStageAttributeAndPolicy) {
  auto a = analyze_trace(strict_trace());
  EXPECT_EQ(summary_line(1011, "Factory SSOT validation failed", Initiator::upstream, a,
                         ok(strict_trace())),
            "1011 at factory.create_manager: context missing thread_id (policy strict)");
}

TEST(IncidentSummary, HandlerFailureUsesTheStageDetail) {
  auto t = json::parse(R"({"policy":"fallback","stages":[
      {"stage":"session.established","outcome":"ok"},
      {"stage":"message.handle","outcome":"error","detail":"handler for type chat threw runtime_error: boom"}],
      "missing_attributes":[]})");
  EXPECT_EQ(
      summary_line(1011, "Internal error", Initiator::upstream, analyze_trace(t), ok(t)),
      "1011 at message.handle: handler for type chat threw runtime_error: boom (policy fallback)");
}

TEST(IncidentSummary, WithoutTraceKeepsReasonAndError) {
  TraceAnalysis none;
  EXPECT_EQ(summary_line(1011, "Internal error", Initiator::upstream, none,
                         failed(FetchOutcome::not_found, "HTTP 404 after 3 tries")),
            "1011 from upstream \"Internal error\": failing stage unknown (backend trace: HTTP 404 "
            "after 3 tries)");
  EXPECT_EQ(summary_line(1011, "", Initiator::client, none, ok(json::object())),
            "1011 from client: no failing stage in the backend trace");
}

TEST(IncidentRecord, HasEveryDesignField) {
  auto s = summary_1011();
  auto j = build_incident(s, kEnd, ok(strict_trace()));
  EXPECT_EQ(j["correlation_id"], "cid-strict-0001");
  EXPECT_EQ(j["traceparent"], "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  EXPECT_EQ(j["time"], "2024-05-01T12:00:00.123Z");
  EXPECT_EQ(j["client"], "127.0.0.1:50000");
  EXPECT_EQ(j["route"], "/");
  EXPECT_EQ(j["path"], "/ws");
  EXPECT_EQ(j["upstream"], "ws://127.0.0.1:9000");
  EXPECT_EQ(j["close"], json({{"code", 1011},
                              {"reason", "Factory SSOT validation failed"},
                              {"initiator", "upstream"}}));
  EXPECT_EQ(j["duration_ms"], 42);
  EXPECT_EQ(j["frame_counts"]["client_to_upstream"],
            json({{"frames", 3}, {"bytes", 120}, {"messages", 2}}));
  EXPECT_EQ(j["frame_counts"]["upstream_to_client"],
            json({{"frames", 4}, {"bytes", 300}, {"messages", 1}}));
  EXPECT_EQ(j["frames"], json::array());  // no flight recorder in this summary
  EXPECT_EQ(j["last_upstream_message"]["text"], R"({"type":"error","code":"FACTORY_INIT_FAILED"})");
  EXPECT_EQ(j["last_upstream_message"]["truncated"], false);
  EXPECT_EQ(j["last_upstream_message"]["compressed"], false);
  EXPECT_EQ(j["backend_trace"]["stages"].size(), 4u);
  EXPECT_FALSE(j.contains("backend_trace_error"));
  EXPECT_EQ(j["failing_stage"], "factory.create_manager");
  EXPECT_EQ(j["missing_attributes"], json::array({"thread_id"}));
  EXPECT_EQ(j["policy"], "strict");
  EXPECT_EQ(j["summary"],
            "1011 at factory.create_manager: context missing thread_id (policy strict)");
  EXPECT_EQ(j["trace_fetch"], json({{"outcome", "ok"}, {"attempts", 1}}));
}

TEST(IncidentRecord, FetchFailureIsRecorded) {
  auto j =
      build_incident(summary_1011(), kEnd, failed(FetchOutcome::timeout, "timeout after 2000 ms"));
  EXPECT_FALSE(j.contains("backend_trace"));
  EXPECT_EQ(j["backend_trace_error"], "timeout after 2000 ms");
  EXPECT_EQ(j["failing_stage"], "unknown");
  EXPECT_EQ(j["missing_attributes"], json::array());
  EXPECT_EQ(j["policy"], nullptr);
  EXPECT_EQ(j["close"]["reason"], "Factory SSOT validation failed");
  EXPECT_EQ(j["trace_fetch"]["outcome"], "timeout");
}

TEST(IncidentRecord, SecretsNeverReachTheRecord) {
  auto s = summary_1011();
  s.reason = "bad token " + kJwt;
  s.last_upstream_message =
      R"({"echo":"Authorization: Bearer abc.def.ghi","proto":"jwt.)" + kJwt + "\"}";
  auto trace = strict_trace();
  trace["stages"][2]["detail"] = "missing: thread_id; token=" + kJwt;
  trace["headers"] = {{"authorization", "Bearer s3cr3t-token"}};
  auto j = build_incident(s, kEnd, ok(trace));
  const std::string text = j.dump();
  EXPECT_EQ(text.find(kJwt), std::string::npos) << text;
  EXPECT_EQ(text.find("s3cr3t-token"), std::string::npos) << text;
  EXPECT_EQ(text.find("abc.def.ghi"), std::string::npos) << text;
  EXPECT_EQ(j["close"]["reason"], "bad token [REDACTED]");
  EXPECT_EQ(j["backend_trace"]["headers"]["authorization"], "Bearer [REDACTED]");
  EXPECT_EQ(j["failing_stage"], "factory.create_manager");

  auto failed_fetch = build_incident(s, kEnd, failed(FetchOutcome::error, "read: " + kJwt));
  EXPECT_EQ(failed_fetch["backend_trace_error"], "read: [REDACTED]");
  EXPECT_EQ(failed_fetch.dump().find(kJwt), std::string::npos);
}

// A permessage-deflate message body as it travels on the wire (RFC 7692
// 7.2.1: sync-flushed DEFLATE without the trailing 00 00 ff ff).
namespace {
std::string deflate_message(const std::string& plain) {
  namespace zlib = boost::beast::zlib;
  zlib::deflate_stream ds;
  ds.reset(9, 15, 8, zlib::Strategy::normal);
  std::string out(plain.size() / 2 + 1024, '\0');
  zlib::z_params zs;
  zs.next_in = plain.data();
  zs.avail_in = plain.size();
  zs.next_out = out.data();
  zs.avail_out = out.size();
  boost::system::error_code ec;
  ds.write(zs, zlib::Flush::sync, ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(zs.avail_in, 0u);
  out.resize(zs.total_out);
  EXPECT_GE(out.size(), 4u);
  out.resize(out.size() - 4);
  return out;
}
}  // namespace

TEST(IncidentRecord, CompressedMessageIsInflatedOrSaidSo) {
  const std::string plain = R"({"type":"agent_error","detail":"tool failed"})";
  const std::string out = deflate_message(plain);
  auto s = summary_1011();
  s.last_upstream_message = out;
  s.last_upstream_message_compressed = true;
  auto m = last_message_json(s, 4096);
  EXPECT_EQ(m["compressed"], true);
  EXPECT_EQ(m["inflated"], true);
  EXPECT_EQ(m["text"], plain);

  s.last_upstream_message = std::string("\xff\xfe\xfd garbage", 11);
  m = last_message_json(s, 4096);
  EXPECT_EQ(m["compressed"], true);
  EXPECT_EQ(m["inflated"], false);
  EXPECT_EQ(m["text"], nullptr);
}

// A compression bomb in the last message: 64 MiB of one byte deflates to
// about 64 KiB; the proxy keeps only the first capture bytes of that, and
// inflating stops at the cap instead of growing with the bomb.
TEST(IncidentRecord, ACaptureCutInsideATokenShowsNoPartOfIt) {
  auto s = summary_1011();
  const std::string said = R"({"type":"error","auth":"Bearer )" + kJwt + "\"}";
  // Cut before the JWT's second dot, as the capture of a longer message may be.
  s.last_upstream_message = said.substr(0, said.find('.', said.find('.') + 1));
  s.last_upstream_message_truncated = true;
  auto m = last_message_json(s, 4096);
  EXPECT_EQ(m["text"], R"({"type":"error","auth":"Bearer )");
  EXPECT_EQ(m["truncated"], true);
}

TEST(IncidentRecord, CompressionBombInflatesOnlyUpToTheCap) {
  // Words, so the cut at the cap falls between two (a word reaching the
  // cut is dropped: it could be the start of a secret).
  std::string bomb_plain;
  bomb_plain.reserve(64u << 20);
  while (bomb_plain.size() < (64u << 20)) bomb_plain += "AAA ";
  std::string bomb = deflate_message(bomb_plain);
  ASSERT_LT(bomb.size(), 128u << 10);
  bomb.resize(4096);  // what a 4 KiB capture keeps of the compressed message

  auto s = summary_1011();
  s.last_upstream_message = bomb;
  s.last_upstream_message_compressed = true;
  for (std::size_t cap : {std::size_t{64}, std::size_t{4096}, std::size_t{1} << 20}) {
    auto m = last_message_json(s, cap);
    ASSERT_TRUE(m["text"].is_string()) << m.dump();
    const auto text = m["text"].get<std::string>();
    EXPECT_EQ(m["inflated"], true);
    EXPECT_EQ(m["truncated"], true) << "cap " << cap;
    EXPECT_EQ(text.size(), cap);
    EXPECT_EQ(text, bomb_plain.substr(0, cap));
  }
}

TEST(IncidentTime, FormatAndParse) {
  EXPECT_EQ(format_rfc3339(kEnd), "2024-05-01T12:00:00.123Z");
  EXPECT_EQ(parse_time("2024-05-01T12:00:00.123Z"), kEnd);
  EXPECT_EQ(parse_time("2024-05-01T14:00:00.123+02:00"), kEnd);
  EXPECT_EQ(parse_time("1714564800.123"), kEnd);
  EXPECT_EQ(parse_time("1714564800"), kEnd - std::chrono::milliseconds(123));
  EXPECT_FALSE(parse_time("yesterday"));
  EXPECT_FALSE(parse_time("2024-13-01T00:00:00Z"));
  EXPECT_FALSE(parse_time("2024-05-01T12:00:00"));
  EXPECT_FALSE(parse_time(""));
}

TEST(TraceUrl, TemplateExpansion) {
  EXPECT_EQ(expand_trace_url("http://b:9/debug/traces/{correlation_id}", "abc-1.2_3"),
            "http://b:9/debug/traces/abc-1.2_3");
  EXPECT_EQ(expand_trace_url("http://b/{correlation_id}?x={correlation_id}", "a b"),
            "http://b/a%20b?x=a%20b");
}

TEST(IncidentRecord, LeadsWithSummaryUserAndHint) {
  auto j = build_incident(summary_1011(), kEnd, ok(strict_trace()));
  EXPECT_EQ(j["user_id"], "staging-e2e-user-001");
  EXPECT_EQ(j["hint"], std::string(hint_for_stage("factory.create_manager")));
  const std::string text = dump_incident(j);
  EXPECT_TRUE(text.starts_with(R"({"summary":"1011 at factory.create_manager: context missing )"))
      << text.substr(0, 120);
  const auto user = text.find(R"(,"user_id":"staging-e2e-user-001","hint":")");
  ASSERT_NE(user, std::string::npos) << text.substr(0, 200);
  EXPECT_LT(user, text.find("\"backend_trace\""));
  // Nothing lost or changed: the same document, only the order differs.
  EXPECT_EQ(json::parse(text), j);
}

TEST(IncidentRecord, UserIsNullWithoutATrace) {
  auto j = build_incident(summary_1011(), kEnd, failed(FetchOutcome::timeout, "timeout"));
  EXPECT_TRUE(j["user_id"].is_null());
  EXPECT_EQ(j["hint"], std::string(hint_for_stage("unknown")));
  EXPECT_TRUE(dump_incident(j).starts_with(R"({"summary":"1011 from upstream)"));
}

TEST(IncidentHint, EveryBackendStageHasItsOwnHintAndUnknownNamesGetTheGenericOne) {
  const std::string generic(hint_for_stage("no.such_stage"));
  EXPECT_FALSE(generic.empty());
  std::set<std::string> seen;
  for (const char* stage :
       {"auth.verify_jwt", "context.create", "context.validate", "factory.create_manager",
        "session.established", "message.parse", "message.handle", "session.close", "unknown"}) {
    std::string h(hint_for_stage(stage));
    EXPECT_NE(h, generic) << stage;
    EXPECT_TRUE(seen.insert(h).second) << stage;
  }
  EXPECT_NE(std::string(hint_for_stage("context.validate")).find("--context-policy fallback"),
            std::string::npos);
}

TEST(TraceUrl, UpstreamEndpointPlaceholders) {
  const std::string tmpl =
      "http://{upstream_host}:9091/debug/traces/{correlation_id}?via={upstream_port}";
  EXPECT_EQ(expand_trace_url(tmpl, "cid-1", "10.0.0.7:8080"),
            "http://10.0.0.7:9091/debug/traces/cid-1?via=8080");
  // An IPv6 host keeps its brackets: it stands in a URL.
  EXPECT_EQ(expand_trace_url(tmpl, "cid-1", "[fd00::7]:8080"),
            "http://[fd00::7]:9091/debug/traces/cid-1?via=8080");
  EXPECT_EQ(
      expand_trace_url("http://{upstream_host}{upstream_host}/{correlation_id}", "c", "b.local:1"),
      "http://b.localb.local/c");
  // Unknown placeholders and lone braces stay as they are.
  EXPECT_EQ(expand_trace_url("http://b/{x}{/{correlation_id}", "c", "h:1"), "http://b/{x}{/c");
  // Without an endpoint the endpoint placeholders are empty.
  EXPECT_EQ(expand_trace_url("http://{upstream_host}:{upstream_port}/{correlation_id}", "c"),
            "http://:/c");
  EXPECT_EQ(
      expand_trace_url("http://{upstream_host}/{upstream_port}/{correlation_id}", "c", "[::1]"),
      "http://[::1]//c");
}
