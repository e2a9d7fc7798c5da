#include "proxy/trace_location.hpp"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "proxy/cidr.hpp"
#include "proxy/handshake.hpp"

using namespace wsgate::proxy;
namespace ip = boost::asio::ip;

namespace {

constexpr std::size_t kMax = 2048;

Cidr cidr(const std::string& text) {
  std::string error;
  auto c = parse_cidr(text, error);
  EXPECT_TRUE(c) << text << ": " << error;
  return c.value_or(Cidr{});
}

std::string cidr_error(const std::string& text) {
  std::string error;
  EXPECT_FALSE(parse_cidr(text, error)) << text;
  return error;
}

bool contains(const std::string& network, const std::string& address) {
  return cidr_contains(cidr(network), ip::make_address(address));
}

ResponseHeader announcing(std::initializer_list<std::string> urls) {
  ResponseHeader r;
  r.result(http::status::switching_protocols);
  for (const auto& u : urls) r.insert(kTraceLocationHeader, u);
  return r;
}

}  // namespace

TEST(Cidr, ParsesIpv4AndIpv6NetworksAndBareHosts) {
  EXPECT_EQ(cidr("10.0.0.0/8").to_string(), "10.0.0.0/8");
  EXPECT_EQ(cidr("127.0.0.1").to_string(), "127.0.0.1/32");
  EXPECT_EQ(cidr("fd00::/8").to_string(), "fd00::/8");
  EXPECT_EQ(cidr("::1").to_string(), "::1/128");
  EXPECT_EQ(cidr("0.0.0.0/0").to_string(), "0.0.0.0/0");
  EXPECT_EQ(cidr("::ffff:10.0.0.0/8").to_string(), "10.0.0.0/8");
}

TEST(Cidr, RefusesWhatItCannotMeanClearly) {
  EXPECT_NE(cidr_error("10.1.0.0/8").find("host bits set (the network is 10.0.0.0/8)"),
            std::string::npos);
  EXPECT_NE(cidr_error("fd00::1/64").find("fd00::/64"), std::string::npos);
  EXPECT_NE(cidr_error("10.0.0.0/33").find("0-32"), std::string::npos);
  EXPECT_NE(cidr_error("fd00::/129").find("0-128"), std::string::npos);
  EXPECT_NE(cidr_error("10.0.0.0/").find("prefix length"), std::string::npos);
  EXPECT_NE(cidr_error("10.0.0.0/8x").find("prefix length"), std::string::npos);
  EXPECT_NE(cidr_error("10.0.0.0/-1").find("prefix length"), std::string::npos);
  EXPECT_NE(cidr_error("backend.local").find("not an IPv4 or IPv6 network"), std::string::npos);
  EXPECT_NE(cidr_error("").find("not an IPv4 or IPv6 network"), std::string::npos);
}

TEST(Cidr, MatchesByPrefixBits) {
  EXPECT_TRUE(contains("10.0.0.0/8", "10.255.1.2"));
  EXPECT_FALSE(contains("10.0.0.0/8", "11.0.0.1"));
  EXPECT_TRUE(contains("192.168.4.0/22", "192.168.7.255"));
  EXPECT_FALSE(contains("192.168.4.0/22", "192.168.8.0"));
  EXPECT_TRUE(contains("127.0.0.1", "127.0.0.1"));
  EXPECT_FALSE(contains("127.0.0.1", "127.0.0.2"));
  EXPECT_TRUE(contains("0.0.0.0/0", "8.8.8.8"));
  EXPECT_TRUE(contains("fd00::/8", "fd12:3456::1"));
  EXPECT_FALSE(contains("fd00::/8", "fe80::1"));
  EXPECT_TRUE(contains("2001:db8::/33", "2001:db8:7fff::1"));
  EXPECT_FALSE(contains("2001:db8::/33", "2001:db8:8000::1"));
  // Families do not mix, except an IPv4-mapped IPv6 peer against IPv4 networks.
  EXPECT_FALSE(contains("::/0", "10.0.0.1"));
  EXPECT_FALSE(contains("0.0.0.0/0", "::1"));
  EXPECT_TRUE(contains("10.0.0.0/8", "::ffff:10.1.2.3"));
  EXPECT_FALSE(contains("10.0.0.0/8", "::ffff:11.1.2.3"));
  std::vector<Cidr> allow{cidr("10.0.0.0/8"), cidr("fd00::/8")};
  EXPECT_TRUE(any_contains(allow, ip::make_address("fd00::5")));
  EXPECT_FALSE(any_contains(allow, ip::make_address("127.0.0.1")));
  EXPECT_FALSE(any_contains({}, ip::make_address("127.0.0.1")));
}

TEST(TraceLocation, EndpointStringBracketsIpv6) {
  EXPECT_EQ(endpoint_string({ip::make_address("10.0.0.7"), 8080}), "10.0.0.7:8080");
  EXPECT_EQ(endpoint_string({ip::make_address("fd00::7"), 8080}), "[fd00::7]:8080");
}

