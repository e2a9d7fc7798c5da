#include "proxy/metrics.hpp"

#include <gtest/gtest.h>

using namespace wsgate::proxy;

TEST(ProxyMetrics, CloseCodeLabelsAndPrivateCap) {
  prometheus::Registry registry;
  ProxyMetrics m(registry, 2);
  EXPECT_EQ(m.close_label(1000), "1000");
  EXPECT_EQ(m.close_label(1015), "1015");
  EXPECT_EQ(m.close_label(2999), "other");
  EXPECT_EQ(m.close_label(999), "other");
  EXPECT_EQ(m.close_label(3000), "3000");
  EXPECT_EQ(m.close_label(4999), "4999");
  EXPECT_EQ(m.close_label(4000), "other");  // cap of 2 private codes reached
  EXPECT_EQ(m.close_label(3000), "3000");   // already known codes keep their label
  EXPECT_EQ(m.close_label(5000), "other");

  m.close(1011, Initiator::upstream).Increment();
  m.close(1011, Initiator::upstream).Increment();
  m.close(4000, Initiator::client).Increment();
  EXPECT_EQ(m.close(1011, Initiator::upstream).Value(), 2);
  EXPECT_EQ(m.close(4001, Initiator::client).Value(), 1);  // both are "other"
  EXPECT_EQ(&m.close(4000, Initiator::client), &m.close(4001, Initiator::client));
}

TEST(ProxyMetrics, HandlesAreStable) {
  prometheus::Registry registry;
  ProxyMetrics m(registry, 8);
  EXPECT_EQ(&m.frames(Direction::client_to_upstream, 1), &m.frames(Direction::client_to_upstream, 1));
  EXPECT_NE(&m.frames(Direction::client_to_upstream, 1), &m.frames(Direction::upstream_to_client, 1));
  // Reserved opcodes share one series.
  EXPECT_EQ(&m.frames(Direction::client_to_upstream, 3), &m.frames(Direction::client_to_upstream, 0xB));
  EXPECT_EQ(&m.violation(Direction::client_to_upstream, wsgate::tap::Violation::mask_missing),
            &m.violation(Direction::client_to_upstream, wsgate::tap::Violation::mask_missing));
  // Every violation kind is exposed from the start.
  std::size_t series = 0;
  for (auto& family : registry.Collect())
    if (family.name == "wsgate_protocol_violations_total") series = family.metric.size();
  EXPECT_EQ(series, 2 * (wsgate::tap::kViolationKinds - 1));
}
