#include "backend/user_context.hpp"

#include <gtest/gtest.h>

using namespace wsgate::backend;

namespace {

const std::string kCid = "cid-0123456789";

std::string fixed_generate(Attribute a) { return "gen-" + std::string(attribute_name(a)); }

ContextInputs complete_inputs() {
  ContextInputs in;
  in.sub = "staging-e2e-user-001";
  in.claim_thread_id = "thread-claim";
  in.correlation_id = kCid;
  return in;
}

}  // namespace

TEST(UserContext, CompleteContextNamesEverySource) {
  auto ctx = create_context(complete_inputs(), fixed_generate);
  EXPECT_EQ(ctx.get(Attribute::user_id), "staging-e2e-user-001");
  EXPECT_EQ(ctx.at(Attribute::user_id).source, "jwt.sub");
  EXPECT_EQ(ctx.get(Attribute::thread_id), "thread-claim");
  EXPECT_EQ(ctx.at(Attribute::thread_id).source, "jwt.thread_id");
  EXPECT_EQ(ctx.get(Attribute::websocket_client_id), "gen-websocket_client_id");
  EXPECT_EQ(ctx.at(Attribute::websocket_client_id).source, "generated");
  EXPECT_EQ(ctx.get(Attribute::run_id), "gen-run_id");
  EXPECT_EQ(ctx.get(Attribute::request_id), kCid);
  EXPECT_EQ(ctx.at(Attribute::request_id).source, "correlation_id");
  for (auto policy : {ContextPolicy::strict, ContextPolicy::fallback}) {
    auto copy = ctx;
    auto r = validate_context(copy, policy, kCid, fixed_generate);
    EXPECT_EQ(r.verdict, ValidationResult::Verdict::ok);
    EXPECT_TRUE(r.missing.empty());
    EXPECT_TRUE(r.filled.empty());
  }
}

TEST(UserContext, ThreadIdPrecedenceIsClaimHeaderQuery) {
  ContextInputs in = complete_inputs();
  in.header_thread_id = "from-header";
  in.query_thread_id = "from-query";
  EXPECT_EQ(create_context(in, fixed_generate).get(Attribute::thread_id), "thread-claim");
  in.claim_thread_id.reset();
  auto ctx = create_context(in, fixed_generate);
  EXPECT_EQ(ctx.get(Attribute::thread_id), "from-header");
  EXPECT_EQ(ctx.at(Attribute::thread_id).source, "header X-Thread-ID");
  in.header_thread_id.reset();
  ctx = create_context(in, fixed_generate);
  EXPECT_EQ(ctx.get(Attribute::thread_id), "from-query");
  EXPECT_EQ(ctx.at(Attribute::thread_id).source, "query thread_id");
  in.query_thread_id.reset();
  ctx = create_context(in, fixed_generate);
  EXPECT_EQ(ctx.get(Attribute::thread_id), "");
  EXPECT_EQ(ctx.at(Attribute::thread_id).source, "absent");
}

TEST(UserContext, ThreadClaimOfWrongTypeCountsAsMissing) {
  ContextInputs in = complete_inputs();
  in.claim_thread_id.reset();
  in.claim_thread_id_wrong_type = true;
  in.header_thread_id = "header-is-not-consulted";
  auto ctx = create_context(in, fixed_generate);
  auto r = validate_context(ctx, ContextPolicy::strict, kCid, fixed_generate);
  EXPECT_EQ(r.verdict, ValidationResult::Verdict::refused);
  EXPECT_EQ(r.missing, std::vector<Attribute>{Attribute::thread_id});
}

// Each non-identity attribute, dropped alone: strict refuses naming it,
// fallback fills it (and only it) and says so.
class PerAttribute : public ::testing::TestWithParam<Attribute> {};

TEST_P(PerAttribute, StrictRefusesAndNamesTheAttribute) {
  auto in = complete_inputs();
  in.dropped = {GetParam()};
  auto ctx = create_context(in, fixed_generate);
  EXPECT_EQ(ctx.at(GetParam()).source, "dropped (fault context.drop)");
  auto r = validate_context(ctx, ContextPolicy::strict, kCid, fixed_generate);
  EXPECT_EQ(r.verdict, ValidationResult::Verdict::refused);
  EXPECT_EQ(r.missing, std::vector<Attribute>{GetParam()});
  EXPECT_TRUE(r.filled.empty());
  EXPECT_EQ(r.detail, "missing: " + std::string(attribute_name(GetParam())));
  EXPECT_EQ(ctx.get(GetParam()), "");  // strict never invents a value
}

TEST_P(PerAttribute, FallbackFillsOnlyThatAttribute) {
  auto in = complete_inputs();
  in.dropped = {GetParam()};
  auto ctx = create_context(in, fixed_generate);
  auto before = ctx;
  auto r = validate_context(ctx, ContextPolicy::fallback, kCid, fixed_generate);
  EXPECT_EQ(r.verdict, ValidationResult::Verdict::fallback);
  EXPECT_EQ(r.missing, std::vector<Attribute>{GetParam()});
  EXPECT_EQ(r.filled, std::vector<Attribute>{GetParam()});
  auto name = std::string(attribute_name(GetParam()));
  EXPECT_EQ(r.detail, "missing: " + name + "; filled: " + name);
  std::string expected = GetParam() == Attribute::request_id ? kCid : "gen-" + name;
  EXPECT_EQ(ctx.get(GetParam()), expected);
  EXPECT_EQ(ctx.at(GetParam()).source, "fallback (was dropped (fault context.drop))");
  for (Attribute other : kAllAttributes) {
    if (other != GetParam()) {
      EXPECT_EQ(ctx.get(other), before.get(other));
    }
  }
  EXPECT_TRUE(missing_attributes(ctx).empty());
}

