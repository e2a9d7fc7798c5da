// The flight recorder's ring: order, wrap-around, close fields, redaction,
// and what a session pays for it.
#include "proxy/flight_recorder.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>

using namespace wsgate::proxy;
using std::chrono::milliseconds;
using wsgate::tap::Direction;
using wsgate::tap::FrameHeader;

namespace {

constexpr Direction kC2U = Direction::client_to_upstream;
constexpr Direction kU2C = Direction::upstream_to_client;

FrameHeader hdr(std::uint8_t opcode, std::uint64_t length, bool masked = false, bool fin = true,
                std::uint8_t rsv = 0) {
  FrameHeader h;
  h.opcode = opcode;
  h.length = length;
  h.masked = masked;
  h.fin = fin;
  h.rsv = rsv;
  return h;
}

}  // namespace

TEST(FlightRecorder, EmptyAndDisabled) {
  FlightRecorder off(0);
  EXPECT_FALSE(off.enabled());
  off.record(kC2U, hdr(1, 5), milliseconds(1));
  EXPECT_EQ(off.to_json(), nlohmann::json::array());
  EXPECT_EQ(off.release(), nullptr);

  FlightRecorder on(4);
  EXPECT_EQ(on.to_json(), nlohmann::json::array());
  EXPECT_EQ(on.release(), nullptr);  // nothing allocated before the first frame
}

TEST(FlightRecorder, FieldsOfOneFrame) {
  FlightRecorder r(4);
  r.record(kC2U, hdr(2, 70000, true, false, 4), milliseconds(12));
  auto j = r.to_json();
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0], nlohmann::json({{"t_ms", 12},
                                  {"direction", "client_to_upstream"},
                                  {"opcode", 2},
                                  {"fin", false},
                                  {"rsv", 4},
                                  {"length", 70000},
                                  {"masked", true}}));
}

TEST(FlightRecorder, BothDirectionsMergedOldestFirst) {
  FlightRecorder r(8);
  r.record(kC2U, hdr(1, 1, true), milliseconds(0));
  r.record(kU2C, hdr(1, 2), milliseconds(5));
  r.record(kC2U, hdr(9, 3, true), milliseconds(5));  // same ms: client_to_upstream first
  r.record(kU2C, hdr(10, 4), milliseconds(9));
  auto j = r.to_json();
  ASSERT_EQ(j.size(), 4u);
  EXPECT_EQ(j[0]["length"], 1);
  EXPECT_EQ(j[1]["length"], 3);
  EXPECT_EQ(j[2]["length"], 2);
  EXPECT_EQ(j[3]["length"], 4);
  EXPECT_EQ(j[2]["direction"], "upstream_to_client");
}

TEST(FlightRecorder, WrapsKeepingTheLastKPerDirection) {
  FlightRecorder r(3);
  for (int i = 0; i < 10; ++i) r.record(kC2U, hdr(2, 100 + i, true), milliseconds(i));
  r.record(kU2C, hdr(1, 7), milliseconds(4));
  auto j = r.to_json();
  ASSERT_EQ(j.size(), 4u);       // 3 of 10 client frames, the upstream's one
  EXPECT_EQ(j[0]["length"], 7);  // t=4: older than the client's last three (7, 8, 9)
  EXPECT_EQ(j[1]["length"], 107);
  EXPECT_EQ(j[2]["length"], 108);
  EXPECT_EQ(j[3]["length"], 109);
  // Exactly k, then one more.
  FlightRecorder e(2);
  e.record(kU2C, hdr(1, 1), milliseconds(0));
  e.record(kU2C, hdr(1, 2), milliseconds(1));
  EXPECT_EQ(e.to_json().size(), 2u);
  e.record(kU2C, hdr(1, 3), milliseconds(2));
  auto w = e.to_json();
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0]["length"], 2);
  EXPECT_EQ(w[1]["length"], 3);
}

