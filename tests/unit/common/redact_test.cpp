#include "common/redact.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

using namespace wsgate;

namespace {
const std::string kJwt =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJlX2J5dGVz";
// kJwt with every dot percent-encoded, and with the leading 'e' encoded too.
const std::string kJwtEncodedDots =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9%2EeyJzdWIiOiJ1MSJ9%2ec2lnbmF0dXJlX2J5dGVz";
const std::string kJwtEncodedAll =
    "%65yJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9%2EeyJzdWIiOiJ1MSJ9%2Ec2lnbmF0dXJlX2J5dGVz";
// Opaque tokens as a server mints them (base64url of 32 random bytes, and
// 40 chars of [a-z0-9]).
const std::string kOpaque = "dpw1RrLUri4L38trHKBIfqKWiNFnzRvomGsejSV5Zuw";
const std::string kOpaqueLower = "eh7pr43ybfep4myg2ayoyg34jhevn6ernb4xi3at";

struct Case {
  std::string in;
  std::string out;
};

const std::string X(kRedacted);

std::vector<Case> secret_cases() {
  return {
      // By shape.
      {"Authorization: Bearer " + kJwt + " trailing", "Authorization: Bearer " + X + " trailing"},
      {"authorization: bearer abc.def+ghi/=", "authorization: bearer " + X},
      {"Authorization: Bearer abc1", "Authorization: Bearer " + X},
      {"{\"authorization\":\"Bearer short\"}", "{\"authorization\":\"Bearer " + X + "\"}"},
      {"auth=Bearer%20" + kJwt, "auth=Bearer%20" + X},
      {"Bearer+" + kOpaque + "&x=1", "Bearer+" + X + "&x=1"},
      {"Bearer%20" + kOpaque, "Bearer%20" + X},
      {"Sec-WebSocket-Protocol: jwt-auth, jwt." + kJwt,
       "Sec-WebSocket-Protocol: jwt-auth, jwt." + X},
      {"protocols=jwt.Ab3dE5fG7hJ9kL1mN2", "protocols=jwt." + X},
      {"{\"token\":\"" + kJwt + "\"}", "{\"token\":\"" + X + "\"}"},
      {"/ws?t=" + kJwtEncodedDots, "/ws?t=" + X},
      {"/ws?t=" + kJwtEncodedAll, "/ws?t=" + X},
      {"resumed with " + kOpaque + ".", "resumed with " + X + "."},
      {"resumed with " + kOpaqueLower, "resumed with " + X},
      // By key, in a query (case-insensitive, percent-encoded keys, inner queries).
      {"GET /ws?token=abc", "GET /ws?token=" + X},
      {"/ws?access_token=8f3a9c2e4b1d7f6a0c5e8b2d4f1a3c7e9b", "/ws?access_token=" + X},
      {"/ws?room=lobby&api_key=Zx81kQ&x=1", "/ws?room=lobby&api_key=" + X + "&x=1"},
      {"/ws?ApiKey=abc", "/ws?ApiKey=" + X},
      {"/ws?x=1&Access%5FToken=abc", "/ws?x=1&Access%5FToken=" + X},
      {"/ws?id_token=a;b", "/ws?id_token=" + X + ";b"},
      {"/ws?password=hunter2&room=lobby", "/ws?password=" + X + "&room=lobby"},
      {"/ws?sig=a&code=b&ticket=c&session=d&sid=e&secret=f&key=g&passwd=h&auth=i",
       "/ws?sig=" + X + "&code=" + X + "&ticket=" + X + "&session=" + X + "&sid=" + X +
           "&secret=" + X + "&key=" + X + "&passwd=" + X + "&auth=" + X},
      {"/ws?refresh_token=r1&client_secret=s1&x-api-key=k1",
       "/ws?refresh_token=" + X + "&client_secret=" + X + "&x-api-key=" + X},
      {"/cb?redirect=%2Fnext%3Ftoken%3Dabc123", "/cb?redirect=%2Fnext%3Ftoken%3D" + X},
      {"/ws?token=abc%26def&x=1", "/ws?token=" + X + "&x=1"},
  };
}

std::vector<std::string> ordinary_text() {
  return {
      "jwt.sub",
      "jwt.exp",
      "auth.verify_jwt",
      "session.close",
      "stage auth.verify_jwt failed: missing claim jwt.sub (jwt.exp ok)",
      "jwt-auth selected; user eyJane said hi; 1011 at factory.create_manager",
      "missing bearer token; bearer realm=wsgate",
      "The quick brown fox jumps over the lazy dog.",
      "session closed code=1011 reason=\"Internal error\" initiator=upstream",
      "/incidents?limit=5&since=2026-11-29T04:00:00Z",
      "short ids a1b2c3d4 deadbeef 7f3a",
      // Join keys: correlation ID, W3C traceparent, UUID, SHA-256.
      "b2f6c1d0e9a84b7c9d3e2f1a0b9c8d7e",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "123e4567-e89b-12d3-a456-426614174000",
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      // Identifiers and metric names.
      "factory_create_manager_with_retries_v2",
      "wsgate_connection_duration_seconds_bucket",
      "staging-e2e-user-001-and-more-stuff-x",
      "user_context_attribute_missing_x509",
      "--max-connections-per-ip=64 --incident-codes=1011",
      "",
  };
}

}  // namespace

