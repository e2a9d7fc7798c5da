#include "proxy/options.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

using namespace wsgate::proxy;

namespace {

struct Parsed {
  std::optional<ProxyOptions> options;
  int exit_code = -1;
  std::string stderr_text;
};

Parsed parse(std::vector<std::string> args) {
  args.insert(args.begin(), "wsgate");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  Parsed out;
  testing::internal::CaptureStderr();
  out.options = parse_options(static_cast<int>(argv.size()), argv.data(), out.exit_code);
  out.stderr_text = testing::internal::GetCapturedStderr();
  return out;
}

std::vector<std::string> with_upstream(std::vector<std::string> extra) {
  extra.insert(extra.begin(), {"--upstream", "ws://127.0.0.1:8080"});
  return extra;
}

}  // namespace

TEST(ProxyOptions, GoodCommandLineParses) {
  auto p = parse(
      with_upstream({"--upstream-trace-url", "http://127.0.0.1:9091/debug/traces/{correlation_id}",
                     "--incident-capacity", "10", "--idle-timeout", "0"}));
  ASSERT_TRUE(p.options) << p.stderr_text;
  EXPECT_EQ(p.options->config.incident_capacity, 10u);
  EXPECT_EQ(p.options->config.routes.at(0).trace_url_template,
            "http://127.0.0.1:9091/debug/traces/{correlation_id}");
}

TEST(ProxyOptions, UnsupportedOrOutOfRangeValuesExitTwoNamingTheKey) {
  const std::vector<std::vector<std::string>> bad = {
      {"--upstream-trace-url", "https://127.0.0.1:9091/debug/traces/{correlation_id}"},
      {"--upstream-trace-url", "ftp://127.0.0.1/{correlation_id}"},
      {"--upstream-trace-url", "http:///{correlation_id}"},
      {"--route", "/b=ws://127.0.0.1:1,https://h/{correlation_id}"},
      {"--incident-capacity", "-5"},
      {"--incident-capacity", "0"},
      {"--handshake-timeout-ms", "0"},
      {"--handshake-timeout-ms", "-1"},
      {"--tls-handshake-timeout-ms", "-1"},
      {"--upstream-connect-timeout-ms", "0"},
      {"--close-timeout-ms", "-5"},
      {"--trace-fetch-timeout-ms", "0"},
      {"--idle-timeout", "-1"},
      {"--drain-timeout", "-1"},
      {"--threads", "0"},
      {"--listen", "127.0.0.1:70000"},
      {"--admin", "127.0.0.1:-1"},
      {"--max-connections", "0"},
      {"--max-message-bytes", "0"},
      {"--max-header-bytes", "-1"},
      {"--log-format", "xml"},
      {"--log-level", "loud"},
      {"--tap-mode", "strict"},
  };
  for (const auto& args : bad) {
    auto p = parse(with_upstream(args));
    EXPECT_FALSE(p.options) << args[0] << " " << args[1];
    EXPECT_EQ(p.exit_code, 2) << args[0] << " " << args[1];
    EXPECT_NE(p.stderr_text.find(args[0]), std::string::npos)
        << args[0] << " " << args[1] << ": " << p.stderr_text;
  }
}

TEST(ProxyOptions, VersionExitsZero) {
  testing::internal::CaptureStdout();
  auto p = parse({"--version"});
  std::string out = testing::internal::GetCapturedStdout();
  EXPECT_FALSE(p.options);
  EXPECT_EQ(p.exit_code, 0);
  EXPECT_EQ(out.rfind("wsgate ", 0), 0u) << out;
}

TEST(ProxyOptions, ThreadsDefaultToAutoAndTakeACount) {
  auto by_default = parse(with_upstream({}));
  ASSERT_TRUE(by_default.options) << by_default.stderr_text;
  EXPECT_EQ(by_default.options->config.threads, 0u);  // resolved from the CPUs at start
  auto automatic = parse(with_upstream({"--threads", "auto"}));
  ASSERT_TRUE(automatic.options) << automatic.stderr_text;
  EXPECT_EQ(automatic.options->config.threads, 0u);
  auto three = parse(with_upstream({"--threads", "3"}));
  ASSERT_TRUE(three.options) << three.stderr_text;
  EXPECT_EQ(three.options->config.threads, 3u);
  for (const char* bad : {"0", "257", "two", "2x", "-1"}) {
    auto p = parse(with_upstream({"--threads", bad}));
    EXPECT_FALSE(p.options) << bad;
    EXPECT_EQ(p.exit_code, 2) << bad;
  }
}

