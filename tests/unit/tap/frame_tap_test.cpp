// Every framing rule of the tap, valid and invalid, each stream fed whole, cut
// at every byte boundary, byte by byte and (short streams) at every pair of
// boundaries, with identical results (check_splits).

#include "proxy/tap/frame_tap.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "tests/unit/tap/split_check.hpp"

using namespace wsgate::tap;
using namespace wsgate::tap::testing;

namespace {

constexpr uint8_t kCont = 0x0, kText = 0x1, kBin = 0x2, kClose = 0x8, kPing = 0x9, kPong = 0xA;

Bytes filled(size_t n, uint8_t seed = 1) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}

}  // namespace

// ---------------------------------------------------------------- basics

TEST(FrameTap, ClientTextMessage) {
  const Bytes in = cframe(kText, bytes("Hello"));
  EXPECT_EQ(in.size(), 11u);  // RFC 6455 5.7: 0x81 0x85 37 fa 21 3d 7f 9f 4d 51 58
  EXPECT_EQ(hex(in), "818537fa213d7f9f4d5158");
  const Outcome o = check_splits(client_cfg(), in);
  EXPECT_EQ(o.events, (Events{"text 5"}));
  EXPECT_FALSE(o.failed);
  EXPECT_TRUE(o.at_frame_boundary);
  EXPECT_EQ(o.stats.frames[kText], 1u);
  EXPECT_EQ(o.stats.bytes, 11u);
  EXPECT_EQ(o.stats.payload_bytes, 5u);
  EXPECT_EQ(o.stats.messages, 1u);
  EXPECT_EQ(o.stats.text_messages, 1u);
}

TEST(FrameTap, ServerBinaryMessage) {
  const Outcome o = check_splits(server_cfg(), sframe(kBin, filled(20)));
  EXPECT_EQ(o.events, (Events{"binary 20"}));
  EXPECT_FALSE(o.failed);
  EXPECT_EQ(o.stats.binary_messages, 1u);
}

TEST(FrameTap, EmptyFramesAndEmptyChunks) {
  const Bytes in = concat(cframe(kText, {}), cframe(kPing, {}), cframe(kBin, {}));
  const Outcome o = check_splits(client_cfg(), in);
  EXPECT_EQ(o.events, (Events{"text 0", "ping ", "binary 0"}));
  RecordingSink sink;
  FrameTap tap(client_cfg(), &sink);
  EXPECT_EQ(tap.feed(nullptr, 0), Violation::none);
  EXPECT_TRUE(tap.at_frame_boundary());
}

TEST(FrameTap, AtFrameBoundaryOnlyBetweenFrames) {
  const Bytes in = concat(cframe(kBin, filled(300)), cframe(kPing, bytes("x")));
  FrameTap tap(client_cfg());
  std::set<size_t> boundaries;
  for (size_t i = 0; i < in.size(); ++i) {
    if (tap.at_frame_boundary()) boundaries.insert(i);
    tap.feed(&in[i], 1);
  }
  EXPECT_TRUE(tap.at_frame_boundary());
  const size_t first = 2 + 2 + 4 + 300;
  EXPECT_EQ(boundaries, (std::set<size_t>{0, first}));
}

// ---------------------------------------------------------------- lengths

TEST(FrameTap, SevenSixteenAndSixtyFourBitLengths) {
  for (size_t len : {size_t{0}, size_t{1}, size_t{125}, size_t{126}, size_t{127}, size_t{65535},
                     size_t{65536}, size_t{70000}}) {
    SCOPED_TRACE(len);
    const Bytes c = cframe(kBin, filled(len));
    const size_t hdr = len < 126 ? 6 : len < 65536 ? 8 : 14;
    ASSERT_EQ(c.size(), hdr + len);
    Outcome o = check_splits(client_cfg(), c);
    EXPECT_EQ(o.events, (Events{"binary " + std::to_string(len)}));
    EXPECT_FALSE(o.failed);
    o = check_splits(server_cfg(), sframe(kBin, filled(len)));
    EXPECT_EQ(o.events, (Events{"binary " + std::to_string(len)}));
  }
}