INSTANTIATE_TEST_SUITE_P(NonIdentity, PerAttribute,
                         ::testing::Values(Attribute::thread_id, Attribute::websocket_client_id,
                                           Attribute::run_id, Attribute::request_id),
                         [](const auto& p) { return std::string(attribute_name(p.param)); });

TEST(UserContext, MissingUserIdIsNeverFilled) {
  for (auto policy : {ContextPolicy::strict, ContextPolicy::fallback}) {
    auto in = complete_inputs();
    in.dropped = {Attribute::user_id, Attribute::thread_id};
    auto ctx = create_context(in, fixed_generate);
    auto r = validate_context(ctx, policy, kCid, fixed_generate);
    EXPECT_EQ(r.verdict, ValidationResult::Verdict::missing_identity);
    EXPECT_EQ(r.missing, (std::vector<Attribute>{Attribute::user_id, Attribute::thread_id}));
    EXPECT_TRUE(r.filled.empty());
    EXPECT_EQ(ctx.get(Attribute::user_id), "");
    EXPECT_EQ(ctx.get(Attribute::thread_id), "");
  }
}

TEST(UserContext, SeveralMissingAreAllListedInOrder) {
  auto in = complete_inputs();
  in.claim_thread_id.reset();
  in.dropped = {Attribute::run_id, Attribute::websocket_client_id};
  auto ctx = create_context(in, fixed_generate);
  auto r = validate_context(ctx, ContextPolicy::fallback, kCid, fixed_generate);
  EXPECT_EQ(r.missing, (std::vector<Attribute>{Attribute::thread_id, Attribute::websocket_client_id,
                                               Attribute::run_id}));
  EXPECT_EQ(r.detail,
            "missing: thread_id, websocket_client_id, run_id; filled: thread_id, "
            "websocket_client_id, run_id");
}

TEST(UserContext, InvalidValuesCountAsMissing) {
  EXPECT_TRUE(is_valid_attribute_value("a"));
  EXPECT_TRUE(is_valid_attribute_value(std::string(128, 'x')));
  EXPECT_TRUE(is_valid_attribute_value("with space ~!"));
  EXPECT_FALSE(is_valid_attribute_value(""));
  EXPECT_FALSE(is_valid_attribute_value(std::string(129, 'x')));
  EXPECT_FALSE(is_valid_attribute_value("tab\there"));
  EXPECT_FALSE(is_valid_attribute_value("new\nline"));
  EXPECT_FALSE(is_valid_attribute_value("caf\xc3\xa9"));
  EXPECT_FALSE(is_valid_attribute_value(std::string("nul\0x", 5)));
  EXPECT_FALSE(is_valid_attribute_value("del\x7f"));

  auto in = complete_inputs();
  in.claim_thread_id = std::string(129, 't');
  auto ctx = create_context(in, fixed_generate);
  auto r = validate_context(ctx, ContextPolicy::fallback, kCid, fixed_generate);
  EXPECT_EQ(r.verdict, ValidationResult::Verdict::fallback);
  EXPECT_EQ(r.filled, std::vector<Attribute>{Attribute::thread_id});
  EXPECT_EQ(ctx.get(Attribute::thread_id), "gen-thread_id");

  in = complete_inputs();
  in.sub = "user\x01";
  ctx = create_context(in, fixed_generate);
  EXPECT_EQ(validate_context(ctx, ContextPolicy::fallback, kCid, fixed_generate).verdict,
            ValidationResult::Verdict::missing_identity);
}

TEST(UserContext, DefaultGeneratorGivesValidDistinctValues) {
  for (Attribute a : {Attribute::thread_id, Attribute::websocket_client_id, Attribute::run_id,
                      Attribute::request_id}) {
    auto x = default_generate(a), y = default_generate(a);
    EXPECT_TRUE(is_valid_attribute_value(x)) << x;
    EXPECT_NE(x, y);
  }
  EXPECT_EQ(default_generate(Attribute::user_id), "");
}

TEST(UserContext, NamesAndPoliciesParse) {
  for (Attribute a : kAllAttributes) EXPECT_EQ(parse_attribute(attribute_name(a)), a);
  EXPECT_FALSE(parse_attribute("thread").has_value());
  EXPECT_EQ(parse_policy("strict"), ContextPolicy::strict);
  EXPECT_EQ(parse_policy("fallback"), ContextPolicy::fallback);
  EXPECT_FALSE(parse_policy("Strict").has_value());
}

TEST(UserContext, EveryAttributeNamesWhereItIsFilledFrom) {
  EXPECT_NE(attribute_source(Attribute::user_id).find("JWT claim sub"), std::string_view::npos);
  EXPECT_NE(attribute_source(Attribute::thread_id).find("header X-Thread-ID"),
            std::string_view::npos);
  EXPECT_NE(attribute_source(Attribute::request_id).find("X-Correlation-ID"),
            std::string_view::npos);
  for (Attribute a : kAllAttributes) EXPECT_NE(attribute_source(a), "unknown");
}