TEST(ProxyOptions, TraceLocationAllowTakesIpv4AndIpv6NetworksFromFlagsAndYaml) {
  auto p = parse(with_upstream({"--trace-location-allow", "10.0.0.0/8", "--trace-location-allow",
                                "fd00::/8", "--trace-location-allow", "127.0.0.1"}));
  ASSERT_TRUE(p.options) << p.stderr_text;
  const auto& allow = p.options->config.trace_location_allow;
  ASSERT_EQ(allow.size(), 3u);
  EXPECT_EQ(allow[0].to_string(), "10.0.0.0/8");
  EXPECT_EQ(allow[1].to_string(), "fd00::/8");
  EXPECT_EQ(allow[2].to_string(), "127.0.0.1/32");
  EXPECT_TRUE(parse(with_upstream({})).options->config.trace_location_allow.empty());
  EXPECT_EQ(parse(with_upstream({})).options->config.trace_location_max_bytes, 2048u);
  EXPECT_EQ(parse(with_upstream({"--trace-location-max-bytes", "4096"}))
                .options->config.trace_location_max_bytes,
            4096u);

  char name[] = "/tmp/wsgate-proxy-opt-XXXXXX";
  int fd = mkstemp(name);
  ASSERT_GE(fd, 0);
  std::FILE* f = fdopen(fd, "w");
  std::fputs("upstream: ws://127.0.0.1:8080\ntrace-location-allow: [10.0.0.0/8, \"fd00::/8\"]\n",
             f);
  std::fclose(f);
  auto y = parse({"--config", name});
  std::remove(name);
  ASSERT_TRUE(y.options) << y.stderr_text;
  ASSERT_EQ(y.options->config.trace_location_allow.size(), 2u);
  EXPECT_EQ(y.options->config.trace_location_allow[1].to_string(), "fd00::/8");
}

TEST(ProxyOptions, BadTraceLocationAllowOrPlaceholderExitsTwoSayingWhy) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--trace-location-allow", "10.1.0.0/8"}, "host bits set (the network is 10.0.0.0/8)"},
      {{"--trace-location-allow", "10.0.0.0/33"}, "prefix length must be 0-32"},
      {{"--trace-location-allow", "backend"}, "not an IPv4 or IPv6 network"},
      {{"--upstream-trace-url", "http://{upstream_hots}:1/{correlation_id}"},
       "unknown placeholder"},
      {{"--route", "/b=ws://127.0.0.1:1,http://h/{cid}/{correlation_id}"}, "unknown placeholder"},
      {{"--trace-location-max-bytes", "10"}, "not in range"},
  };
  for (const auto& [args, why] : bad) {
    auto p = parse(with_upstream(args));
    EXPECT_FALSE(p.options) << args[1];
    EXPECT_EQ(p.exit_code, 2) << args[1];
    EXPECT_NE(p.stderr_text.find(args[0]), std::string::npos) << p.stderr_text;
    EXPECT_NE(p.stderr_text.find(why), std::string::npos) << p.stderr_text;
  }
  auto ok = parse(with_upstream(
      {"--upstream-trace-url",
       "http://{upstream_host}:9091/debug/traces/{correlation_id}?p={upstream_port}"}));
  EXPECT_TRUE(ok.options) << ok.stderr_text;
}

namespace {

std::string write_config(const std::string& name, const std::string& yaml) {
  std::string path = testing::TempDir() + name;
  std::FILE* f = std::fopen(path.c_str(), "w");
  std::fputs(yaml.c_str(), f);
  std::fclose(f);
  return path;
}

}  // namespace