TEST(FrameTap, NonMinimalLengths) {
  Outcome o = check_splits(client_cfg(), cframe(kBin, filled(125), {.form = LenForm::len16}));
  EXPECT_EQ(o.first_violation, Violation::length_not_minimal);
  o = check_splits(client_cfg(), cframe(kBin, filled(0), {.form = LenForm::len16}));
  EXPECT_EQ(o.first_violation, Violation::length_not_minimal);
  o = check_splits(client_cfg(), cframe(kBin, filled(65535), {.form = LenForm::len64}));
  EXPECT_EQ(o.first_violation, Violation::length_not_minimal);
  o = check_splits(client_cfg(), cframe(kBin, filled(3), {.form = LenForm::len64}));
  EXPECT_EQ(o.first_violation, Violation::length_not_minimal);
  // The boundaries themselves are minimal.
  EXPECT_FALSE(
      check_splits(client_cfg(), cframe(kBin, filled(126), {.form = LenForm::len16})).failed);
  EXPECT_FALSE(
      check_splits(client_cfg(), cframe(kBin, filled(65536), {.form = LenForm::len64})).failed);
}

TEST(FrameTap, SixtyFourBitLengthWithMsbSet) {
  FrameOpts o{.form = LenForm::len64, .announced = (uint64_t{1} << 63) + 5};
  const Outcome out = check_splits(server_cfg(), sframe(kBin, {}, o));
  EXPECT_EQ(out.first_violation, Violation::length_msb_set);
  EXPECT_EQ(out.events, (Events{"violation length_msb_set"}));
  EXPECT_FALSE(out.at_frame_boundary);
}

TEST(FrameTap, OneTebibyteRefusedAtTheHeader) {
  FrameOpts o{.announced = uint64_t{1} << 40};
  const Bytes header = cframe(kBin, {}, o);  // 14 bytes, no payload follows
  ASSERT_EQ(header.size(), 14u);
  RecordingSink sink;
  FrameTap tap(client_cfg(), &sink);
  EXPECT_EQ(tap.feed(header.data(), header.size()), Violation::message_too_big);
  EXPECT_TRUE(tap.failed());
  EXPECT_EQ(tap.first_violation_offset(), 0u);
  EXPECT_FALSE(tap.at_frame_boundary());
  EXPECT_EQ(sink.events, (Events{"violation message_too_big"}));
  // Payload bytes keep being skipped without effect.
  const Bytes junk = filled(1 << 16);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(tap.feed(junk.data(), junk.size()), Violation::none);
  EXPECT_EQ(tap.stats().payload_bytes, uint64_t{1} << 40);
  // Same for the split header.
  const Outcome split = check_splits(client_cfg(), header);
  EXPECT_EQ(split.first_violation, Violation::message_too_big);
}

// ---------------------------------------------------------------- opcodes, bits, masks

TEST(FrameTap, ReservedOpcodes) {
  for (uint8_t opc : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    SCOPED_TRACE(int{opc});
    const Outcome o =
        check_splits(client_cfg(), concat(cframe(opc, bytes("abc")), cframe(kText, bytes("ok"))));
    EXPECT_EQ(o.events, (Events{"violation reserved_opcode", "text 2"}));
    EXPECT_EQ(o.stats.frames[opc], 1u);
    EXPECT_EQ(o.stats.control_frames, 0u);
    EXPECT_EQ(opcode_label(opc), "reserved");
  }
}

TEST(FrameTap, ReservedBitsWithoutDeflate) {
  for (uint8_t rsv : {0x40, 0x20, 0x10, 0x70}) {
    SCOPED_TRACE(int{rsv});
    const Outcome o = check_splits(client_cfg(), cframe(kText, bytes("x"), {.rsv = rsv}));
    EXPECT_EQ(o.first_violation, Violation::reserved_bits);
    EXPECT_EQ(o.events, (Events{"violation reserved_bits", "text 1"}));
  }
}

TEST(FrameTap, Rsv1WithDeflate) {
  TapConfig cfg = client_cfg();
  cfg.deflate_negotiated = true;
  // RSV1 on the first frame of a data message: compressed, fine.
  Outcome o =
      check_splits(cfg, concat(cframe(kText, bytes("ab"), {.fin = false, .rsv = 0x40}),
                               cframe(kCont, bytes("cd")), cframe(kBin, bytes("e"), {.rsv = 0x40}),
                               cframe(kBin, bytes("f"))));
  EXPECT_EQ(o.events, (Events{"text 4 compressed", "binary 1 compressed", "binary 1"}));
  EXPECT_EQ(o.stats.compressed_messages, 2u);
  EXPECT_FALSE(o.failed);
  // RSV1 on a continuation frame.
  o = check_splits(cfg, concat(cframe(kText, bytes("ab"), {.fin = false, .rsv = 0x40}),
                               cframe(kCont, bytes("cd"), {.rsv = 0x40})));
  EXPECT_EQ(o.first_violation, Violation::reserved_bits);
  // RSV1 on control frames.
  for (uint8_t opc : {kPing, kPong, kClose}) {
    o = check_splits(cfg, cframe(opc, {}, {.rsv = 0x40}));
    EXPECT_EQ(o.first_violation, Violation::reserved_bits) << int{opc};
  }
  // RSV2 and RSV3 stay reserved.
  o = check_splits(cfg, cframe(kText, bytes("x"), {.rsv = 0x20}));
  EXPECT_EQ(o.first_violation, Violation::reserved_bits);
}