TEST(FlightRecorder, CloseCodeAndReasonOnTheCloseFrame) {
  FlightRecorder r(4);
  r.record(kU2C, hdr(1, 5), milliseconds(1));
  r.record(kU2C, hdr(8, 14), milliseconds(2));
  r.record_close(kU2C, 1011, "backend fail");
  r.record(kC2U, hdr(8, 2, true), milliseconds(3));
  r.record_close(kC2U, 1011, "");
  auto j = r.to_json();
  ASSERT_EQ(j.size(), 3u);
  EXPECT_FALSE(j[0].contains("close_code"));
  EXPECT_EQ(j[1]["close_code"], 1011);
  EXPECT_EQ(j[1]["close_reason"], "backend fail");
  EXPECT_EQ(j[2]["close_code"], 1011);
  EXPECT_EQ(j[2]["close_reason"], "");
}

TEST(FlightRecorder, CloseOnlyCompletesACloseEntry) {
  FlightRecorder r(4);
  r.record_close(kU2C, 1000, "before any frame");
  r.record(kU2C, hdr(1, 5), milliseconds(1));
  r.record_close(kU2C, 1000, "not a close frame");
  auto j = r.to_json();
  ASSERT_EQ(j.size(), 1u);
  EXPECT_FALSE(j[0].contains("close_code"));
}

TEST(FlightRecorder, CloseCodeSurvivesUntilItsEntryIsOverwritten) {
  FlightRecorder r(2);
  r.record(kU2C, hdr(8, 5), milliseconds(1));
  r.record_close(kU2C, 4001, "abc");
  r.record(kU2C, hdr(1, 1), milliseconds(2));
  EXPECT_EQ(r.to_json()[0]["close_code"], 4001);
  r.record(kU2C, hdr(1, 1), milliseconds(3));
  for (auto& f : r.to_json()) EXPECT_FALSE(f.contains("close_code"));
}

TEST(FlightRecorder, ReasonIsRedactedThenCapped) {
  const std::string jwt =
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_"
      "XgL0n3I9PlFUP0THsR8U";
  FlightRecorder r(2);
  r.record(kU2C, hdr(8, 100), milliseconds(1));
  r.record_close(kU2C, 1008, "token " + jwt);
  auto reason = r.to_json()[0]["close_reason"].get<std::string>();
  EXPECT_EQ(reason.find("eyJ"), std::string::npos);
  EXPECT_NE(reason.find("[REDACTED]"), std::string::npos);

  // Capped at kMaxReason bytes, never inside a UTF-8 sequence.
  std::string long_reason(FlightLog::kMaxReason - 1, 'a');
  long_reason += "\xc3\xa9tail";  // 2-byte character straddling the cap
  r.record(kC2U, hdr(8, 100, true), milliseconds(2));
  r.record_close(kC2U, 1000, long_reason);
  auto capped = r.to_json()[1]["close_reason"].get<std::string>();
  EXPECT_EQ(capped, std::string(FlightLog::kMaxReason - 1, 'a'));
}

TEST(FlightRecorder, HugeLengthsAreCappedAndSaySo) {
  FlightRecorder r(2);
  r.record(kU2C, hdr(2, std::uint64_t{1} << 62), milliseconds(1));
  r.record(kU2C, hdr(2, RecordedFrame::kMaxLength - 1), milliseconds(1));
  auto j = r.to_json();
  EXPECT_EQ(j[0]["length"], RecordedFrame::kMaxLength);
  EXPECT_EQ(j[0]["length_capped"], true);
  EXPECT_EQ(j[1]["length"], RecordedFrame::kMaxLength - 1);
  EXPECT_FALSE(j[1].contains("length_capped"));
}

TEST(FlightRecorder, ReleaseHandsOverTheFramesAndStopsRecording) {
  FlightRecorder r(2);
  r.record(kC2U, hdr(1, 3, true), milliseconds(1));
  auto log = r.release();
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->to_json().size(), 1u);
  r.record(kC2U, hdr(1, 4, true), milliseconds(2));
  r.record(kU2C, hdr(8, 2), milliseconds(2));
  r.record_close(kU2C, 1000, "");
  EXPECT_EQ(r.to_json().size(), 1u);  // still readable, nothing added
  EXPECT_EQ(log->to_json().size(), 1u);
}

