#include "common/redact.hpp"

#include <gtest/gtest.h>

using namespace wsgate;

namespace {
const std::string kJwt =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJlX2J5dGVz";
}

TEST(Redact, BearerHeaderValue) {
  std::string s = "Authorization: Bearer " + kJwt + " trailing";
  EXPECT_EQ(redact_secrets(s), 1u);
  EXPECT_EQ(s, "Authorization: Bearer [REDACTED] trailing");
  std::string opaque = "authorization: bearer abc.def+ghi/=";
  redact_secrets(opaque);
  EXPECT_EQ(opaque, "authorization: bearer [REDACTED]");
}

TEST(Redact, SubprotocolAndBareJwt) {
  std::string s = "Sec-WebSocket-Protocol: jwt-auth, jwt." + kJwt;
  redact_secrets(s);
  EXPECT_EQ(s, "Sec-WebSocket-Protocol: jwt-auth, jwt.[REDACTED]");
  std::string bare = "{\"token\":\"" + kJwt + "\"}";
  redact_secrets(bare);
  EXPECT_EQ(bare, "{\"token\":\"[REDACTED]\"}");
  EXPECT_EQ(bare.find("eyJ"), std::string::npos);
}

TEST(Redact, LeavesOrdinaryTextAlone) {
  std::string s = "jwt-auth selected; user eyJane said hi; 1011 at factory.create_manager";
  EXPECT_EQ(redact_secrets(s), 0u);
  EXPECT_EQ(s, "jwt-auth selected; user eyJane said hi; 1011 at factory.create_manager");
}
