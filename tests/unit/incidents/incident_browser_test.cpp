// The incident browser's pure parts (escaping, grouping) and its pages
// through the admin router: escaped client-controlled strings, headers,
// token rule, filters.
#include "proxy/incidents/incident_browser.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "proxy/incidents/incidents_api.hpp"

using namespace wsgate;
using namespace wsgate::proxy::incidents;
using nlohmann::json;

namespace {

const std::string kScript = "<script>document.title='pwned'</script>";
const std::string kImg = "\"><img src=x onerror=alert(1)>";

json record(const std::string& cid, const std::string& time, const std::string& stage,
            const std::string& summary) {
  return {
      {"correlation_id", cid},
      {"time", time},
      {"client", "127.0.0.1:5000"},
      {"route", "/"},
      {"upstream", "ws://127.0.0.1:9000"},
      {"close",
       {{"code", 1011}, {"reason", "Factory SSOT validation failed"}, {"initiator", "upstream"}}},
      {"close_handshake_complete", true},
      {"failing_stage", stage},
      {"summary", summary},
      {"user_id", "staging-e2e-user-001"},
      {"missing_attributes", json::array({"thread_id"})},
      {"backend_trace",
       {{"stages",
         json::array(
             {{{"stage", "auth.verify_jwt"}, {"outcome", "ok"}, {"t_us", 0}, {"detail", "ok"}},
              {{"stage", "context.create"}, {"outcome", "ok"}, {"t_us", 100}, {"detail", ""}},
              {{"stage", "context.validate"},
               {"outcome", "error"},
               {"t_us", 300},
               {"detail", "missing: thread_id"},
               {"missing", json::array({{{"attribute", "thread_id"},
                                         {"source", "JWT claim thread_id, else header X-Thread-ID"},
                                         {"found", "absent"}}})}},
              {{"stage", "session.close"},
               {"outcome", "error"},
               {"t_us", 900},
               {"detail", "code=1011"}}})}}}};
}

AdminRequest get(std::string path, std::string query = "") {
  AdminRequest r;
  r.method = "GET";
  r.path = std::move(path);
  r.query = std::move(query);
  return r;
}

std::string header(const AdminResponse& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return {};
}

std::size_t count(const std::string& text, std::string_view what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

}  // namespace

TEST(HtmlEscape, EscapesEveryMarkupCharacter) {
  EXPECT_EQ(html_escape(kScript), "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;");
  EXPECT_EQ(html_escape(kImg), "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;");
  EXPECT_EQ(html_escape("a & b"), "a &amp; b");
  EXPECT_EQ(html_escape("plain-text_01"), "plain-text_01");
  EXPECT_EQ(html_escape(""), "");
}

TEST(UrlEncode, KeepsOnlyUnreservedBytes) {
  EXPECT_EQ(url_encode("cid-01._~"), "cid-01._~");
  EXPECT_EQ(url_encode("a/b?c=d&e f\"<"), "a%2Fb%3Fc%3Dd%26e%20f%22%3C");
  EXPECT_EQ(url_encode("\xff"), "%FF");
}

TEST(GroupIncidents, AStormIsOneRowWithItsCountAndSpan) {
  std::vector<IncidentRow> rows;  // newest first, as the store returns them
  rows.push_back(
      {"c7", "2024-05-01T12:00:07.000Z", 1011, "message.handle", "1011 at handle", "/", ""});
  for (int i = 6; i >= 2; --i)
    rows.push_back({"c" + std::to_string(i), "2024-05-01T12:00:0" + std::to_string(i) + ".000Z",
                    1011, "context.validate", "1011 at context.validate: missing thread_id", "/",
                    ""});
  rows.push_back({"c1", "2024-05-01T12:00:01.000Z", 1011, "", "1011 from upstream", "/", ""});
  auto g = group_incidents(rows);
  ASSERT_EQ(g.by_summary.size(), 3u);
  EXPECT_EQ(g.by_summary[0].key, "1011 at context.validate: missing thread_id");
  EXPECT_EQ(g.by_summary[0].count, 5u);
  EXPECT_EQ(g.by_summary[0].first, "2024-05-01T12:00:02.000Z");
  EXPECT_EQ(g.by_summary[0].last, "2024-05-01T12:00:06.000Z");
  EXPECT_EQ(g.by_summary[0].newest_id, "c6");
  EXPECT_EQ(g.by_summary[0].stage, "context.validate");
  // Equal counts: the most recent group first.
  EXPECT_EQ(g.by_summary[1].newest_id, "c7");
  EXPECT_EQ(g.by_summary[2].newest_id, "c1");
  ASSERT_EQ(g.by_stage.size(), 3u);
  EXPECT_EQ(g.by_stage[0].key, "context.validate");
  EXPECT_EQ(g.by_stage[0].count, 5u);
  EXPECT_EQ(g.by_stage[2].key, "unknown");  // no failing stage recorded
  EXPECT_TRUE(group_incidents({}).by_stage.empty());
}

TEST(GroupIncidents, RowComesFromTheRecord) {
  auto r = incident_row(record("cid-1", "2024-05-01T12:00:00.000Z", "context.validate", "s"));
  EXPECT_EQ(r.correlation_id, "cid-1");
  EXPECT_EQ(r.code, 1011);
  EXPECT_EQ(r.stage, "context.validate");
  EXPECT_EQ(r.upstream, "ws://127.0.0.1:9000");
  auto empty = incident_row(json::array());
  EXPECT_EQ(empty.code, 0);
  EXPECT_TRUE(empty.correlation_id.empty());
}

class BrowserPages : public ::testing::Test {
 protected:
  void SetUp() override { register_incident_routes(router, store); }
  IncidentStore store{{.capacity = 100}};
  AdminRouter router;
};

TEST_F(BrowserPages, IncidentPageEscapesClientControlledStrings) {
  auto r = record("cid-xss-0001", "2024-05-01T12:00:00.000Z", "context.validate", kScript);
  r["close"]["reason"] = kScript;
  r["path"] = "/ws/" + kImg;
  r["user_id"] = kImg;
  r["backend_trace"]["stages"][1]["detail"] = kScript;
  r["backend_trace"]["stages"][2]["missing"][0]["attribute"] = kImg;
  r["frames"] = json::array({{{"t_ms", 1},
                              {"direction", "upstream_to_client"},
                              {"opcode", 8},
                              {"fin", true},
                              {"rsv", 0},
                              {"length", 40},
                              {"masked", false},
                              {"close_code", 1011},
                              {"close_reason", kScript}},
                             {{"t_ms", 2},
                              {"direction", "client_to_upstream"},
                              {"opcode", 1},
                              {"fin", true},
                              {"rsv", 0},
                              {"length", 400},
                              {"masked", true},
                              {"text", "say " + kImg},
                              {"text_cut", true}}});
  ASSERT_TRUE(store.add(r));
  auto res = router.dispatch(get("/ui/incidents/cid-xss-0001"));
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(res.body.find("<script"), std::string::npos);
  EXPECT_EQ(res.body.find("<img"), std::string::npos);
  EXPECT_EQ(res.body.find(kImg), std::string::npos);
  EXPECT_EQ(res.body.find(kScript), std::string::npos);
  EXPECT_GE(count(res.body, "&lt;script&gt;document.title=&#39;pwned&#39;"), 4u);
  EXPECT_NE(res.body.find("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"), std::string::npos);
  const auto csp = header(res, "Content-Security-Policy");
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos);
  EXPECT_EQ(csp.find("script-src"), std::string::npos);  // none: default-src forbids it
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos);
  EXPECT_EQ(header(res, "X-Content-Type-Options"), "nosniff");
  // The flight recorder array is drawn: one row per frame, a text prefix
  // escaped and marked as cut.
  EXPECT_EQ(count(res.body, "<tr class=\"frame\""), 2u);
  EXPECT_NE(res.body.find("say &quot;&gt;&lt;img src=x onerror=alert(1)&gt;\u2026"),
            std::string::npos);
}

