#pragma once
// Shared body of fuzz_tap_client and fuzz_tap_server.
//
// Input layout: byte 0 = configuration bits, byte 1 = seed of the chunking,
// the rest = the byte stream of one direction.
//   bit 0 deflate negotiated          bit 1 validate text UTF-8
//   bit 2 capture text, capacity 1 + 7 * (bits 3-4)
//   bit 5 max_message_bytes = 300     bit 6 max_fragments_per_message = 4
//
// Oracles: (1) fed whole, fed in seed-driven chunks (empty ones included) and
// fed byte by byte, everything observable is identical; (2) frame counts,
// payload bytes and ping/pong/close events agree with a straightforward
// whole-buffer reference decoder; (3) internal consistency of the stats.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "proxy/tap/frame_tap.hpp"
#include "tests/fuzz/fuzz_check.hpp"
#include "tests/unit/tap/tap_test_util.hpp"

namespace wsgate::tap::fuzz {

using namespace wsgate::tap::testing;

struct Reference {
  uint64_t frames[16] = {};
  uint64_t payload_bytes = 0;
  std::vector<std::string> control_events;
};

inline Reference reference_decode(std::span<const uint8_t> in) {
  Reference r;
  bool closed = false;
  size_t pos = 0;
  while (in.size() - pos >= 2) {
    const uint8_t b0 = in[pos], b1 = in[pos + 1];
    const uint8_t len7 = b1 & 0x7F;
    const size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    const size_t hdr = 2 + ext + ((b1 & 0x80) ? 4 : 0);
    if (in.size() - pos < hdr) break;
    uint64_t len = len7;
    if (ext) {
      len = 0;
      for (size_t i = 0; i < ext; ++i) len = (len << 8) | in[pos + 2 + i];
    }
    const uint8_t opc = b0 & 0x0F;
    ++r.frames[opc];
    r.payload_bytes += len;
    if (len > in.size() - pos - hdr) break;  // payload incomplete
    const uint8_t* key = (b1 & 0x80) ? &in[pos + 2 + ext] : nullptr;
    Bytes payload(in.begin() + static_cast<std::ptrdiff_t>(pos + hdr),
                  in.begin() + static_cast<std::ptrdiff_t>(pos + hdr + len));
    if (key) {
      for (size_t i = 0; i < payload.size(); ++i) payload[i] ^= key[i % 4];
    }
    if (!closed && opc >= 8 && opc <= 10 && len <= 125) {
      if (opc == 8) {
        const ClosePayload cp = parse_close_payload(payload);
        r.control_events.push_back("close " + std::to_string(cp.code) + " " +
                                   std::string(cp.reason));
        closed = true;
      } else {
        r.control_events.push_back((opc == 9 ? "ping " : "pong ") + hex(payload));
      }
    }
    pos += hdr + static_cast<size_t>(len);
  }
  return r;
}

inline int fuzz_tap(Direction dir, const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t flags = data[0];
  uint32_t rng = 0x9E3779B9u ^ (uint32_t{data[1]} * 0x01000193u) ^ static_cast<uint32_t>(size);
  const std::span<const uint8_t> in(data + 2, size - 2);

  TapConfig cfg;
  cfg.direction = dir;
  cfg.deflate_negotiated = flags & 0x01;
  cfg.validate_text_utf8 = flags & 0x02;
  if (flags & 0x04) cfg.capture_text_bytes = 1 + 7 * ((flags >> 3) & 3);
  if (flags & 0x20) cfg.max_message_bytes = 300;
  if (flags & 0x40) cfg.max_fragments_per_message = 4;

  const Outcome whole = run_whole(cfg, in);

  std::vector<size_t> cuts;
  for (size_t pos = 0;;) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    pos += (rng % 3 == 0) ? (rng >> 8) % 4 : (rng >> 8) % 65;
    if (pos >= in.size()) break;
    cuts.push_back(pos);
  }
  FUZZ_CHECK(run_cuts(cfg, in, cuts) == whole);
  // Byte by byte is the most thorough split and the slowest (ASan): short inputs only.
  if (in.size() <= 512) FUZZ_CHECK(run_bytewise(cfg, in) == whole);

  // Against the reference decoder.
  const Reference ref = reference_decode(in);
  for (int i = 0; i < 16; ++i) FUZZ_CHECK(whole.stats.frames[i] == ref.frames[i]);
  FUZZ_CHECK(whole.stats.payload_bytes == ref.payload_bytes);
  std::vector<std::string> control;
  for (const auto& e : whole.events) {
    if (e.starts_with("ping ") || e.starts_with("pong ") || e.starts_with("close ")) {
      control.push_back(e);
    }
  }
  FUZZ_CHECK(control == ref.control_events);

  // Consistency.
  const TapStats& s = whole.stats;
  FUZZ_CHECK(s.bytes == in.size());
  FUZZ_CHECK(s.messages == s.text_messages + s.binary_messages);
  FUZZ_CHECK(s.fragmented_messages <= s.messages && s.compressed_messages <= s.messages);
  uint64_t kinds = 0;
  for (uint64_t k : whole.violation_kinds) kinds += k;
  FUZZ_CHECK(kinds == s.violations);
  FUZZ_CHECK(whole.violation_kinds[0] == 0);
  FUZZ_CHECK(whole.failed == (s.violations != 0));
  FUZZ_CHECK(whole.failed == (whole.first_violation != Violation::none));
  FUZZ_CHECK(whole.first_returned == whole.first_violation);
  FUZZ_CHECK(whole.first_violation_offset <= in.size());
  if (!cfg.deflate_negotiated) FUZZ_CHECK(s.compressed_messages == 0);
  FUZZ_CHECK(whole.last_text.size() <= cfg.capture_text_bytes);
  FUZZ_CHECK(whole.close_reason.size() <= 123);
  if (!whole.failed) {
    FUZZ_CHECK(whole.first_violation_offset == 0);
    if (whole.close_seen) {
      FUZZ_CHECK(whole.close_code == 1005 || close_code_valid_on_wire(whole.close_code));
      FUZZ_CHECK(is_valid_utf8(whole.close_reason));
    }
  }
  return 0;
}

}  // namespace wsgate::tap::fuzz
