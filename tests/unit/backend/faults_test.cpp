#include "backend/faults.hpp"

#include <gtest/gtest.h>

using namespace wsgate::backend;

TEST(Faults, ParsesEverySpecKind) {
  std::string error;
  auto drop = parse_fault("context.drop=thread_id", error);
  ASSERT_TRUE(drop) << error;
  EXPECT_EQ(drop->kind, FaultSpec::Kind::context_drop);
  EXPECT_EQ(drop->argument, "thread_id");
  EXPECT_EQ(drop->probability, 1.0);
  auto thrower = parse_fault("handler.throw=user_message@0.25", error);
  ASSERT_TRUE(thrower) << error;
  EXPECT_EQ(thrower->kind, FaultSpec::Kind::handler_throw);
  EXPECT_EQ(thrower->argument, "user_message");
  EXPECT_DOUBLE_EQ(thrower->probability, 0.25);
  auto factory = parse_fault("factory.fail@0", error);
  ASSERT_TRUE(factory) << error;
  EXPECT_EQ(factory->kind, FaultSpec::Kind::factory_fail);
  EXPECT_EQ(factory->probability, 0.0);
}

TEST(Faults, RefusesBadSpecsWithAReason) {
  std::string error;
  EXPECT_FALSE(parse_fault("context.drop=nope", error));
  EXPECT_NE(error.find("nope"), std::string::npos);
  EXPECT_FALSE(parse_fault("context.drop", error));
  EXPECT_FALSE(parse_fault("handler.throw", error));
  EXPECT_FALSE(parse_fault("factory.fail=x", error));
  EXPECT_FALSE(parse_fault("factory.fial", error));
  EXPECT_NE(error.find("unknown fault"), std::string::npos);
  EXPECT_FALSE(parse_fault("factory.fail@1.5", error));
  EXPECT_FALSE(parse_fault("factory.fail@-0.1", error));
  EXPECT_FALSE(parse_fault("factory.fail@", error));
  EXPECT_FALSE(parse_fault("factory.fail@abc", error));
  EXPECT_FALSE(parse_fault("factory.fail@nan", error));
}

TEST(Faults, ProbabilitiesAreHonoured) {
  std::string e;
  Faults always({*parse_fault("handler.throw=ping", e), *parse_fault("context.drop=run_id", e),
                 *parse_fault("factory.fail", e)});
  EXPECT_TRUE(always.handler_throws("ping"));
  EXPECT_FALSE(always.handler_throws("user_message"));
  EXPECT_EQ(always.context_drops(), std::set<Attribute>{Attribute::run_id});
  EXPECT_TRUE(always.factory_fails());

  Faults never({*parse_fault("factory.fail@0", e)});
  for (int i = 0; i < 1000; ++i) ASSERT_FALSE(never.factory_fails());

  Faults half({*parse_fault("factory.fail@0.5", e)}, 42);
  int hits = 0;
  for (int i = 0; i < 4000; ++i) hits += half.factory_fails() ? 1 : 0;
  EXPECT_GT(hits, 1700);
  EXPECT_LT(hits, 2300);

  Faults none;
  EXPECT_FALSE(none.factory_fails());
  EXPECT_TRUE(none.context_drops().empty());
  EXPECT_EQ(none.describe(), "none");
}
