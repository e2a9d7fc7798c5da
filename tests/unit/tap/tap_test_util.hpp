#pragma once
// Helpers shared by the tap unit tests, the fuzz targets and the bench: a raw
// frame builder (it can write every illegal frame too), a sink that records
// events as text, a reference UTF-8 decoder, and a runner that feeds a stream
// with arbitrary cuts and reports everything observable.

#include <array>
#include <cstdint>
#include <optional>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/tap/frame_tap.hpp"

namespace wsgate::tap::testing {

using Bytes = std::vector<uint8_t>;

inline Bytes bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

inline void append(Bytes& out, const Bytes& b) { out.insert(out.end(), b.begin(), b.end()); }

template <typename... B>
Bytes concat(const B&... parts) {
  Bytes out;
  (append(out, parts), ...);
  return out;
}

enum class LenForm { minimal, len16, len64 };

struct FrameOpts {
  bool fin = true;
  uint8_t rsv = 0;               // bits 0x40/0x20/0x10
  std::optional<uint32_t> mask;  // key, big-endian bytes on the wire
  LenForm form = LenForm::minimal;
  std::optional<uint64_t> announced;  // length written in the header (default: payload size)
};

inline Bytes frame(uint8_t opcode, const Bytes& payload, const FrameOpts& o = {}) {
  Bytes out;
  out.push_back(static_cast<uint8_t>((o.fin ? 0x80 : 0) | (o.rsv & 0x70) | (opcode & 0x0F)));
  const uint64_t len = o.announced.value_or(payload.size());
  const uint8_t mbit = o.mask ? 0x80 : 0;
  LenForm form = o.form;
  if (form == LenForm::minimal)
    form = len < 126 ? LenForm::minimal : len < 65536 ? LenForm::len16 : LenForm::len64;
  if (form == LenForm::minimal) {
    out.push_back(static_cast<uint8_t>(mbit | len));
  } else if (form == LenForm::len16) {
    out.push_back(mbit | 126);
    out.push_back(static_cast<uint8_t>(len >> 8));
    out.push_back(static_cast<uint8_t>(len));
  } else {
    out.push_back(mbit | 127);
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<uint8_t>(len >> (8 * i)));
  }
  uint8_t key[4] = {};
  if (o.mask) {
    for (int i = 0; i < 4; ++i) key[i] = static_cast<uint8_t>(*o.mask >> (24 - 8 * i));
    out.insert(out.end(), key, key + 4);
  }
  for (size_t i = 0; i < payload.size(); ++i) {
    out.push_back(o.mask ? static_cast<uint8_t>(payload[i] ^ key[i & 3]) : payload[i]);
  }
  return out;
}

constexpr uint32_t kKey = 0x37FA213D;  // RFC 6455 5.7's example key

// A frame as a client (masked) or a server (unmasked) sends it.
inline Bytes cframe(uint8_t opcode, const Bytes& payload, FrameOpts o = {}) {
  if (!o.mask) o.mask = kKey;
  return frame(opcode, payload, o);
}
inline Bytes sframe(uint8_t opcode, const Bytes& payload, FrameOpts o = {}) {
  return frame(opcode, payload, o);
}

inline Bytes close_payload(uint16_t code, std::string_view reason = {}) {
  Bytes p{static_cast<uint8_t>(code >> 8), static_cast<uint8_t>(code)};
  p.insert(p.end(), reason.begin(), reason.end());
  return p;
}

inline std::string hex(std::span<const uint8_t> b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (uint8_t c : b) {
    s += d[c >> 4];
    s += d[c & 15];
  }
  return s;
}

class RecordingSink final : public TapSink {
 public:
  std::vector<std::string> events;
  void on_close(uint16_t code, std::string_view reason) override {
    events.push_back("close " + std::to_string(code) + " " + std::string(reason));
  }
  void on_ping(std::span<const uint8_t> p) override { events.push_back("ping " + hex(p)); }
  void on_pong(std::span<const uint8_t> p) override { events.push_back("pong " + hex(p)); }
  void on_text_prefix(std::span<const uint8_t> p, bool cut) override {
    events.push_back("prefix " + std::string(p.begin(), p.end()) + (cut ? " cut" : ""));
  }
  void on_violation(Violation v) override {
    events.push_back("violation " + std::string(to_string(v)));
  }
  void on_message_end(Opcode op, uint64_t size, bool compressed) override {
    events.push_back(std::string(op == Opcode::text ? "text " : "binary ") + std::to_string(size) +
                     (compressed ? " compressed" : ""));
  }
};

