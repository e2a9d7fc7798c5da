// The log formatters: every line scrubbed of secrets and escaped to a single
// line of valid text, in both --log-format text and json.
#include <gtest/gtest.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/logging.hpp"

using namespace wsgate;

namespace {

const std::string kJwt =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJlX2J5dGVz";
const std::string kSig = "c2lnbmF0dXJlX2J5dGVz";

std::string format(logging::Format f, std::string_view payload) {
  auto formatter = logging::make_formatter(f);
  spdlog::details::log_msg msg("wsgate", spdlog::level::info,
                               spdlog::string_view_t(payload.data(), payload.size()));
  spdlog::memory_buf_t buf;
  formatter->format(msg, buf);
  return std::string(buf.data(), buf.size());
}

std::size_t count(const std::string& s, char c) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), c));
}

// A close reason that tries to start a line of its own.
const std::string kForging =
    "[cid=abc123] session closed reason=\"bye\r\n2026-11-29T04:00:00.000 info wsgate: FORGED "
    "Bearer " +
    kJwt + "\" \x1b[31m\x7f\xff end";

}  // namespace

TEST(EscapeLine, Table) {
  struct Case {
    std::string in, out;
  };
  const std::vector<Case> cases = {
      {"plain text", "plain text"},
      {"a\nb", "a\\nb"},
      {"a\r\nb", "a\\r\\nb"},
      {std::string("nul\0x", 5), "nul\\x00x"},
      {"\x01\x1b\t\x7f", "\\x01\\x1B\\x09\\x7F"},
      {"back\\slash \\n", "back\\\\slash \\\\n"},
      {"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"},
      {"\xff", "\\xFF"},
      {"\xc3\x28", "\\xC3("},
      {"\xc0\xaf", "\\xC0\\xAF"},                    // overlong '/'
      {"\xed\xa0\x80", "\\xED\\xA0\\x80"},           // surrogate
      {"\xf4\x90\x80\x80", "\\xF4\\x90\\x80\\x80"},  // past U+10FFFF
      {"\xe2\x82", "\\xE2\\x82"},                    // truncated
      {"nel\xc2\x85", "nel\\u0085"},
      {"ls\xe2\x80\xa8ps\xe2\x80\xa9", "ls\\u2028ps\\u2029"},
  };
  for (const auto& c : cases) EXPECT_EQ(logging::escape_line(c.in), c.out) << c.in;
}

TEST(LogFormat, TextLineCannotBeForged) {
  std::string line = format(logging::Format::text, kForging);
  EXPECT_EQ(count(line, '\n'), 1u) << line;
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(count(line, '\r'), 0u) << line;
  EXPECT_EQ(line.find(kSig), std::string::npos) << line;
  EXPECT_NE(
      line.find("reason=\"bye\\r\\n2026-11-29T04:00:00.000 info wsgate: FORGED Bearer [REDACTED]"),
      std::string::npos)
      << line;
  EXPECT_NE(line.find("\\x1B[31m\\x7F\\xFF end"), std::string::npos) << line;
  for (char c : line.substr(0, line.size() - 1))
    EXPECT_TRUE(static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f)
        << line;
}

TEST(LogFormat, JsonLineIsValidAndEscaped) {
  std::string line = format(logging::Format::json, kForging);
  EXPECT_EQ(count(line, '\n'), 1u) << line;
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["correlation_id"], "abc123");
  std::string msg = j["msg"];
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  EXPECT_EQ(msg.find(kSig), std::string::npos);
  EXPECT_NE(msg.find("bye\\r\\n2026"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\\xFF end"), std::string::npos) << msg;
}

TEST(LogFormat, BothFormatsRedactQueriesAndKeepOrdinaryWords) {
  const std::string payload =
      "[cid=b2f6c1d0e9a84b7c9d3e2f1a0b9c8d7e] session open target=/ws?access_token="
      "8f3a9c2e4b1d7f6a0c5e8b2d4f1a3c7e9b&room=lobby stage=auth.verify_jwt claim=jwt.sub";
  for (auto f : {logging::Format::text, logging::Format::json}) {
    std::string line = format(f, payload);
    EXPECT_EQ(line.find("8f3a9c2e"), std::string::npos) << line;
    EXPECT_NE(line.find("access_token=[REDACTED]&room=lobby stage=auth.verify_jwt claim=jwt.sub"),
              std::string::npos)
        << line;
    EXPECT_NE(line.find("b2f6c1d0e9a84b7c9d3e2f1a0b9c8d7e"), std::string::npos) << line;
  }
}

TEST(LogFormat, PlainLinePassesThrough) {
  std::string line = format(logging::Format::text, "listening on 127.0.0.1:8080");
  EXPECT_NE(line.find(" info wsgate: listening on 127.0.0.1:8080\n"), std::string::npos) << line;
}