TEST(FrameTap, MaskRules) {
  Outcome o = check_splits(client_cfg(), sframe(kText, bytes("unmasked")));
  EXPECT_EQ(o.events, (Events{"violation mask_missing", "text 8"}));
  o = check_splits(server_cfg(), cframe(kText, bytes("masked")));
  EXPECT_EQ(o.events, (Events{"violation mask_unexpected", "text 6"}));
  // A zero key is still a mask.
  o = check_splits(server_cfg(), frame(kText, bytes("z"), {.mask = 0u}));
  EXPECT_EQ(o.first_violation, Violation::mask_unexpected);
}

// ---------------------------------------------------------------- control frames

TEST(FrameTap, PingPongPayloadsUnmasked) {
  const Bytes p = bytes("rtt-probe-42");
  Outcome o = check_splits(client_cfg(), concat(cframe(kPing, p), cframe(kPong, p)));
  EXPECT_EQ(o.events, (Events{"ping " + hex(p), "pong " + hex(p)}));
  EXPECT_EQ(o.stats.control_frames, 2u);
  EXPECT_EQ(o.stats.frames[kPing], 1u);
  EXPECT_EQ(o.stats.frames[kPong], 1u);
  const Bytes max = filled(125, 9);
  o = check_splits(server_cfg(), sframe(kPing, max));
  EXPECT_EQ(o.events, (Events{"ping " + hex(max)}));
}

TEST(FrameTap, ControlTooLong) {
  for (uint8_t opc : {kPing, kPong, kClose}) {
    SCOPED_TRACE(int{opc});
    const Outcome o =
        check_splits(client_cfg(), concat(cframe(opc, filled(126)), cframe(kText, bytes("after"))));
    // The payload is skipped, never buffered; an oversized close is not decoded.
    EXPECT_EQ(o.events, (Events{"violation control_too_long", "text 5"}));
    EXPECT_FALSE(o.close_seen);
    EXPECT_EQ(o.stats.control_frames, 1u);
  }
}

TEST(FrameTap, ControlFragmented) {
  const Outcome o = check_splits(client_cfg(), cframe(kPing, bytes("p"), {.fin = false}));
  EXPECT_EQ(o.events, (Events{"violation control_fragmented", "ping 70"}));
}

// ---------------------------------------------------------------- fragmentation

TEST(FrameTap, FragmentedWithInterleavedControlFrames) {
  const Bytes in = concat(cframe(kText, bytes("Hel"), {.fin = false}), cframe(kPing, bytes("1")),
                          cframe(kCont, bytes("lo, "), {.fin = false}), cframe(kPong, bytes("2")),
                          cframe(kCont, {}, {.fin = false}), cframe(kCont, bytes("world")));
  TapConfig cfg = client_cfg();
  cfg.capture_text_bytes = 64;
  cfg.validate_text_utf8 = true;
  const Outcome o = check_splits(cfg, in);
  EXPECT_EQ(o.events, (Events{"ping 31", "pong 32", "text 12"}));
  EXPECT_EQ(o.last_text, "Hello, world");
  EXPECT_FALSE(o.failed);
  EXPECT_EQ(o.stats.frames[kText], 1u);
  EXPECT_EQ(o.stats.frames[kCont], 3u);
  EXPECT_EQ(o.stats.fragmented_messages, 1u);
  EXPECT_EQ(o.stats.messages, 1u);
  EXPECT_EQ(o.stats.control_frames, 2u);
  EXPECT_FALSE(o.in_message);
}

TEST(FrameTap, InMessageBetweenFragments) {
  FrameTap tap(server_cfg());
  const Bytes a = sframe(kBin, bytes("a"), {.fin = false});
  tap.feed(a.data(), a.size());
  EXPECT_TRUE(tap.in_message());
  EXPECT_TRUE(tap.at_frame_boundary());  // a control frame may be injected here
  const Bytes b = sframe(kCont, bytes("b"));
  tap.feed(b.data(), b.size());
  EXPECT_FALSE(tap.in_message());
}

