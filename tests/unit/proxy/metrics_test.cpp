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

namespace {
double series_value(prometheus::Registry& registry, const std::string& name,
                    const std::map<std::string, std::string>& labels) {
  for (auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (auto& metric : family.metric) {
      std::map<std::string, std::string> have;
      for (auto& l : metric.label) have[l.name] = l.value;
      if (have == labels) return metric.counter.value;
    }
  }
  return -1;
}
}  // namespace

TEST(ProxyMetrics, MissingAttributeLabelsAreCapped) {
  prometheus::Registry registry;
  ProxyMetrics m(registry, 8);
  m.incident_missing_attribute(1011, "context.validate", "run_id").Increment();
  m.incident_missing_attribute(1011, "context.validate", "run_id").Increment();
  EXPECT_EQ(
      series_value(registry, "wsgate_incident_missing_attributes_total",
                   {{"code", "1011"}, {"stage", "context.validate"}, {"attribute", "run_id"}}),
      2);
  // Names that are not plain identifiers never become labels.
  m.incident_missing_attribute(1011, "context.validate", "<script>").Increment();
  EXPECT_EQ(series_value(registry, "wsgate_incident_missing_attributes_total",
                         {{"code", "1011"}, {"stage", "context.validate"}, {"attribute", "other"}}),
            1);
  EXPECT_EQ(m.missing_attribute_label_overflow().Value(), 1);
  // run_id plus 31 more fill the cap; the 33rd distinct name is "other".
  for (std::size_t i = 1; i < ProxyMetrics::kMaxMissingAttributeLabels; ++i)
    m.incident_missing_attribute(1011, "context.validate", "attr" + std::to_string(i)).Increment();
  EXPECT_EQ(m.missing_attribute_label_overflow().Value(), 1);
  m.incident_missing_attribute(1011, "context.validate", "one_too_many").Increment();
  EXPECT_EQ(m.missing_attribute_label_overflow().Value(), 2);
  EXPECT_EQ(series_value(registry, "wsgate_incident_missing_attributes_total",
                         {{"code", "1011"}, {"stage", "context.validate"}, {"attribute", "other"}}),
            2);
  // Known names keep their label after the cap.
  m.incident_missing_attribute(1011, "factory.create_manager", "run_id").Increment();
  EXPECT_EQ(series_value(
                registry, "wsgate_incident_missing_attributes_total",
                {{"code", "1011"}, {"stage", "factory.create_manager"}, {"attribute", "run_id"}}),
            1);
}