TEST(FlightRecorder, FootprintOfAWarmIdleSession) {
  // The default (16 a direction): under 512 bytes with the allocation.
  EXPECT_EQ(sizeof(RecordedFrame), 12u);
  EXPECT_LT(FlightRecorder::footprint_bytes(16), 512u);
  FlightRecorder r(16);
  r.record(kC2U, hdr(1, 1, true), milliseconds(0));
  FlightLog log(16);
  log.record(kC2U, hdr(1, 1, true), 0);
  EXPECT_EQ(log.heap_bytes(), 2u * 16u * 12u);
  std::printf("flight recorder: sizeof(FlightRecorder)=%zu, block=%zu B, footprint(16)=%zu B\n",
              sizeof(FlightRecorder), log.heap_bytes(), FlightRecorder::footprint_bytes(16));
}

TEST(FlightRecorder, ReadersOnAnotherThreadSeeWholeEntries) {
  FlightRecorder r(8);
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<std::uint64_t> written{0};
  std::thread reader([&] {
    while (!done.load()) {
      const std::uint64_t before = written.load();
      bool complete = true;
      auto frames = r.to_json(&complete);
      // Both rings (8 each) are full once 16 headers went in; a direction
      // is left out only when the read says so.
      if (complete && before >= 16) {
        ASSERT_EQ(frames.size(), 16u);
      }
      if (!complete) {
        ASSERT_LT(frames.size(), 16u);
      }
      for (std::size_t i = 0; i < frames.size(); ++i) {
        auto& f = frames[i];
        // Each entry was written as one: its length matches its opcode.
        ASSERT_EQ(f["length"].get<std::uint64_t>() % 16, f["opcode"].get<std::uint64_t>());
        if (i > 0) {
          ASSERT_GE(f["t_ms"].get<int>(), frames[i - 1]["t_ms"].get<int>());
        }
      }
      ++reads;
    }
  });
  for (std::uint64_t i = 0; i < 200000 || (reads.load() < 10 && i < 100000000); ++i) {
    std::uint8_t op = static_cast<std::uint8_t>(i % 3);
    r.record(i % 2 ? kC2U : kU2C, hdr(op, i * 16 + op), milliseconds(i / 100));
    written.store(i + 1);
  }
  done = true;
  reader.join();
}

namespace {
std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
}  // namespace

TEST(FlightRecorder, TextPrefixLongerThanTheSettingIsCut) {
  FlightRecorder r(2, 8);
  r.record(kC2U, hdr(1, 20, true), milliseconds(1));
  r.record_text(kC2U, as_bytes("hello wonderful"), false);
  auto j = r.to_json();
  EXPECT_EQ(j[0]["text"], "hello ");
  EXPECT_EQ(j[0]["text_cut"], true);
}

TEST(FlightRecorder, TextPrefixesAreOffByDefault) {
  FlightRecorder r(4);
  r.record(kC2U, hdr(1, 5, true), milliseconds(1));
  r.record_text(kC2U, as_bytes("hello"), false);
  EXPECT_FALSE(r.to_json()[0].contains("text"));
}