TEST(ProxyOptions, UpstreamEndpointSetFlagsAndYamlAgree) {
  auto cli = parse(with_upstream({"--upstream-endpoint", "10.0.0.5:8080", "--upstream-endpoint",
                                  "[::1]:8081", "--upstream-resolve-interval", "0",
                                  "--upstream-eject-backoff-ms", "200",
                                  "--upstream-eject-backoff-max-ms", "4000",
                                  "--upstream-connect-attempts", "2"}));
  auto file = write_config("endpoints.yaml",
                           "upstream: ws://127.0.0.1:8080\n"
                           "upstream-endpoint: [10.0.0.5:8080, \"[::1]:8081\"]\n"
                           "upstream_resolve_interval: 0\n"
                           "upstream-eject-backoff-ms: 200\n"
                           "upstream-eject-backoff-max-ms: 4000\n"
                           "upstream-connect-attempts: 2\n");
  auto yaml = parse({"--config", file});
  for (auto* p : {&cli, &yaml}) {
    ASSERT_TRUE(p->options) << p->stderr_text;
    const auto& c = p->options->config;
    const auto& eps = c.routes.at(0).endpoints;
    ASSERT_EQ(eps.size(), 2u);
    EXPECT_EQ(eps[0].to_string(), "10.0.0.5:8080");
    EXPECT_EQ(eps[1].to_string(), "[::1]:8081");
    EXPECT_EQ(c.upstream_resolve_interval.count(), 0);
    EXPECT_EQ(c.upstream_eject_backoff.count(), 200);
    EXPECT_EQ(c.upstream_eject_backoff_max.count(), 4000);
    EXPECT_EQ(c.upstream_connect_attempts, 2u);
  }
}

TEST(ProxyOptions, UpstreamEndpointSetDefaults) {
  auto p = parse(with_upstream({}));
  ASSERT_TRUE(p.options) << p.stderr_text;
  const auto& c = p.options->config;
  EXPECT_TRUE(c.routes.at(0).endpoints.empty());
  EXPECT_EQ(c.upstream_resolve_interval.count(), 5000);
  EXPECT_EQ(c.upstream_eject_backoff.count(), 1000);
  EXPECT_EQ(c.upstream_eject_backoff_max.count(), 30000);
  EXPECT_EQ(c.upstream_connect_attempts, 3u);
  EXPECT_EQ(c.upstream_endpoint_metrics_max, 64u);
}

TEST(ProxyOptions, BadUpstreamEndpointSetsExitTwo) {
  const std::vector<std::vector<std::string>> bad = {
      {"--upstream-endpoint", "10.0.0.5:8080"},  // no --upstream
      with_upstream({"--upstream-endpoint", "10.0.0.5"}),
      with_upstream({"--upstream-endpoint", "10.0.0.5:0"}),
      with_upstream({"--upstream-eject-backoff-ms", "5000", "--upstream-eject-backoff-max-ms",
                     "1000"}),
      with_upstream({"--upstream-connect-attempts", "0"}),
      with_upstream({"--upstream-resolve-interval", "-1"}),
  };
  for (const auto& args : bad) {
    auto p = parse(args);
    EXPECT_FALSE(p.options) << args.back();
    EXPECT_EQ(p.exit_code, 2) << args.back();
  }
}

TEST(ProxyOptions, MemoryTrimIntervalDefaultsToOneSecondAndZeroTurnsItOff) {
  auto by_default = parse(with_upstream({}));
  ASSERT_TRUE(by_default.options) << by_default.stderr_text;
  EXPECT_EQ(by_default.options->config.memory_trim_interval, std::chrono::milliseconds(1000));
  auto off = parse(with_upstream({"--memory-trim-interval", "0"}));
  ASSERT_TRUE(off.options) << off.stderr_text;
  EXPECT_EQ(off.options->config.memory_trim_interval, std::chrono::milliseconds(0));
  auto half = parse(with_upstream({"--memory-trim-interval", "0.5"}));
  ASSERT_TRUE(half.options) << half.stderr_text;
  EXPECT_EQ(half.options->config.memory_trim_interval, std::chrono::milliseconds(500));
  auto tiny = parse(with_upstream({"--memory-trim-interval", "0.0001"}));  // on, not off
  ASSERT_TRUE(tiny.options) << tiny.stderr_text;
  EXPECT_EQ(tiny.options->config.memory_trim_interval, std::chrono::milliseconds(1));
  for (const char* bad : {"-1", "3601", "often"}) {
    auto p = parse(with_upstream({"--memory-trim-interval", bad}));
    EXPECT_FALSE(p.options) << bad;
    EXPECT_EQ(p.exit_code, 2) << bad;
  }
}
