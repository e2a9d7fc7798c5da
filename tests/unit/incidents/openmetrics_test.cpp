// The OpenMetrics serializer over prometheus-cpp's Collect(), with exemplars.
#include "common/openmetrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

using namespace wsgate;
namespace pm = prometheus;

namespace {
const auto kT = std::chrono::system_clock::time_point(std::chrono::milliseconds(1714564800123));
}

TEST(OpenMetrics, CountersGaugesHistogramsAndEof) {
  pm::Registry r;
  auto& closes = pm::BuildCounter().Name("wsgate_closes_total").Help("Ended sessions").Register(r);
  closes.Add({{"code", "1011"}, {"initiator", "upstream"}}).Increment(3);
  closes.Add({{"code", "1000"}, {"initiator", "client"}}).Increment();
  pm::BuildGauge().Name("wsgate_connections_active").Help("Live \"sessions\"\nnow").Register(r).Add({}).Set(2);
  pm::BuildHistogram().Name("wsgate_ping_rtt_seconds").Help("RTT").Register(r)
      .Add({}, pm::Histogram::BucketBoundaries{0.5, 1}).Observe(0.25);

  ExemplarStore ex;
  ex.record("wsgate_closes_total", {{"initiator", "upstream"}, {"code", "1011"}},
            Exemplar{{{"trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"}}, 1, kT});
  const std::string text = render_openmetrics(r.Collect(), &ex);
  EXPECT_EQ(text,
            "# TYPE wsgate_closes counter\n"
            "# HELP wsgate_closes Ended sessions\n"
            "wsgate_closes_total{code=\"1000\",initiator=\"client\"} 1\n"
            "wsgate_closes_total{code=\"1011\",initiator=\"upstream\"} 3 # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"} 1 1714564800.123\n"
            "# TYPE wsgate_connections_active gauge\n"
            "# HELP wsgate_connections_active Live \\\"sessions\\\"\\nnow\n"
            "wsgate_connections_active 2\n"
            "# TYPE wsgate_ping_rtt_seconds histogram\n"
            "# HELP wsgate_ping_rtt_seconds RTT\n"
            "wsgate_ping_rtt_seconds_bucket{le=\"0.5\"} 1\n"
            "wsgate_ping_rtt_seconds_bucket{le=\"1\"} 1\n"
            "wsgate_ping_rtt_seconds_bucket{le=\"+Inf\"} 1\n"
            "wsgate_ping_rtt_seconds_count 1\n"
            "wsgate_ping_rtt_seconds_sum 0.25\n"
            "# EOF\n")
      << text;
}

TEST(OpenMetrics, CounterWithoutTotalSuffixGetsOne) {
  pm::Registry r;
  pm::BuildCounter().Name("wsgate_restarts").Help("h").Register(r).Add({}).Increment(2);
  EXPECT_EQ(render_openmetrics(r.Collect(), nullptr),
            "# TYPE wsgate_restarts counter\n# HELP wsgate_restarts h\nwsgate_restarts_total 2\n# EOF\n");
}

TEST(OpenMetrics, LatestExemplarWinsAndOnlyOnItsSeries) {
  pm::Registry r;
  auto& fam = pm::BuildCounter().Name("wsgate_incidents_total").Help("h").Register(r);
  fam.Add({{"code", "1011"}, {"stage", "message.handle"}}).Increment();
  fam.Add({{"code", "1011"}, {"stage", "unknown"}}).Increment();
  ExemplarStore ex;
  ex.record("wsgate_incidents_total", {{"code", "1011"}, {"stage", "message.handle"}},
            Exemplar{{{"trace_id", "first-cid-0001"}}, 1, kT});
  ex.record("wsgate_incidents_total", {{"code", "1011"}, {"stage", "message.handle"}},
            Exemplar{{{"trace_id", "second-cid-0002"}}, 1, kT + std::chrono::seconds(1)});
  EXPECT_EQ(ex.size(), 1u);
  EXPECT_EQ(render_openmetrics(r.Collect(), &ex),
            "# TYPE wsgate_incidents counter\n# HELP wsgate_incidents h\n"
            "wsgate_incidents_total{code=\"1011\",stage=\"message.handle\"} 1 # {trace_id=\"second-cid-0002\"} 1 1714564801.123\n"
            "wsgate_incidents_total{code=\"1011\",stage=\"unknown\"} 1\n# EOF\n");
}

TEST(OpenMetrics, OverlongExemplarIsLeftOut) {
  pm::Registry r;
  pm::BuildCounter().Name("c_total").Help("h").Register(r).Add({}).Increment();
  ExemplarStore ex;
  ex.record("c_total", {}, Exemplar{{{"trace_id", std::string(121, 'a')}}, 1, kT});  // 8 + 121 > 128
  EXPECT_EQ(render_openmetrics(r.Collect(), &ex), "# TYPE c counter\n# HELP c h\nc_total 1\n# EOF\n");
  ex.record("c_total", {}, Exemplar{{{"trace_id", std::string(120, 'a')}}, 1, kT});  // exactly 128
  EXPECT_NE(render_openmetrics(r.Collect(), &ex).find("c_total 1 # {trace_id=\""), std::string::npos);
}

TEST(OpenMetrics, LabelValuesAreEscaped) {
  pm::Registry r;
  pm::BuildCounter().Name("c_total").Help("h").Register(r).Add({{"k", "a\"b\\c\nd"}}).Increment();
  EXPECT_EQ(render_openmetrics(r.Collect(), nullptr),
            "# TYPE c counter\n# HELP c h\nc_total{k=\"a\\\"b\\\\c\\nd\"} 1\n# EOF\n");
}

TEST(OpenMetrics, ValueFormatting) {
  EXPECT_EQ(format_metric_value(0), "0");
  EXPECT_EQ(format_metric_value(1.5), "1.5");
  EXPECT_EQ(format_metric_value(0.0005), "0.0005");
  EXPECT_EQ(format_metric_value(86400), "86400");
  EXPECT_EQ(format_metric_value(1.0 / 0.0), "+Inf");
  EXPECT_EQ(format_metric_value(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(format_metric_value(std::nan("")), "NaN");
}

TEST(OpenMetrics, ContentNegotiation) {
  // What Prometheus 2.x sends with exemplar storage on.
  EXPECT_TRUE(accepts_openmetrics(
      "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
      "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"));
  EXPECT_TRUE(accepts_openmetrics("Application/OpenMetrics-Text; version=1.0.0"));
  EXPECT_FALSE(accepts_openmetrics("text/plain;version=0.0.4;q=0.5,*/*;q=0.1"));
  EXPECT_FALSE(accepts_openmetrics(""));
  EXPECT_FALSE(accepts_openmetrics("*/*"));
  EXPECT_FALSE(accepts_openmetrics("application/openmetrics-text;q=0"));
}
