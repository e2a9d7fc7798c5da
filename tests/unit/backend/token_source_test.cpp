#include "backend/token_source.hpp"

#include <gtest/gtest.h>

using namespace wsgate::backend;

TEST(TokenSource, BearerHeader) {
  auto s = extract_token("Bearer abc.def.ghi", "");
  EXPECT_EQ(s.from, TokenSource::From::authorization);
  EXPECT_EQ(s.token, "abc.def.ghi");
  EXPECT_FALSE(s.offered_jwt_auth);
  EXPECT_EQ(extract_token("bearer   abc.def.ghi ", "").token, "abc.def.ghi");
}

TEST(TokenSource, SubprotocolPair) {
  auto s = extract_token("", "jwt-auth, jwt.abc.def.ghi");
  EXPECT_EQ(s.from, TokenSource::From::subprotocol);
  EXPECT_EQ(s.token, "abc.def.ghi");
  EXPECT_TRUE(s.offered_jwt_auth);
  // Order and extra protocols do not matter.
  s = extract_token("", "chat,jwt.x.y.z , jwt-auth");
  EXPECT_EQ(s.token, "x.y.z");
  EXPECT_TRUE(s.offered_jwt_auth);
}

TEST(TokenSource, AuthorizationWinsOverSubprotocol) {
  auto s = extract_token("Bearer from.header.x", "jwt-auth, jwt.from.proto.y");
  EXPECT_EQ(s.from, TokenSource::From::authorization);
  EXPECT_EQ(s.token, "from.header.x");
  EXPECT_TRUE(s.offered_jwt_auth);
}

TEST(TokenSource, MissingAndMalformed) {
  auto s = extract_token("", "");
  EXPECT_EQ(s.from, TokenSource::From::none);
  EXPECT_FALSE(s.malformed_authorization);
  s = extract_token("Basic dXNlcjpwYXNz", "");
  EXPECT_EQ(s.from, TokenSource::From::none);
  EXPECT_TRUE(s.malformed_authorization);
  s = extract_token("Bearer", "");
  EXPECT_TRUE(s.malformed_authorization);
  s = extract_token("", "jwt-auth, jwt.");
  EXPECT_EQ(s.from, TokenSource::From::none);
  EXPECT_TRUE(s.offered_jwt_auth);
}