TEST(FrameTap, UnexpectedContinuation) {
  const Outcome o =
      check_splits(server_cfg(), concat(sframe(kCont, bytes("x")), sframe(kText, bytes("y"))));
  EXPECT_EQ(o.events, (Events{"violation unexpected_continuation", "text 1"}));
  EXPECT_EQ(o.first_violation_offset, 0u);
}

TEST(FrameTap, ExpectedContinuation) {
  const Bytes first = sframe(kText, bytes("part"), {.fin = false});
  const Outcome o = check_splits(server_cfg(), concat(first, sframe(kBin, bytes("new"))));
  EXPECT_EQ(o.events, (Events{"violation expected_continuation", "binary 3"}));
  EXPECT_EQ(o.first_violation_offset, first.size());
  EXPECT_EQ(o.stats.messages, 1u);
}

TEST(FrameTap, MessageSizeCapAcrossFragments) {
  TapConfig cfg = client_cfg();
  cfg.max_message_bytes = 10;
  // Exactly at the cap: fine.
  Outcome o =
      check_splits(cfg, concat(cframe(kBin, filled(6), {.fin = false}), cframe(kCont, filled(4))));
  EXPECT_FALSE(o.failed);
  EXPECT_EQ(o.events, (Events{"binary 10"}));
  // One byte over, decided at the second header.
  const Bytes first = cframe(kBin, filled(6), {.fin = false});
  o = check_splits(cfg, concat(first, cframe(kCont, filled(5))));
  EXPECT_EQ(o.events, (Events{"violation message_too_big", "binary 11"}));
  EXPECT_EQ(o.first_violation_offset, first.size());
  // The cap is per message.
  o = check_splits(cfg, concat(cframe(kBin, filled(10)), cframe(kBin, filled(10))));
  EXPECT_FALSE(o.failed);
  // 0 = no cap.
  cfg.max_message_bytes = 0;
  FrameTap tap(cfg);
  const Bytes huge = cframe(kBin, {}, {.announced = uint64_t{1} << 62});
  EXPECT_EQ(tap.feed(huge.data(), huge.size()), Violation::none);
}

TEST(FrameTap, DefaultCapIsSixteenMebibytes) {
  EXPECT_EQ(TapConfig{}.max_message_bytes, uint64_t{16} << 20);
  FrameTap tap(server_cfg());
  Bytes h = sframe(kBin, {}, {.announced = uint64_t{16} << 20});
  EXPECT_EQ(tap.feed(h.data(), h.size()), Violation::none);
  FrameTap tap2(server_cfg());
  h = sframe(kBin, {}, {.announced = (uint64_t{16} << 20) + 1});
  EXPECT_EQ(tap2.feed(h.data(), h.size()), Violation::message_too_big);
}

TEST(FrameTap, TooManyFragments) {
  TapConfig cfg = server_cfg();
  cfg.max_fragments_per_message = 3;
  Bytes ok = concat(sframe(kBin, bytes("a"), {.fin = false}), sframe(kCont, {}, {.fin = false}),
                    sframe(kCont, bytes("c")));
  EXPECT_FALSE(check_splits(cfg, ok).failed);
  Bytes bad = concat(sframe(kBin, bytes("a"), {.fin = false}), sframe(kCont, {}, {.fin = false}),
                     sframe(kCont, {}, {.fin = false}), sframe(kCont, bytes("d")));
  const Outcome o = check_splits(cfg, bad);
  EXPECT_EQ(o.events, (Events{"violation too_many_fragments", "binary 2"}));
  EXPECT_EQ(o.stats.violations, 1u);  // the 4th frame
}

// ---------------------------------------------------------------- close frames

TEST(FrameTap, CloseWithCodeAndReason) {
  const Outcome o = check_splits(client_cfg(), cframe(kClose, close_payload(1000, "bye")));
  EXPECT_EQ(o.events, (Events{"close 1000 bye"}));
  EXPECT_TRUE(o.close_seen);
  EXPECT_EQ(o.close_code, 1000);
  EXPECT_EQ(o.close_reason, "bye");
  EXPECT_FALSE(o.failed);
}

TEST(FrameTap, CloseEmptyReports1005) {
  const Outcome o = check_splits(server_cfg(), sframe(kClose, {}));
  EXPECT_EQ(o.events, (Events{"close 1005 "}));
  EXPECT_EQ(o.close_code, 1005);
  EXPECT_FALSE(o.failed);
}

TEST(FrameTap, CloseOneBytePayload) {
  const Outcome o = check_splits(server_cfg(), sframe(kClose, Bytes{0x03}));
  EXPECT_EQ(o.events, (Events{"violation close_payload_one_byte", "close 1005 "}));
  EXPECT_TRUE(o.close_seen);
}