TEST_F(BrowserPages, IncidentPageMarksTheFailingStageAndNamesTheSource) {
  ASSERT_TRUE(store.add(record("cid-page-0001", "2024-05-01T12:00:00.000Z", "context.validate",
                               "1011 at context.validate: context missing thread_id")));
  auto res = router.dispatch(get("/ui/incidents/cid-page-0001"));
  ASSERT_EQ(res.status, 200u);
  const auto& b = res.body;
  EXPECT_EQ(count(b, "<tr class=\"stage"), 4u);
  EXPECT_EQ(count(b, "<tr class=\"stage failing\""), 1u);
  EXPECT_NE(b.find("<tr class=\"stage failing\" data-stage=\"context.validate\""),
            std::string::npos);
  EXPECT_NE(b.find("data-attribute=\"thread_id\""), std::string::npos);
  EXPECT_NE(b.find("JWT claim thread_id, else header X-Thread-ID"), std::string::npos);
  EXPECT_LT(b.find("id=\"summary\""), b.find("id=\"who\""));
  EXPECT_NE(b.find("href=\"../../incidents/cid-page-0001\""), std::string::npos);
  // No flight recorder array: no frames section.
  EXPECT_EQ(b.find("id=\"frames\""), std::string::npos);
  EXPECT_EQ(router.dispatch(get("/ui/incidents/cid-none-0001")).status, 404u);
}