TEST(TraceLocation, HonouredOnlyFromAllowedPeersAndUsableUrls) {
  const std::vector<Cidr> allow{cidr("10.0.0.0/8")};
  const auto peer = ip::make_address("10.1.2.3");
  const std::string url = "http://10.1.2.3:9091/debug/traces/cid-00000001";

  auto none = judge_trace_location(announcing({}), peer, allow, kMax);
  EXPECT_TRUE(none.url.empty());
  EXPECT_FALSE(none.rejected);

  auto ok = judge_trace_location(announcing({url}), peer, allow, kMax);
  EXPECT_EQ(ok.url, url);
  EXPECT_FALSE(ok.rejected);

  auto outside =
      judge_trace_location(announcing({url}), ip::make_address("192.168.0.1"), allow, kMax);
  EXPECT_TRUE(outside.url.empty());
  EXPECT_EQ(outside.rejected, TraceLocationRejection::not_allowed);
  auto no_list = judge_trace_location(announcing({url}), peer, {}, kMax);
  EXPECT_EQ(no_list.rejected, TraceLocationRejection::not_allowed);

  for (const std::string& bad :
       {std::string("https://10.1.2.3/debug/traces/x"), std::string("ftp://10.1.2.3/x"),
        std::string("http://user:pw@10.1.2.3/x"), std::string("http:///x"),
        std::string("http://10.1.2.3:port/x"), std::string("http://10.1.2.3/a b"),
        "http://10.1.2.3/" + std::string(kMax, 'a')}) {
    auto v = judge_trace_location(announcing({bad}), peer, allow, kMax);
    EXPECT_TRUE(v.url.empty()) << bad;
    EXPECT_EQ(v.rejected, TraceLocationRejection::invalid_url) << bad;
    EXPECT_FALSE(v.why.empty());
  }
  auto twice = judge_trace_location(announcing({url, url}), peer, allow, kMax);
  EXPECT_EQ(twice.rejected, TraceLocationRejection::invalid_url);
  // Up to the cap is fine.
  std::string longest = "http://10.1.2.3/";
  longest += std::string(kMax - longest.size(), 'a');
  EXPECT_EQ(judge_trace_location(announcing({longest}), peer, allow, kMax).url, longest);
}

TEST(TraceLocation, NoteUpstreamRecordsEndpointAdoptsAndCounts) {
  prometheus::Registry registry;
  TraceLocationMetrics metrics(registry);
  ProxyConfig config;
  config.trace_location_allow = {cidr("fd00::/8")};
  config.trace_location_max_bytes = 64;
  const std::string url = "http://[fd00::7]:9091/debug/traces/cid-00000001";

  SessionSummary s;
  note_upstream(announcing({url}), {ip::make_address("fd00::7"), 8080}, config, metrics, s);
  EXPECT_EQ(s.upstream_endpoint, "[fd00::7]:8080");
  EXPECT_EQ(s.trace_location, url);
  EXPECT_EQ(metrics.accepted.Value(), 1);

  SessionSummary denied;
  note_upstream(announcing({url}), {ip::make_address("10.0.0.7"), 8080}, config, metrics, denied);
  EXPECT_EQ(denied.upstream_endpoint, "10.0.0.7:8080");
  EXPECT_TRUE(denied.trace_location.empty());
  EXPECT_EQ(metrics.rejected(TraceLocationRejection::not_allowed).Value(), 1);

  SessionSummary bad;
  note_upstream(announcing({"https://x/y"}), {ip::make_address("fd00::8"), 1}, config, metrics,
                bad);
  EXPECT_TRUE(bad.trace_location.empty());
  EXPECT_EQ(metrics.rejected(TraceLocationRejection::invalid_url).Value(), 1);

  // --trace-location-max-bytes applies.
  SessionSummary too_long;
  note_upstream(announcing({url + std::string(64 - url.size() + 1, 'a')}),
                {ip::make_address("fd00::7"), 1}, config, metrics, too_long);
  EXPECT_TRUE(too_long.trace_location.empty());
  EXPECT_EQ(metrics.rejected(TraceLocationRejection::invalid_url).Value(), 2);
  SessionSummary at_cap;
  note_upstream(announcing({url + std::string(64 - url.size(), 'a')}),
                {ip::make_address("fd00::7"), 1}, config, metrics, at_cap);
  EXPECT_EQ(at_cap.trace_location.size(), 64u);
  EXPECT_EQ(metrics.accepted.Value(), 2);

  SessionSummary quiet;
  note_upstream(announcing({}), {ip::make_address("fd00::8"), 1}, config, metrics, quiet);
  EXPECT_EQ(metrics.accepted.Value(), 2);
  EXPECT_EQ(metrics.rejected(TraceLocationRejection::not_allowed).Value(), 1);
}

TEST(TraceLocation, ClientResponseNeverCarriesTheHeader) {
  auto up = announcing({"http://10.0.0.1/debug/traces/x"});
  up.set(http::field::upgrade, "websocket");
  up.set(http::field::connection, "Upgrade");
  up.set("wsgate-trace-location", "http://10.0.0.1/other");
  auto out = build_client_response(up, "cid-00000001");
  EXPECT_EQ(out.count(kTraceLocationHeader), 0u);
  EXPECT_EQ(out["X-Correlation-ID"], "cid-00000001");
}
