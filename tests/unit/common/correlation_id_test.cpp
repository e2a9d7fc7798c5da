#include "common/correlation_id.hpp"

#include <gtest/gtest.h>

#include <set>

using namespace wsgate;

TEST(CorrelationId, ValidityFollowsTheContract) {
  EXPECT_TRUE(is_valid_correlation_id("abcdEFGH"));
  EXPECT_TRUE(is_valid_correlation_id("req-1.2_3"));
  EXPECT_TRUE(is_valid_correlation_id(std::string(128, 'a')));
  EXPECT_FALSE(is_valid_correlation_id("short"));
  EXPECT_FALSE(is_valid_correlation_id(std::string(129, 'a')));
  EXPECT_FALSE(is_valid_correlation_id("has space in it"));
  EXPECT_FALSE(is_valid_correlation_id("crlf\r\nInjected: 1"));
  EXPECT_FALSE(is_valid_correlation_id("slash/not/ok"));
}

TEST(CorrelationId, GeneratedIdsAreValidHexAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = generate_correlation_id();
    ASSERT_EQ(id.size(), 32u);
    ASSERT_TRUE(is_valid_correlation_id(id));
    ASSERT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(TraceParent, ParsesAndRejects) {
  auto tp = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_TRUE(tp);
  EXPECT_EQ(tp->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(tp->parent_id, "00f067aa0ba902b7");
  EXPECT_EQ(tp->flags, "01");
  EXPECT_FALSE(parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
  EXPECT_FALSE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
  EXPECT_FALSE(parse_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(parse_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"));
  EXPECT_FALSE(parse_traceparent("garbage"));
}

TEST(TraceParent, ChildKeepsTraceAndChangesSpan) {
  auto parent = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  auto child = child_traceparent(parent);
  EXPECT_EQ(child.trace_id, parent->trace_id);
  EXPECT_NE(child.parent_id, parent->parent_id);
  EXPECT_TRUE(parse_traceparent(child.to_string()));
  auto fresh = child_traceparent(std::nullopt);
  EXPECT_TRUE(parse_traceparent(fresh.to_string()));
}