TEST(Redact, EveryTokenFormIsRedacted) {
  for (const auto& c : secret_cases()) {
    EXPECT_EQ(redacted(c.in), c.out) << "input: " << c.in;
  }
}

TEST(Redact, CountsSpans) {
  std::string s = "a ?token=x b Bearer " + kJwt + " c " + kOpaque;
  EXPECT_EQ(redact_secrets(s), 3u);
  EXPECT_EQ(s, "a ?token=" + X + " b Bearer " + X + " c " + X);
}

TEST(Redact, OrdinaryTextSurvives) {
  for (const auto& text : ordinary_text()) {
    std::string s = text;
    EXPECT_EQ(redact_secrets(s), 0u) << text;
    EXPECT_EQ(s, text);
  }
}

TEST(Redact, IsIdempotent) {
  for (const auto& c : secret_cases()) {
    EXPECT_EQ(redacted(c.out), c.out) << c.out;
  }
}

TEST(Redact, SecretKeys) {
  for (std::string_view k :
       {"token",         "TOKEN",   "Access_Token", "access-token", "id_token", "jwt",
        "authorization", "api_key", "apikey",       "X-Api-Key",    "key",      "secret",
        "password",      "passwd",  "session",      "sid",          "sig",      "signature",
        "code",          "ticket",  "csrftoken",    "aws_secret",   "token[]"})
    EXPECT_TRUE(is_secret_key(k)) << k;
  for (std::string_view k :
       {"room", "x", "limit", "since", "monkey", "tokenizer", "codec", "keys", "user", "lang"})
    EXPECT_FALSE(is_secret_key(k)) << k;
}

TEST(RedactTarget, QueryValuesByKeyAndShape) {
  EXPECT_EQ(redact_target("/ws/room?token=abc&room=lobby"), "/ws/room?token=" + X + "&room=lobby");
  EXPECT_EQ(redact_target("/ws?Access%5Ftoken=abc"), "/ws?Access%5Ftoken=" + X);
  EXPECT_EQ(redact_target("/ws?Api+Key=abc"), "/ws?Api+Key=" + X);
  EXPECT_EQ(redact_target("/ws?t=" + kJwt + "&u=" + kJwtEncodedAll), "/ws?t=" + X + "&u=" + X);
  EXPECT_EQ(redact_target("/ws?x=Bearer%20" + kOpaque), "/ws?x=Bearer%20" + X);
  EXPECT_EQ(redact_target("/ws?" + kJwt), "/ws?" + X);
  EXPECT_EQ(redact_target("/ws/" + kJwt + "?room=1"), "/ws/" + X + "?room=1");
  EXPECT_EQ(redact_target("/ws?token=abc%26def&x=1"), "/ws?token=" + X + "&x=1");
  EXPECT_EQ(redact_target("/ws?cid=b2f6c1d0e9a84b7c9d3e2f1a0b9c8d7e"),
            "/ws?cid=b2f6c1d0e9a84b7c9d3e2f1a0b9c8d7e");
}

TEST(RedactTarget, LeavesPlainTargetsAlone) {
  for (std::string_view t : {"/", "/ws", "/ws?", "/ws?room=lobby", "/ws?token=", "/ws?a&b=&c=1",
                             "/ws/jwt.sub?x=auth.verify_jwt"})
    EXPECT_EQ(redact_target(t), t);
}