TEST(FrameTap, CloseLongestReasonAndUtf8) {
  const std::string reason(123, 'r');
  Outcome o = check_splits(client_cfg(), cframe(kClose, close_payload(4000, reason)));
  EXPECT_EQ(o.close_reason, reason);
  EXPECT_EQ(o.close_code, 4000);
  // Multi-byte reason, split anywhere (mask rotation across splits).
  const std::string kosme = "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5 \xF0\x9F\x98\x80";
  o = check_splits(client_cfg(), cframe(kClose, close_payload(1001, kosme)));
  EXPECT_EQ(o.close_reason, kosme);
  EXPECT_FALSE(o.failed);
  // Invalid: a lone continuation byte, a surrogate, a truncated sequence.
  for (std::string bad :
       {std::string("ok\x80"), std::string("\xED\xA0\x80"), std::string("\xCE")}) {
    o = check_splits(client_cfg(), cframe(kClose, close_payload(1000, bad)));
    EXPECT_EQ(o.events.front(), "violation close_reason_not_utf8");
    EXPECT_EQ(o.close_code, 1000);
  }
}

TEST(FrameTap, CloseCodesTable) {
  std::set<uint16_t> valid;
  for (uint32_t c = 0; c <= 0xFFFF; ++c) {
    if (close_code_valid_on_wire(static_cast<uint16_t>(c))) valid.insert(static_cast<uint16_t>(c));
  }
  EXPECT_EQ(valid.size(), 4u + 8u + 2000u);  // 1000-1003, 1007-1014, 3000-4999
  for (uint16_t c : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
                     3999, 4000, 4999}) {
    EXPECT_TRUE(valid.count(c)) << c;
  }
  for (uint16_t c : {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    EXPECT_FALSE(valid.count(c)) << c;
  }
  // Through the tap, whole, for every code up to 5000 and a spread above.
  for (uint32_t c = 0; c <= 0xFFFF; c += (c < 5100 ? 1 : 97)) {
    const auto code = static_cast<uint16_t>(c);
    const Bytes in = sframe(kClose, close_payload(code, "r"));
    RecordingSink sink;
    FrameTap tap(server_cfg(), &sink);
    const Violation v = tap.feed(in.data(), in.size());
    ASSERT_EQ(v, valid.count(code) ? Violation::none : Violation::close_code_invalid) << c;
    ASSERT_EQ(tap.close_code(), code);
  }
  // And split everywhere for the edges.
  for (uint16_t c : {999, 1000, 1004, 1005, 1006, 1014, 1015, 2999, 3000, 4999, 5000}) {
    const Outcome o = check_splits(client_cfg(), cframe(kClose, close_payload(c)));
    EXPECT_EQ(o.failed, !valid.count(c)) << c;
  }
}

TEST(FrameTap, ParseClosePayloadDirectly) {
  EXPECT_EQ(parse_close_payload({}).code, 1005);
  const Bytes one{0x03};
  EXPECT_EQ(parse_close_payload(one).violation, Violation::close_payload_one_byte);
  const Bytes p = close_payload(1011, "Factory SSOT validation failed");
  const ClosePayload cp = parse_close_payload(p);
  EXPECT_EQ(cp.code, 1011);
  EXPECT_EQ(cp.reason, "Factory SSOT validation failed");
  EXPECT_EQ(cp.violation, Violation::none);
}

TEST(FrameTap, FrameAfterClose) {
  const Bytes close = cframe(kClose, close_payload(1000, "done"));
  // The reason is kept where the close payload was gathered: what follows
  // the close (a ping, a text frame the prefix option would gather, another
  // close) must not overwrite it.
  TapConfig cfg = client_cfg();
  cfg.text_prefix_bytes = 32;
  const Outcome o = check_splits(
      cfg, concat(close, cframe(kPing, bytes("late ping payload")), cframe(kText, bytes("zzzzzz")),
                  cframe(kClose, close_payload(1001, "second"))));
  EXPECT_EQ(o.events, (Events{"close 1000 done", "violation frame_after_close",
                              "violation frame_after_close", "violation frame_after_close"}));
  EXPECT_EQ(o.close_code, 1000);  // the first close stays
  EXPECT_EQ(o.close_reason, "done");
  EXPECT_EQ(o.first_violation_offset, close.size());
  EXPECT_EQ(o.stats.frames[kClose], 2u);
  EXPECT_EQ(o.stats.frames[kPing], 1u);
  EXPECT_EQ(o.stats.frames[kText], 1u);
}

// ---------------------------------------------------------------- text capture

