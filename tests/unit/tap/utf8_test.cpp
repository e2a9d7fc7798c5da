// The UTF-8 DFA: Markus Kuhn's decoder stress cases, every case split at every
// byte, and exhaustive agreement with a reference decoder.

#include "proxy/tap/utf8.hpp"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/tap/tap_test_util.hpp"

using namespace wsgate::tap;
using wsgate::tap::testing::reference_utf8;

namespace {

bool valid_with_cuts(const std::string& s, size_t a, size_t b) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  Utf8Validator v;
  v.feed(p, a);
  v.feed(p + a, b - a);
  v.feed(p + b, s.size() - b);
  return v.complete();
}

// Whole, at every single cut, every pair of cuts and byte by byte: same answer.
void expect_utf8(const std::string& s, bool want) {
  SCOPED_TRACE(wsgate::tap::testing::hex(
      std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size())));
  EXPECT_EQ(is_valid_utf8(s), want);
  EXPECT_EQ(reference_utf8(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size())), want);
  for (size_t a = 0; a <= s.size(); ++a) {
    for (size_t b = a; b <= s.size(); ++b) ASSERT_EQ(valid_with_cuts(s, a, b), want) << a << "," << b;
  }
  Utf8Validator v;
  for (char c : s) v.feed(reinterpret_cast<const uint8_t*>(&c), 1);
  EXPECT_EQ(v.complete(), want);
}

}  // namespace

TEST(Utf8, KuhnCorrectText) {
  expect_utf8("", true);
  expect_utf8("plain ASCII, long enough for the eight-byte fast path to kick in", true);
  expect_utf8("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5", true);  // κόσμε
}

TEST(Utf8, KuhnBoundaries) {
  // 2.1 first sequence of each length, 2.2 last, 2.3 other boundaries.
  for (const char* s : {"\x00", "\xC2\x80", "\xE0\xA0\x80", "\xF0\x90\x80\x80", "\x7F",
                        "\xDF\xBF", "\xEF\xBF\xBF", "\xF4\x8F\xBF\xBF", "\xED\x9F\xBF",
                        "\xEE\x80\x80", "\xEF\xBF\xBD"}) {
    expect_utf8(std::string(s, s[0] ? std::char_traits<char>::length(s) : 1), true);
  }
  // Noncharacters are valid scalar values.
  expect_utf8("\xEF\xBF\xBE", true);
  expect_utf8("\xF3\xBF\xBF\xBF", true);
}

TEST(Utf8, KuhnMalformed) {
  // 3.1 unexpected continuation bytes.
  for (const char* s : {"\x80", "\xBF", "\x80\xBF", "\x80\xBF\x80", "a\x80z"}) expect_utf8(s, false);
  // 3.2 lonely start characters followed by a space.
  for (int b = 0xC0; b <= 0xFD; ++b) expect_utf8(std::string{static_cast<char>(b), ' '}, false);
  // 3.3 sequences with the last continuation byte missing.
  for (const char* s : {"\xC2", "\xE0\xA0", "\xF0\x90\x80", "\xDF", "\xEF\xBF", "\xF4\x8F\xBF"}) {
    expect_utf8(s, false);
    expect_utf8(std::string(s) + "x", false);
  }
  // 3.5 impossible bytes.
  for (const char* s : {"\xFE", "\xFF", "\xFE\xFE\xFF\xFF", "\xF5\x80\x80\x80", "\xF8\x88\x80\x80\x80"})
    expect_utf8(s, false);
}

TEST(Utf8, KuhnOverlongs) {
  // 4.1 overlong "/", 4.2 maximum overlongs, 4.3 overlong NUL.
  for (const char* s : {"\xC0\xAF", "\xE0\x80\xAF", "\xF0\x80\x80\xAF", "\xC1\xBF",
                        "\xE0\x9F\xBF", "\xF0\x8F\xBF\xBF", "\xC0\x80", "\xE0\x80\x80",
                        "\xF0\x80\x80\x80"}) {
    expect_utf8(s, false);
  }
}

TEST(Utf8, KuhnSurrogatesAndBeyondMax) {
  // 5.1 single surrogates, 5.2 paired surrogates (CESU-8).
  for (const char* s : {"\xED\xA0\x80", "\xED\xAD\xBF", "\xED\xAE\x80", "\xED\xAF\xBF",
                        "\xED\xB0\x80", "\xED\xBE\x80", "\xED\xBF\xBF",
                        "\xED\xA0\x80\xED\xB0\x80", "\xED\xAF\xBF\xED\xBF\xBF"}) {
    expect_utf8(s, false);
  }
  // Above U+10FFFF.
  expect_utf8("\xF4\x90\x80\x80", false);
  expect_utf8("\xF7\xBF\xBF\xBF", false);
}

TEST(Utf8, StickyRejectAndReset) {
  Utf8Validator v;
  const uint8_t bad[] = {0xFF};
  const uint8_t good[] = {'a'};
  EXPECT_FALSE(v.feed(bad, 1));
  EXPECT_FALSE(v.feed(good, 1));
  EXPECT_FALSE(v.ok());
  v.reset();
  EXPECT_TRUE(v.feed(good, 1));
  EXPECT_TRUE(v.complete());
  const uint8_t partial[] = {0xE2, 0x82};
  EXPECT_TRUE(v.feed(partial, 2));
  EXPECT_TRUE(v.ok());
  EXPECT_FALSE(v.complete());
}

TEST(Utf8, ExhaustiveAgainstReference) {
  uint8_t buf[4];
  for (int a = 0; a < 256; ++a) {
    buf[0] = static_cast<uint8_t>(a);
    ASSERT_EQ(is_valid_utf8(buf, 1), reference_utf8({buf, 1})) << a;
    for (int b = 0; b < 256; ++b) {
      buf[1] = static_cast<uint8_t>(b);
      ASSERT_EQ(is_valid_utf8(buf, 2), reference_utf8({buf, 2})) << a << " " << b;
    }
  }
  // All 3-byte inputs starting with a 3- or 4-byte lead; 4-byte leads with a
  // spread of continuation values covering every class edge.
  for (int a = 0xE0; a <= 0xFF; ++a) {
    buf[0] = static_cast<uint8_t>(a);
    for (int b = 0; b < 256; ++b) {
      buf[1] = static_cast<uint8_t>(b);
      for (int c = 0; c < 256; ++c) {
        buf[2] = static_cast<uint8_t>(c);
        ASSERT_EQ(is_valid_utf8(buf, 3), reference_utf8({buf, 3})) << a << " " << b << " " << c;
      }
    }
  }
  const int edges[] = {0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
  for (int a = 0xF0; a <= 0xF7; ++a) {
    buf[0] = static_cast<uint8_t>(a);
    for (int b = 0; b < 256; ++b) {
      buf[1] = static_cast<uint8_t>(b);
      for (int c : edges) {
        for (int d : edges) {
          buf[2] = static_cast<uint8_t>(c);
          buf[3] = static_cast<uint8_t>(d);
          ASSERT_EQ(is_valid_utf8(buf, 4), reference_utf8({buf, 4}));
        }
      }
    }
  }
}