TEST(FlightRecorder, TextPrefixGoesWithItsFrameRedactedWhenShown) {
  const std::string jwt =
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_"
      "XgL0n3I9PlFUP0THsR8U";
  FlightRecorder r(4, 124);
  r.record(kC2U, hdr(1, 11, true), milliseconds(1));
  r.record_text(kC2U, as_bytes("hello world"), false);
  r.record(kU2C, hdr(2, 4), milliseconds(2));
  r.record_text(kU2C, as_bytes("bin?"), false);  // not a text frame: ignored
  // A JWT cut by the prefix before its second dot: its word is dropped.
  const std::string msg = "{\"token\":\"" + jwt + "\"}";
  r.record(kU2C, hdr(1, msg.size()), milliseconds(3));
  r.record_text(kU2C, as_bytes(std::string_view(msg).substr(0, 48)), true);
  // Whole, the same JWT is redacted by shape.
  r.record(kC2U, hdr(1, 6 + jwt.size(), true), milliseconds(4));
  r.record_text(kC2U, as_bytes("token " + jwt), false);
  auto j = r.to_json();
  ASSERT_EQ(j.size(), 4u);
  EXPECT_EQ(j[0]["text"], "hello world");
  EXPECT_EQ(j[0]["text_cut"], false);
  EXPECT_FALSE(j[1].contains("text"));
  EXPECT_EQ(j[2]["text"], "{\"token\":\"");
  EXPECT_EQ(j[2]["text_cut"], true);
  EXPECT_EQ(j[3]["text"], "token [REDACTED]");
  EXPECT_EQ(j[3]["text_cut"], false);
  // The incident's copy shows the same.
  auto log = r.release();
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->to_json(), j);
}

TEST(FlightRecorder, TextPrefixLeavesWithItsSlot) {
  FlightRecorder r(2, 16);
  r.record(kC2U, hdr(1, 3, true), milliseconds(1));
  r.record_text(kC2U, as_bytes("one"), false);
  r.record(kC2U, hdr(1, 3, true), milliseconds(2));
  r.record(kC2U, hdr(1, 3, true), milliseconds(3));  // overwrites "one"'s slot
  auto j = r.to_json();
  ASSERT_EQ(j.size(), 2u);
  EXPECT_FALSE(j[0].contains("text"));
  EXPECT_FALSE(j[1].contains("text"));
}

TEST(FlightRecorder, TextPrefixNotUtf8IsFlaggedNotShown) {
  FlightRecorder r(2, 16);
  r.record(kU2C, hdr(1, 3), milliseconds(1));
  r.record_text(kU2C,
                as_bytes("a\xff"
                         "b"),
                false);
  auto j = r.to_json();
  EXPECT_FALSE(j[0].contains("text"));
  EXPECT_EQ(j[0]["text_not_utf8"], true);
}

TEST(FlightRecorder, TextPrefixFootprintOnlyWhenOn) {
  EXPECT_EQ(FlightRecorder::footprint_bytes(16, 0), FlightRecorder::footprint_bytes(16));
  // 32 bytes: a header word and 8 words per slot, 32 slots, in the block.
  EXPECT_EQ(FlightRecorder::footprint_bytes(16, 32),
            sizeof(FlightRecorder) + (2u * 16u * (12u + 36u) + 8u + 15u) / 16u * 16u);
  FlightRecorder r(16, 32);
  r.record(kC2U, hdr(1, 1, true), milliseconds(0));
  r.record_text(kC2U, as_bytes("x"), false);
  auto log = r.release();
  EXPECT_EQ(log->heap_bytes(), 2u * 16u * 12u + 2u * 16u * 34u);
  std::printf("flight recorder with 32 text bytes: footprint(16)=%zu B\n",
              FlightRecorder::footprint_bytes(16, 32));
}

TEST(FlightRecorder, ReadersSeeTextPrefixesWhole) {
  FlightRecorder r(4, 8);
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) {
      for (auto& f : r.to_json()) {
        if (!f.contains("text")) continue;
        // Each prefix repeats the last digit of its frame's length.
        const std::string t = f["text"].get<std::string>();
        const std::string want(8, static_cast<char>('0' + f["length"].get<std::uint64_t>() % 10));
        ASSERT_EQ(t, want);
      }
    }
  });
  for (std::uint64_t i = 0; i < 100000; ++i) {
    const std::uint64_t len = 10 + i % 10;
    r.record(kU2C, hdr(1, len), milliseconds(i / 100));
    r.record_text(kU2C, as_bytes(std::string(8, static_cast<char>('0' + i % 10))), false);
  }
  done = true;
  reader.join();
}