// Everything a caller can observe after feeding a stream.
struct Outcome {
  std::vector<std::string> events;
  TapStats stats;
  std::array<uint64_t, kViolationKinds> violation_kinds{};  // FrameTap::violations_of
  bool close_seen = false;
  uint16_t close_code = 0;
  std::string close_reason;
  std::string last_text;
  bool last_text_truncated = false;
  bool last_text_compressed = false;
  bool failed = false;
  Violation first_violation = Violation::none;
  uint64_t first_violation_offset = 0;
  Violation first_returned = Violation::none;  // first non-none value feed() returned
  bool at_frame_boundary = false;
  bool in_message = false;

  friend bool operator==(const Outcome&, const Outcome&) = default;
};

inline std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << "{events:[";
  for (const auto& e : o.events) os << e << "; ";
  os << "] bytes=" << o.stats.bytes << " msgs=" << o.stats.messages
     << " ctrl=" << o.stats.control_frames << " viol=" << o.stats.violations
     << " close=" << o.close_seen << "/" << o.close_code << "/" << o.close_reason
     << " text=" << o.last_text << (o.last_text_truncated ? "(trunc)" : "")
     << " first=" << to_string(o.first_violation) << "@" << o.first_violation_offset
     << " returned=" << to_string(o.first_returned) << " boundary=" << o.at_frame_boundary << "}";
  return os;
}

// Feeds `in` cut at the given increasing offsets.
inline Outcome run_cuts(const TapConfig& cfg, std::span<const uint8_t> in,
                        const std::vector<size_t>& cuts) {
  RecordingSink sink;
  FrameTap tap(cfg, &sink);
  Outcome o;
  size_t prev = 0;
  auto feed_to = [&](size_t end) {
    const Violation v = tap.feed(in.data() + prev, end - prev);
    if (o.first_returned == Violation::none) o.first_returned = v;
    prev = end;
  };
  for (size_t c : cuts) feed_to(c);
  feed_to(in.size());
  o.events = std::move(sink.events);
  o.stats = tap.stats();
  for (size_t k = 0; k < kViolationKinds; ++k)
    o.violation_kinds[k] = tap.violations_of(static_cast<Violation>(k));
  o.close_seen = tap.close_seen();
  o.close_code = tap.close_code();
  o.close_reason = std::string(tap.close_reason());
  o.last_text = std::string(tap.last_text());
  o.last_text_truncated = tap.last_text_truncated();
  o.last_text_compressed = tap.last_text_compressed();
  o.failed = tap.failed();
  o.first_violation = tap.first_violation();
  o.first_violation_offset = tap.first_violation_offset();
  o.at_frame_boundary = tap.at_frame_boundary();
  o.in_message = tap.in_message();
  return o;
}

inline Outcome run_whole(const TapConfig& cfg, std::span<const uint8_t> in) {
  return run_cuts(cfg, in, {});
}

inline Outcome run_bytewise(const TapConfig& cfg, std::span<const uint8_t> in) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < in.size(); ++i) cuts.push_back(i);
  return run_cuts(cfg, in, cuts);
}

// Reference decoder (straight from RFC 3629's definition, no DFA): valid iff
// every sequence decodes to a scalar value in its shortest form.
inline bool reference_utf8(std::span<const uint8_t> s) {
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t b = s[i];
    size_t n;
    uint32_t cp;
    if (b < 0x80) {
      ++i;
      continue;
    }
    if ((b & 0xE0) == 0xC0) {
      n = 1;
      cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      n = 2;
      cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      n = 3;
      cp = b & 0x07;
    } else
      return false;
    if (i + n >= s.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    static constexpr uint32_t kMin[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

}  // namespace wsgate::tap::testing
