#include "proxy/upstream_url.hpp"

#include <gtest/gtest.h>

using namespace wsgate::proxy;

TEST(UpstreamUrl, Parses) {
  std::string err;
  auto a = parse_upstream_url("ws://127.0.0.1:8080", err);
  ASSERT_TRUE(a) << err;
  EXPECT_FALSE(a->tls);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  EXPECT_EQ(a->path_prefix, "");
  EXPECT_EQ(a->authority(), "127.0.0.1:8080");

  auto b = parse_upstream_url("wss://api.example.test/base/", err);
  ASSERT_TRUE(b) << err;
  EXPECT_TRUE(b->tls);
  EXPECT_EQ(b->port, 443);
  EXPECT_EQ(b->path_prefix, "/base");
  EXPECT_EQ(b->authority(), "api.example.test");
  EXPECT_EQ(join_target(b->path_prefix, "/ws?x=1"), "/base/ws?x=1");

  auto c = parse_upstream_url("ws://[::1]:9000/", err);
  ASSERT_TRUE(c) << err;
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->authority(), "[::1]:9000");
}

TEST(UpstreamUrl, RefusesWithReasons) {
  for (const char* bad : {"http://x", "ws://", "ws://:80", "ws://u:p@host", "ws://h:0",
                          "ws://h:99999", "ws://h/p?q=1", "ws://[::1", "ws://h:x"}) {
    std::string err;
    EXPECT_FALSE(parse_upstream_url(bad, err)) << bad;
    EXPECT_FALSE(err.empty()) << bad;
  }
}
