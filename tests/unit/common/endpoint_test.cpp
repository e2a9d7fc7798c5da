#include "common/endpoint.hpp"

#include <gtest/gtest.h>

using wsgate::parse_host_port;

TEST(HostPort, ParsesIpv4AndName) {
  auto a = parse_host_port("127.0.0.1:8443");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8443);
  auto b = parse_host_port("localhost:0");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "localhost");
  EXPECT_EQ(b->port, 0);
}

TEST(HostPort, ParsesBracketedIpv6AndEmptyHost) {
  auto a = parse_host_port("[::1]:9090");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->to_string(), "[::1]:9090");
  auto b = parse_host_port(":80");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "0.0.0.0");
}

TEST(HostPort, RejectsMalformed) {
  for (const char* bad : {"", "nohost", "1.2.3.4:", "1.2.3.4:65536", "::1:80", "[::1]80",
                          "[::1]:", "h:12x", "h:-1"})
    EXPECT_FALSE(parse_host_port(bad)) << bad;
}