TEST_F(BrowserPages, ListGroupsAStormAndHonoursTheAlertFilters) {
  for (int i = 0; i < 6; ++i)
    ASSERT_TRUE(store.add(
        record("cid-storm-" + std::to_string(i), "2024-05-01T12:00:0" + std::to_string(i) + ".000Z",
               "context.validate", "1011 at context.validate: missing thread_id")));
  ASSERT_TRUE(store.add(record("cid-old-0001", "2024-04-01T12:00:00.000Z", "message.handle",
                               "1011 at message.handle: boom")));
  // The link the 1011 alert carries: code, stage, since in unix seconds.
  auto res = router.dispatch(get("/ui/", "code=1011&stage=context.validate&since=1714564800"));
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(count(res.body, "<tr class=\"group-summary\""), 1u);
  EXPECT_NE(res.body.find("<td class=\"num count\">6</td>"), std::string::npos);
  EXPECT_EQ(count(res.body, "<tr class=\"incident\""), 6u);
  EXPECT_EQ(res.body.find("cid-old-0001"), std::string::npos);
  EXPECT_NE(res.body.find("href=\"../incidents?code=1011&amp;stage=context.validate&amp;since="
                          "1714564800\""),
            std::string::npos);
  // limit bounds the table, not the counts.
  res = router.dispatch(get("/ui/", "limit=2"));
  EXPECT_EQ(count(res.body, "<tr class=\"incident\""), 2u);
  EXPECT_NE(res.body.find("<td class=\"num count\">6</td>"), std::string::npos);
  res = router.dispatch(get("/ui/", "until=2024-04-30T00:00:00Z"));
  EXPECT_EQ(count(res.body, "<tr class=\"incident\""), 1u);
  EXPECT_EQ(router.dispatch(get("/ui/", "since=yesterday")).status, 400u);
  auto css = router.dispatch(get("/ui/style.css"));
  EXPECT_EQ(css.status, 200u);
  EXPECT_EQ(css.content_type, "text/css; charset=utf-8");
}

TEST_F(BrowserPages, BarePathRedirectsToTheList) {
  auto res = router.dispatch(get("/ui"));
  EXPECT_EQ(res.status, 308u);
  EXPECT_EQ(header(res, "Location"), "/ui/");
}

TEST_F(BrowserPages, NeedsTheTokenWhenOneIsSet) {
  router.require_token("s3cret-admin-token", TokenScope::users);
  EXPECT_EQ(router.dispatch(get("/ui/")).status, 401u);
  EXPECT_EQ(router.dispatch(get("/ui/incidents/x")).status, 401u);
  EXPECT_EQ(router.dispatch(get("/ui/style.css")).status, 401u);
  auto req = get("/ui/");
  req.authorization = "Bearer s3cret-admin-token";
  EXPECT_EQ(router.dispatch(req).status, 200u);
}