TEST(FrameTap, CapturesLastTextWithMaskRotation) {
  TapConfig cfg = client_cfg();
  cfg.capture_text_bytes = 4096;
  // Fragment sizes not multiples of 4, so the mask key phase moves across frames.
  const Bytes in =
      concat(cframe(kText, bytes("first"), {}),
             cframe(kText, bytes("{\"type\":\"er"), {.fin = false, .mask = 0x01020304u}),
             cframe(kPing, bytes("p")),
             cframe(kCont, bytes("ror\",\"code\":1011}"), {.mask = 0xA5B6C7D8u}),
             cframe(kBin, filled(33)));  // binary does not replace the text
  const Outcome o = check_splits(cfg, in);
  EXPECT_EQ(o.last_text, "{\"type\":\"error\",\"code\":1011}");
  EXPECT_FALSE(o.last_text_truncated);
  EXPECT_FALSE(o.last_text_compressed);
}

TEST(FrameTap, CaptureTruncates) {
  TapConfig cfg = server_cfg();
  cfg.capture_text_bytes = 8;
  Outcome o = check_splits(cfg, sframe(kText, bytes("0123456789")));
  EXPECT_EQ(o.last_text, "01234567");
  EXPECT_TRUE(o.last_text_truncated);
  // Exactly the capacity, then a further fragment.
  o = check_splits(cfg, concat(sframe(kText, bytes("01234567"), {.fin = false}),
                               sframe(kCont, {}, {.fin = false}), sframe(kCont, bytes("8"))));
  EXPECT_EQ(o.last_text, "01234567");
  EXPECT_TRUE(o.last_text_truncated);
  o = check_splits(cfg, sframe(kText, bytes("01234567")));
  EXPECT_FALSE(o.last_text_truncated);
}

TEST(FrameTap, CaptureKeepsLastCompleteWhileNextIsOpen) {
  TapConfig cfg = server_cfg();
  cfg.capture_text_bytes = 16;
  FrameTap tap(cfg);
  EXPECT_EQ(tap.last_text(), "");
  const Bytes in =
      concat(sframe(kText, bytes("complete")), sframe(kText, bytes("partial"), {.fin = false}));
  tap.feed(in.data(), in.size());
  EXPECT_EQ(tap.last_text(), "complete");
  const Bytes end = sframe(kCont, bytes("!"));
  tap.feed(end.data(), end.size());
  EXPECT_EQ(tap.last_text(), "partial!");
}

TEST(FrameTap, CaptureCompressedFlag) {
  TapConfig cfg = server_cfg();
  cfg.deflate_negotiated = true;
  cfg.capture_text_bytes = 16;
  const Bytes deflated{0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00};  // "Hello", raw deflate
  const Outcome o = check_splits(cfg, sframe(kText, deflated, {.rsv = 0x40}));
  EXPECT_TRUE(o.last_text_compressed);
  EXPECT_EQ(o.last_text, std::string(deflated.begin(), deflated.end()));
}

TEST(FrameTap, CaptureOffCapturesNothing) {
  const Outcome o = check_splits(server_cfg(), sframe(kText, bytes("x")));
  EXPECT_EQ(o.last_text, "");
}

// ---------------------------------------------------------------- text UTF-8 (optional)

TEST(FrameTap, TextUtf8OffByDefault) {
  const Outcome o = check_splits(client_cfg(), cframe(kText, Bytes{0xFF, 0xFE}));
  EXPECT_FALSE(o.failed);
}

TEST(FrameTap, TextUtf8Validation) {
  TapConfig cfg = client_cfg();
  cfg.validate_text_utf8 = true;
  // A 4-byte sequence split across fragments is fine.
  Outcome o = check_splits(cfg, concat(cframe(kText, Bytes{'a', 0xF0, 0x9F}, {.fin = false}),
                                       cframe(kCont, Bytes{0x98, 0x80, 'b'})));
  EXPECT_FALSE(o.failed);
  // Invalid byte: reported once, fail fast.
  o = check_splits(cfg, cframe(kText, Bytes{'a', 0xC0, 0xAF, 'b', 0xFF}));
  EXPECT_EQ(o.events, (Events{"violation text_not_utf8", "text 5"}));
  // Message ends inside a sequence.
  o = check_splits(
      cfg, concat(cframe(kText, Bytes{'a', 0xE2, 0x82}, {.fin = false}), cframe(kCont, {})));
  EXPECT_EQ(o.events, (Events{"violation text_not_utf8", "text 3"}));
  // Binary is never validated; a later valid text message passes.
  o = check_splits(cfg, concat(cframe(kBin, Bytes{0xFF}), cframe(kText, bytes("\xE2\x82\xAC"))));
  EXPECT_FALSE(o.failed);
  // Compressed text cannot be validated without inflating; it is skipped.
  cfg.deflate_negotiated = true;
  o = check_splits(cfg, cframe(kText, Bytes{0xFF}, {.rsv = 0x40}));
  EXPECT_FALSE(o.failed);
}