namespace {
bool b64(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; }
// A JWT-shaped span, as in tests/fuzz/fuzz_incident_json.cpp.
bool has_jwt(const std::string& s) {
  for (std::size_t i = 0; i + 3 <= s.size(); ++i) {
    if (s.compare(i, 3, "eyJ") != 0 || (i > 0 && b64(s[i - 1]))) continue;
    int dots = 0;
    for (std::size_t e = i; e < s.size() && (b64(s[e]) || s[e] == '.' || s[e] == '='); ++e)
      dots += s[e] == '.';
    if (dots >= 2) return true;
  }
  return false;
}
std::string percent_decoded(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 3;
    } else {
      out += s[i++];
    }
  }
  return out;
}
}  // namespace

// Random strings of the pieces the rules key on (seeded, bounded): the output
// holds no JWT, plain or once decoded, and a second pass changes nothing.
TEST(Redact, MixedPiecesNeverLeakAJwtAndRedactionIsStable) {
  const std::vector<std::string> atoms = {"eyJ",
                                          ".",
                                          "%2E",
                                          "%65",
                                          "Bearer",
                                          " ",
                                          "+",
                                          "%20",
                                          "=",
                                          "&",
                                          "?",
                                          "token",
                                          "jwt.",
                                          "a",
                                          "Z",
                                          "9",
                                          "_",
                                          "-",
                                          "%",
                                          "%2",
                                          "\xff",
                                          kOpaque,
                                          "%26",
                                          "%3D",
                                          "%3F",
                                          "Authorization: ",
                                          "\"authorization\":\""};
  std::uint32_t state = 12345;
  auto next = [&state] { return state = state * 1664525u + 1013904223u; };
  for (int n = 0; n < 20000; ++n) {
    std::string s;
    for (std::uint32_t i = 0, len = (next() >> 8) % 20; i < len; ++i)
      s += atoms[(next() >> 8) % atoms.size()];
    std::string once = redacted(s);
    ASSERT_EQ(redacted(once), once) << s;
    ASSERT_FALSE(has_jwt(once) || has_jwt(percent_decoded(once))) << s << " -> " << once;
    ASSERT_FALSE(has_jwt(percent_decoded(redact_target(s)))) << s;
  }
}

// Whether `out` shows any run of `min` or more characters of `secret`.
bool shows_part_of(const std::string& out, const std::string& secret, std::size_t min) {
  for (std::size_t i = 0; i + min <= secret.size(); ++i)
    if (out.find(secret.substr(i, min)) != std::string::npos) return true;
  return false;
}

TEST(RedactPrefix, ASecretCutAnywhereShowsNoPartOfIt) {
  // The part after "eyJhbGciOi" is what identifies this token.
  const std::string secret_tail = kJwt.substr(10);
  const std::vector<std::string> messages = {
      "{\"type\":\"auth\",\"token\":\"" + kJwt + "\"}",
      "Authorization: Bearer " + kOpaque + " ok",
      "GET /ws?room=1&access_token=" + kOpaque + " HTTP/1.1",
      "jwt." + kJwt,
  };
  for (const auto& m : messages) {
    for (std::size_t cut = 1; cut < m.size(); ++cut) {
      const std::string out = redacted_prefix(std::string_view(m).substr(0, cut), true);
      ASSERT_FALSE(shows_part_of(out, secret_tail, 6)) << cut << ": " << out;
      ASSERT_FALSE(shows_part_of(out, kOpaque, 6)) << cut << ": " << out;
    }
  }
  // The reason the cut rule exists: redacting the cut text alone shows a
  // JWT cut before its second dot.
  const std::string before_second_dot = kJwt.substr(0, kJwt.rfind('.'));
  EXPECT_TRUE(shows_part_of(redacted("token " + before_second_dot), secret_tail, 6));
  EXPECT_FALSE(shows_part_of(redacted_prefix("token " + before_second_dot, true), secret_tail, 6));
}

TEST(RedactPrefix, KeepsWholeWordsAndUncutText) {
  EXPECT_EQ(redacted_prefix("hello wor", true), "hello ");
  EXPECT_EQ(redacted_prefix("{\"type\":\"chat\",\"text\":\"hi", true),
            "{\"type\":\"chat\",\"text\":\"");
  EXPECT_EQ(redacted_prefix("hello wor", false), "hello wor");
  EXPECT_EQ(redacted_prefix("token " + kJwt, false), "token " + X);
  // A cut inside a multi-byte character drops the partial character too.
  EXPECT_EQ(redacted_prefix("caf\xc3", true), "");
  EXPECT_EQ(redacted_prefix("ok caf\xc3", true), "ok ");
}
