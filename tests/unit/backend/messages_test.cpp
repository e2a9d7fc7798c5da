#include "backend/messages.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

using namespace wsgate::backend;
using json = nlohmann::json;

TEST(Messages, ParsesKnownShapes) {
  auto p = parse_client_message(R"({"type":"user_message","content":"hello","id":"m1"})");
  ASSERT_TRUE(p.message) << p.error;
  EXPECT_EQ(p.message->type, "user_message");
  EXPECT_EQ(p.message->content, "hello");
  EXPECT_EQ(p.message->id, "m1");
  p = parse_client_message(R"({"type":"ping"})");
  ASSERT_TRUE(p.message);
  EXPECT_EQ(p.message->type, "ping");
  p = parse_client_message(R"({"type":"whatever","x":1})");
  ASSERT_TRUE(p.message);
  EXPECT_EQ(p.message->type, "whatever");
}

TEST(Messages, RefusesMalformedInputWithoutThrowing) {
  EXPECT_EQ(parse_client_message("{not json").error, "not valid JSON");
  EXPECT_EQ(parse_client_message("").error, "not valid JSON");
  EXPECT_EQ(parse_client_message("[1,2]").error, "not a JSON object");
  EXPECT_EQ(parse_client_message(R"({"type":5})").error, "no string field 'type'");
  EXPECT_EQ(parse_client_message(R"({"content":"x"})").error, "no string field 'type'");
  EXPECT_EQ(parse_client_message(R"({"type":"user_message"})").error,
            "user_message needs a string field 'content'");
  EXPECT_FALSE(parse_client_message("\xff\xfe").message);
}

TEST(Messages, ErrorMessageCarriesCodeAndCorrelationId) {
  auto j = json::parse(error_message(kFactoryInitFailed, "why", "cid-00000001"));
  EXPECT_EQ(j["type"], "error");
  EXPECT_EQ(j["error"]["code"], "FACTORY_INIT_FAILED");
  EXPECT_EQ(j["error"]["message"], "why");
  EXPECT_EQ(j["error"]["correlation_id"], "cid-00000001");
  EXPECT_EQ(j["correlation_id"], "cid-00000001");
}

TEST(Messages, InvalidUtf8NeverThrowsOnTheWayOut) {
  EXPECT_NO_THROW(to_wire(json{{"x", std::string("\xff\xfe")}}));
}

TEST(Messages, ConnectionEstablishedListsFallbacks) {
  UserContext ctx;
  ctx.at(Attribute::user_id).value = "u";
  ctx.at(Attribute::thread_id).value = "thread_x";
  ctx.at(Attribute::request_id).value = "cid-00000002";
  auto j = json::parse(
      connection_established_message(ctx, ContextPolicy::fallback, {Attribute::thread_id}));
  EXPECT_EQ(j["type"], "connection_established");
  EXPECT_EQ(j["policy"], "fallback");
  EXPECT_EQ(j["fallback_attributes"], json::array({"thread_id"}));
  EXPECT_EQ(j["thread_id"], "thread_x");
  EXPECT_EQ(j["correlation_id"], "cid-00000002");
}