// ---------------------------------------------------------------- stats and offsets

TEST(FrameTap, StatsExactForMixedStream) {
  TapConfig cfg = server_cfg();
  const Bytes in = concat(sframe(kText, bytes("a")),                               // 3 bytes
                          sframe(kBin, filled(200), {.fin = false}),               // 4 + 200
                          sframe(kPing, bytes("pp")),                              // 4
                          sframe(kCont, filled(70000)),                            // 10 + 70000
                          sframe(kPong, {}),                                       // 2
                          sframe(6, bytes("r")),                                   // 3 reserved
                          sframe(kClose, close_payload(1011, "Internal error")));  // 2 + 16
  const Outcome o = check_splits(cfg, in);
  TapStats want;
  want.frames[kText] = 1;
  want.frames[kBin] = 1;
  want.frames[kPing] = 1;
  want.frames[kCont] = 1;
  want.frames[kPong] = 1;
  want.frames[6] = 1;
  want.frames[kClose] = 1;
  want.bytes = in.size();
  want.payload_bytes = 1 + 200 + 2 + 70000 + 0 + 1 + 16;
  want.messages = 2;
  want.text_messages = 1;
  want.binary_messages = 1;
  want.fragmented_messages = 1;
  want.control_frames = 3;
  want.violations = 1;
  EXPECT_EQ(o.stats, want);
  for (size_t k = 0; k < kViolationKinds; ++k)
    EXPECT_EQ(o.violation_kinds[k], k == static_cast<size_t>(Violation::reserved_opcode) ? 1u : 0u)
        << to_string(static_cast<Violation>(k));
  EXPECT_EQ(in.size(), 3u + 204 + 4 + 70010 + 2 + 3 + 18);
  EXPECT_EQ(o.events, (Events{"text 1", "ping 7070", "binary 70200", "pong ",
                              "violation reserved_opcode", "close 1011 Internal error"}));
  EXPECT_EQ(o.first_violation_offset, 3u + 204 + 4 + 70010 + 2);
}

TEST(FrameTap, FeedReturnsFirstViolationOfChunkOnly) {
  FrameTap tap(client_cfg());
  const Bytes a = concat(sframe(kText, bytes("x")), cframe(3, {}));
  EXPECT_EQ(tap.feed(a.data(), a.size()), Violation::mask_missing);
  const Bytes b = cframe(kText, bytes("fine"));
  EXPECT_EQ(tap.feed(b.data(), b.size()), Violation::none);
  EXPECT_TRUE(tap.failed());
  EXPECT_EQ(tap.first_violation(), Violation::mask_missing);
  EXPECT_EQ(tap.stats().violations, 2u);
}

TEST(FrameTap, ViolationLabelsAreStableSnakeCase) {
  std::set<std::string_view> seen;
  for (size_t i = 0; i < kViolationKinds; ++i) {
    const std::string_view s = to_string(static_cast<Violation>(i));
    EXPECT_TRUE(seen.insert(s).second) << s;
    for (char c : s) EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_' || (c >= '0' && c <= '9')) << s;
  }
  EXPECT_EQ(to_string(Violation::none), "none");
  EXPECT_EQ(to_string(Violation::message_too_big), "message_too_big");
  EXPECT_EQ(to_string(Violation::frame_after_close), "frame_after_close");
  EXPECT_EQ(to_string(Violation::close_reason_not_utf8), "close_reason_not_utf8");
  EXPECT_EQ(to_string(Direction::client_to_upstream), "client_to_upstream");
  EXPECT_EQ(to_string(Direction::upstream_to_client), "upstream_to_client");
  EXPECT_EQ(opcode_label(0), "continuation");
  EXPECT_EQ(opcode_label(0xA), "pong");
}

// ---------------------------------------------------------------- frame headers

namespace {

struct HeaderSink : TapSink {
  std::vector<FrameHeader> headers;
  std::vector<std::string> order;  // on_frame before the frame's other events
  void on_frame(const FrameHeader& h) override {
    headers.push_back(h);
    order.push_back("frame");
  }
  void on_close(uint16_t, std::string_view) override { order.push_back("close"); }
};

}  // namespace

