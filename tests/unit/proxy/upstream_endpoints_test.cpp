#include "proxy/upstream_endpoints.hpp"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <map>
#include <set>

#include "proxy/upstream_connector.hpp"

namespace wsgate::proxy {
namespace {

using tcp = boost::asio::ip::tcp;
using namespace std::chrono_literals;

tcp::endpoint ep(const char* addr, unsigned short port) {
  return {boost::asio::ip::make_address(addr), port};
}

class EndpointSetTest : public ::testing::Test {
 protected:
  prometheus::Registry registry;
  UpstreamEndpointMetrics metrics{registry};

  std::shared_ptr<EndpointSet> make(std::vector<tcp::endpoint> eps, std::uint64_t seed = 1,
                                    EndpointSetOptions opts = {}) {
    auto set = std::make_shared<EndpointSet>("/", opts, metrics, seed);
    set->update(std::move(eps));
    return set;
  }

  double gauge(const std::string& name, const std::map<std::string, std::string>& labels) {
    for (const auto& family : registry.Collect()) {
      if (family.name != name) continue;
      for (const auto& m : family.metric) {
        std::map<std::string, std::string> have;
        for (const auto& l : m.label) have[l.name] = l.value;
        bool match = true;
        for (const auto& [k, v] : labels) match = match && have[k] == v;
        if (match)
          return family.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
      }
    }
    return -1;
  }
};

TEST_F(EndpointSetTest, PicksTheEndpointWithFewestSessions) {
  auto set = make({ep("10.0.0.1", 80), ep("10.0.0.2", 80), ep("10.0.0.3", 80)});
  std::vector<EndpointLease> held;
  for (int i = 0; i < 3; ++i) held.push_back(set->acquire({}));
  std::set<std::string> names;
  for (auto& l : held) names.insert(l.name());
  EXPECT_EQ(names.size(), 3u);  // one each before any gets a second
  // Release the one on .2: the next pick must be .2.
  for (auto& l : held)
    if (l.name() == "10.0.0.2:80") l.reset();
  auto next = set->acquire({});
  ASSERT_TRUE(next);
  EXPECT_EQ(next.name(), "10.0.0.2:80");
  EXPECT_EQ(gauge("wsgate_upstream_endpoint_sessions", {{"endpoint", "10.0.0.2:80"}}), 1);
}

TEST_F(EndpointSetTest, BreaksTiesAtRandom) {
  auto set = make({ep("10.0.0.1", 80), ep("10.0.0.2", 80), ep("10.0.0.3", 80)}, 42);
  std::map<std::string, int> first;
  for (int i = 0; i < 3000; ++i) {
    auto l = set->acquire({});  // released at once: every pick is a three-way tie
    ++first[l.name()];
  }
  ASSERT_EQ(first.size(), 3u);
  for (auto& [name, n] : first) {
    EXPECT_GT(n, 800) << name;
    EXPECT_LT(n, 1200) << name;
  }
}

TEST_F(EndpointSetTest, SkipsEndpointsAlreadyTried) {
  auto set = make({ep("10.0.0.1", 80), ep("10.0.0.2", 80)});
  auto l = set->acquire({ep("10.0.0.1", 80)});
  ASSERT_TRUE(l);
  EXPECT_EQ(l.name(), "10.0.0.2:80");
  EXPECT_FALSE(set->acquire({ep("10.0.0.1", 80), ep("10.0.0.2", 80)}));
}

TEST_F(EndpointSetTest, EjectsWithDoublingBackoffAndReturnsAfterAProbe) {
  EndpointSetOptions opts{1000ms, 4000ms, 64};
  auto set = make({ep("10.0.0.1", 80), ep("10.0.0.2", 80)}, 7, opts);
  const auto t0 = EndpointClock::now();
  auto bad = set->acquire({ep("10.0.0.2", 80)}, t0);
  set->report_failure(bad, t0);
  bad.reset();
  EXPECT_EQ(gauge("wsgate_upstream_endpoints", {{"state", "ejected"}}), 1);
  EXPECT_EQ(gauge("wsgate_upstream_endpoints", {{"state", "healthy"}}), 1);
  EXPECT_EQ(gauge("wsgate_upstream_endpoint_ejections_total", {{"route", "/"}}), 1);

  // Ejected for 1 s: every pick goes to .2, however loaded.
  std::vector<EndpointLease> held;
  for (int i = 0; i < 5; ++i) {
    held.push_back(set->acquire({}, t0 + 900ms));
    EXPECT_EQ(held.back().name(), "10.0.0.2:80");
  }
  // After 1 s, one probe goes to .1 (fewest sessions); while it runs .1 is
  // out of rotation for the others.
  auto probe = set->acquire({}, t0 + 1001ms);
  EXPECT_EQ(probe.name(), "10.0.0.1:80");
  EXPECT_EQ(set->acquire({}, t0 + 1002ms).name(), "10.0.0.2:80");
  // The probe fails: back-off doubles to 2 s.
  set->report_failure(probe, t0 + 1100ms);
  probe.reset();
  EXPECT_EQ(gauge("wsgate_upstream_endpoint_ejections_total", {{"route", "/"}}), 2);
  EXPECT_EQ(set->acquire({}, t0 + 3000ms).name(), "10.0.0.2:80");
  // Third failure: 4 s, the cap; a fourth stays at 4 s.
  probe = set->acquire({}, t0 + 3101ms);
  EXPECT_EQ(probe.name(), "10.0.0.1:80");
  set->report_failure(probe, t0 + 3200ms);
  probe.reset();
  EXPECT_EQ(set->acquire({}, t0 + 7100ms).name(), "10.0.0.2:80");
  probe = set->acquire({}, t0 + 7201ms);
  EXPECT_EQ(probe.name(), "10.0.0.1:80");
  set->report_failure(probe, t0 + 7300ms);
  probe.reset();
  EXPECT_EQ(set->acquire({}, t0 + 11299ms).name(), "10.0.0.2:80");
  // It answers: healthy again, and the back-off starts over.
  probe = set->acquire({}, t0 + 11301ms);
  EXPECT_EQ(probe.name(), "10.0.0.1:80");
  set->report_success(probe);
  EXPECT_EQ(gauge("wsgate_upstream_endpoints", {{"state", "healthy"}}), 2);
  EXPECT_EQ(set->acquire({}, t0 + 11302ms).name(), "10.0.0.1:80");  // fewest sessions
  set->report_failure(probe, t0 + 12000ms);
  probe.reset();
  EXPECT_EQ(set->acquire({}, t0 + 12999ms).name(), "10.0.0.2:80");
  EXPECT_EQ(set->acquire({}, t0 + 13001ms).name(), "10.0.0.1:80");  // 1 s again
}

TEST_F(EndpointSetTest, SessionsPickedBeforeAnEjectionDoNotExtendIt) {
  auto set = make({ep("10.0.0.1", 80)});
  const auto t0 = EndpointClock::now();
  std::vector<EndpointLease> held;
  for (int i = 0; i < 4; ++i) held.push_back(set->acquire({}, t0));
  for (auto& l : held) set->report_failure(l, t0);
  EXPECT_EQ(gauge("wsgate_upstream_endpoint_ejections_total", {{"route", "/"}}), 1);
}

TEST_F(EndpointSetTest, AllEjectedStillTriesTheLeastLoaded) {
  auto set = make({ep("10.0.0.1", 80), ep("10.0.0.2", 80)});
  const auto t0 = EndpointClock::now();
  auto a = set->acquire({ep("10.0.0.2", 80)}, t0);
  set->report_failure(a, t0);
  a.reset();
  auto b = set->acquire({ep("10.0.0.1", 80)}, t0);
  set->report_failure(b, t0);
  b.reset();
  EXPECT_EQ(gauge("wsgate_upstream_endpoints", {{"state", "ejected"}}), 2);
  EXPECT_TRUE(set->acquire({}, t0 + 10ms));
}

TEST_F(EndpointSetTest, ReResolutionKeepsLiveCounts) {
  auto set = make({ep("10.0.0.1", 80), ep("10.0.0.2", 80)});
  auto on1 = set->acquire({ep("10.0.0.2", 80)});
  auto on2a = set->acquire({ep("10.0.0.1", 80)});
  auto on2b = set->acquire({ep("10.0.0.1", 80)});
  // .1 leaves the resolution, .3 joins; .2 keeps its two sessions.
  set->update({ep("10.0.0.2", 80), ep("10.0.0.3", 80), ep("10.0.0.3", 80)});
  EXPECT_EQ(set->size(), 2u);
  std::map<std::string, std::size_t> counts;
  for (auto& v : set->snapshot()) counts[v.name] = v.sessions;
  EXPECT_EQ(counts["10.0.0.1:80"], 1u);  // still counted until its session ends
  EXPECT_EQ(counts["10.0.0.2:80"], 2u);
  EXPECT_EQ(counts["10.0.0.3:80"], 0u);
  // New sessions go to .3 (fewest), never to the removed .1.
  auto n1 = set->acquire({});
  auto n2 = set->acquire({});
  EXPECT_EQ(n1.name(), "10.0.0.3:80");
  EXPECT_EQ(n2.name(), "10.0.0.3:80");
  on1.reset();  // .1 holds no session now: it is gone, its series too
  EXPECT_EQ(set->snapshot().size(), 2u);
  EXPECT_EQ(gauge("wsgate_upstream_endpoint_sessions", {{"endpoint", "10.0.0.1:80"}}), -1);
  EXPECT_EQ(gauge("wsgate_upstream_endpoints", {{"state", "healthy"}}), 2);
}

TEST_F(EndpointSetTest, SessionSeriesAreCapped) {
  EndpointSetOptions opts{1000ms, 30000ms, 2};
  auto set = make({ep("10.0.0.1", 80), ep("10.0.0.2", 80), ep("10.0.0.3", 80), ep("10.0.0.4", 80)},
                  3, opts);
  std::vector<EndpointLease> held;
  for (int i = 0; i < 4; ++i) held.push_back(set->acquire({}));
  EXPECT_EQ(gauge("wsgate_upstream_endpoint_sessions", {{"endpoint", "other"}}), 2);
  std::size_t series = 0;
  for (const auto& f : registry.Collect())
    if (f.name == "wsgate_upstream_endpoint_sessions") series = f.metric.size();
  EXPECT_EQ(series, 3u);
}

TEST(UpgradeStatus, EjectsOnlyWhatSpeaksForTheReplica) {
  for (unsigned status : {101u, 400u, 401u, 403u, 404u, 426u, 429u, 500u, 501u, 505u})
    EXPECT_FALSE(upgrade_status_ejects(status)) << status;
  for (unsigned status : {200u, 204u, 301u, 302u, 502u, 503u, 504u})
    EXPECT_TRUE(upgrade_status_ejects(status)) << status;
}

TEST(EndpointName, BracketsV6) {
  EXPECT_EQ(endpoint_name(ep("::1", 8080)), "[::1]:8080");
  EXPECT_EQ(endpoint_name(ep("127.0.0.1", 1)), "127.0.0.1:1");
}

TEST_F(EndpointSetTest, ResolverMergesSourcesAndKeepsAFailedSourcesLastAddresses) {
  auto set = std::make_shared<EndpointSet>("/", EndpointSetOptions{}, metrics, 1);
  std::map<std::string, std::vector<tcp::endpoint>> dns{
      {"backend", {ep("10.0.0.1", 9000), ep("10.0.0.2", 9000)}}};
  bool dns_down = false;
  auto resolve = [&](const HostPort& where, boost::system::error_code& ec) {
    if (where.host == "10.9.9.9") return std::vector<tcp::endpoint>{ep("10.9.9.9", where.port)};
    if (dns_down) {
      ec = boost::asio::error::host_not_found_try_again;
      return std::vector<tcp::endpoint>{};
    }
    return dns[where.host];
  };
  auto& failures = metrics.resolve_failures.Add({{"route", "/"}});
  EndpointResolver resolver({{set, {{"backend", 9000}, {"10.9.9.9", 9001}}, &failures}}, 0ms,
                            resolve);
  EXPECT_TRUE(resolver.resolve_all());
  EXPECT_EQ(set->size(), 3u);
  auto held = set->acquire({ep("10.0.0.1", 9000), ep("10.9.9.9", 9001)});
  EXPECT_EQ(held.name(), "10.0.0.2:9000");

  dns["backend"] = {ep("10.0.0.2", 9000), ep("10.0.0.3", 9000)};
  EXPECT_TRUE(resolver.resolve_all());
  std::set<std::string> names;
  for (auto& v : set->snapshot())
    if (!v.removed) names.insert(v.name);
  EXPECT_EQ(names, (std::set<std::string>{"10.0.0.2:9000", "10.0.0.3:9000", "10.9.9.9:9001"}));
  for (auto& v : set->snapshot())
    if (v.name == "10.0.0.2:9000") {
      EXPECT_EQ(v.sessions, 1u);
    }

  dns_down = true;
  EXPECT_FALSE(resolver.resolve_all());
  EXPECT_EQ(set->size(), 3u);  // the last answer stands
  EXPECT_EQ(failures.Value(), 1);
}

}  // namespace
}  // namespace wsgate::proxy