TEST(FrameTap, ReportsEveryFrameHeaderWhenAsked) {
  const Bytes in =
      concat(cframe(kText, bytes("abc"), FrameOpts{.fin = false}), cframe(kCont, filled(300)),
             cframe(kPing, {}), cframe(kClose, close_payload(1000)));
  for (size_t split : {size_t{0}, size_t{1}, size_t{3}, in.size() - 1}) {
    SCOPED_TRACE(split);
    TapConfig cfg = client_cfg();
    cfg.report_frames = true;
    HeaderSink sink;
    FrameTap tap(cfg, &sink);
    tap.feed(in.data(), split);
    tap.feed(in.data() + split, in.size() - split);
    ASSERT_EQ(sink.headers.size(), 4u);
    EXPECT_EQ(sink.headers[0].opcode, kText);
    EXPECT_FALSE(sink.headers[0].fin);
    EXPECT_EQ(sink.headers[0].length, 3u);
    EXPECT_TRUE(sink.headers[0].masked);
    EXPECT_EQ(sink.headers[1].opcode, kCont);
    EXPECT_TRUE(sink.headers[1].fin);
    EXPECT_EQ(sink.headers[1].length, 300u);
    EXPECT_EQ(sink.headers[2].opcode, kPing);
    EXPECT_EQ(sink.headers[3].opcode, kClose);
    EXPECT_EQ(sink.headers[3].length, 2u);
    EXPECT_EQ(sink.order, (std::vector<std::string>{"frame", "frame", "frame", "frame", "close"}));
  }
}

TEST(FrameTap, ReportsRsvBits) {
  TapConfig cfg = server_cfg();
  cfg.report_frames = true;
  HeaderSink sink;
  FrameTap tap(cfg, &sink);
  const Bytes in = sframe(kText, bytes("x"), FrameOpts{.rsv = 0x50});
  tap.feed(in.data(), in.size());
  ASSERT_EQ(sink.headers.size(), 1u);
  EXPECT_EQ(sink.headers[0].rsv, 5u);
  EXPECT_FALSE(sink.headers[0].masked);
}

TEST(FrameTap, NoFrameHeadersUnlessAsked) {
  HeaderSink sink;
  FrameTap tap(client_cfg(), &sink);
  const Bytes in = concat(cframe(kText, bytes("abc")), cframe(kPing, {}));
  tap.feed(in.data(), in.size());
  EXPECT_TRUE(sink.headers.empty());
}

// ---------------------------------------------------------------- text prefixes

TEST(FrameTap, TextPrefixOfEachTextMessageUnmaskedAtAnySplit) {
  TapConfig cfg = client_cfg();
  cfg.text_prefix_bytes = 5;
  const Bytes in = concat(cframe(kText, bytes("hello world")), cframe(kText, bytes("hi")),
                          cframe(kBin, bytes("binary bytes")), cframe(kText, bytes("exact")));
  const Outcome o = check_splits(cfg, in);
  EXPECT_EQ(o.events, (Events{"prefix hello cut", "text 11", "prefix hi", "text 2", "binary 12",
                              "prefix exact", "text 5"}));
}

TEST(FrameTap, TextPrefixOnlyFromAMessagesFirstFrame) {
  TapConfig cfg = server_cfg();
  cfg.text_prefix_bytes = 4;
  const Bytes in = concat(sframe(kText, bytes("first "), FrameOpts{.fin = false}),
                          sframe(kPing, bytes("p")), sframe(kCont, bytes("second part")));
  const Outcome o = check_splits(cfg, in);
  EXPECT_EQ(o.events, (Events{"prefix firs cut", "ping 70", "text 17"}));
}

TEST(FrameTap, TextPrefixSkipsCompressedAndEmptyAndIsOffByDefault) {
  TapConfig cfg = server_cfg();
  cfg.deflate_negotiated = true;
  cfg.text_prefix_bytes = 8;
  const Bytes compressed =
      concat(sframe(kText, bytes("zzzz"), FrameOpts{.rsv = 0x40}), sframe(kText, {}));
  EXPECT_EQ(check_splits(cfg, compressed).events, (Events{"text 4 compressed", "text 0"}));
  EXPECT_EQ(check_splits(server_cfg(), sframe(kText, bytes("hello"))).events, (Events{"text 5"}));
}

TEST(FrameTap, TextPrefixIsCappedAtAControlPayload) {
  TapConfig cfg = client_cfg();
  cfg.text_prefix_bytes = 255;
  const std::string text(300, 'a');
  const Outcome o = check_splits(cfg, cframe(kText, bytes(text)));
  EXPECT_EQ(o.events, (Events{"prefix " + std::string(125, 'a') + " cut", "text 300"}));
}
