#pragma once
// The frame tap: an incremental, allocation-free RFC 6455 frame parser that
// watches one direction of a relayed WebSocket stream. The proxy relays the
// bytes unchanged and feeds the same bytes here; the tap decodes frame headers,
// checks the framing rules of RFC 6455 5.2-5.5 and 7.4, and skips payloads
// without copying them. Only what is inspected is unmasked: control payloads
// (<= 125 bytes), the captured text message (up to capture_text_bytes) and,
// when enabled, text payloads for UTF-8 validation.
//
// Cost model: feed() never throws and allocates only the capture buffer, on
// the first text message (once per tap); a data payload with
// nothing to inspect is skipped in O(1) per chunk; a frame header costs a
// handful of branches. The sink is called on rare events only (close, ping,
// pong, violation, end of a data message), never per payload byte, and per
// frame header only when report_frames asks for it.
//
// After a violation the tap keeps decoding as well as it can (observe mode
// goes on counting); failed() stays true. In enforce mode the proxy stops
// feeding and may cut the relayed stream at first_violation_offset(), the
// first byte of the offending frame, which is a frame boundary.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "proxy/tap/utf8.hpp"

namespace wsgate::tap {

enum class Direction : uint8_t {
  client_to_upstream,  // frames must be masked
  upstream_to_client,  // frames must not be masked
};

enum class Opcode : uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

enum class Violation : uint8_t {
  none,
  reserved_opcode,          // opcode 3-7 or 0xB-0xF
  reserved_bits,            // RSV2/RSV3, or RSV1 without deflate / on control or continuation
  mask_missing,             // client_to_upstream frame without mask
  mask_unexpected,          // upstream_to_client frame with mask
  control_too_long,         // control payload > 125 bytes
  control_fragmented,       // control frame with FIN = 0
  length_not_minimal,       // 16-bit length < 126 or 64-bit length < 65536
  length_msb_set,           // 64-bit length with the most significant bit set
  unexpected_continuation,  // continuation frame outside a fragmented message
  expected_continuation,    // text/binary frame while a fragmented message is open
  message_too_big,          // sum of fragment lengths > max_message_bytes (decided at the header)
  too_many_fragments,       // more than max_fragments_per_message frames in one message
  close_payload_one_byte,   // close payload of exactly one byte
  close_code_invalid,       // close code not allowed on the wire (RFC 6455 7.4)
  close_reason_not_utf8,    // close reason is not valid UTF-8
  text_not_utf8,            // text message not valid UTF-8 (only if validate_text_utf8)
  frame_after_close,        // any frame after a close frame in the same direction
};
inline constexpr size_t kViolationKinds = static_cast<size_t>(Violation::frame_after_close) + 1;

// Stable snake_case label values for wsgate_protocol_violations_total{kind}:
// exactly the enumerator names ("none" for Violation::none).
std::string_view to_string(Violation v) noexcept;
// "client_to_upstream" / "upstream_to_client", the {direction} label values.
std::string_view to_string(Direction d) noexcept;
// {opcode} label for wsgate_frames_total: "continuation", "text", "binary",
// "close", "ping", "pong", or "reserved" for the 10 reserved opcodes.
std::string_view opcode_label(uint8_t opcode) noexcept;

// RFC 6455 7.4: may this code appear in a close frame on the wire?
// 1000-1003, 1007-1014 and 3000-4999: yes. Below 1000, 1004-1006, 1015,
// 1016-2999 and 5000+: no.
constexpr bool close_code_valid_on_wire(uint16_t code) noexcept {
  if (code >= 3000 && code <= 4999) return true;
  if (code >= 1000 && code <= 1003) return true;
  return code >= 1007 && code <= 1014;
}

// A close payload, decoded and checked. `reason` points into the input.
struct ClosePayload {
  uint16_t code = 1005;                   // 1005 when the payload is empty (or one byte)
  std::string_view reason;                // raw bytes after the code
  Violation violation = Violation::none;  // close_payload_one_byte, close_code_invalid,
                                          // close_reason_not_utf8 or none
};
// Decodes an (already unmasked) close payload of any length.
ClosePayload parse_close_payload(std::span<const uint8_t> payload) noexcept;

struct TapConfig {
  Direction direction = Direction::client_to_upstream;
  bool deflate_negotiated = false;         // permessage-deflate: RSV1 allowed on first data frame
  uint64_t max_message_bytes = 16u << 20;  // wire bytes per message; 0 = no cap
  uint32_t max_fragments_per_message = 100000;  // frames per data message; 0 = no cap
  bool validate_text_utf8 = false;              // check uncompressed text messages (unmasks them)
  size_t capture_text_bytes = 0;                // keep the first N bytes of the last text message
  bool report_frames = false;                   // call TapSink::on_frame for every frame header
  // Report the first N (at most 125) unmasked payload bytes of the first
  // frame of each uncompressed text message (TapSink::on_text_prefix).
  // Only first frames: a continuation starts mid-message, maybe mid-secret.
  uint8_t text_prefix_bytes = 0;
};

// A decoded frame header, as TapSink::on_frame reports it.
struct FrameHeader {
  uint64_t length = 0;  // payload length as announced
  uint8_t opcode = 0;
  uint8_t rsv = 0;  // RSV1 = 4, RSV2 = 2, RSV3 = 1
  bool fin = false;
  bool masked = false;
};

// Plain counters, updated on the hot path; the proxy samples and batches them.
struct TapStats {
  uint64_t frames[16] = {};    // complete frame headers, per opcode (reserved included)
  uint64_t bytes = 0;          // every byte fed (headers + payload)
  uint64_t payload_bytes = 0;  // payload bytes of complete headers (as announced)
  uint64_t messages = 0;       // completed data messages (text + binary)
  uint64_t text_messages = 0;
  uint64_t binary_messages = 0;
  uint64_t fragmented_messages = 0;  // completed data messages of more than one frame
  uint64_t compressed_messages = 0;  // completed data messages with RSV1 on the first frame
  uint64_t control_frames = 0;       // close + ping + pong frames
  uint64_t violations = 0;           // total, at most one per frame (per kind: violations_of)

  friend bool operator==(const TapStats&, const TapStats&) = default;
};

// Event sink. Called synchronously from feed(); payload spans and reasons are
// valid only during the call. Default implementations ignore the event.
class TapSink {
 public:
  virtual ~TapSink() = default;
  // Every complete frame header, before any other event of that frame; only
  // with TapConfig::report_frames (the flight recorder's feed).
  virtual void on_frame(const FrameHeader& h) { (void)h; }
  // The first bytes of a text message's first frame, unmasked, once they
  // are all in (with text_prefix_bytes); cut: the frame is longer.
  virtual void on_text_prefix(std::span<const uint8_t> bytes, bool cut) { (void)bytes, (void)cut; }
  // A complete close frame; code is 1005 when the payload carries none.
  // Called after on_violation() if the payload was invalid.
  virtual void on_close(uint16_t code, std::string_view reason) { (void)code, (void)reason; }
  // Complete ping/pong frames (payload unmasked, <= 125 bytes).
  virtual void on_ping(std::span<const uint8_t> payload) { (void)payload; }
  virtual void on_pong(std::span<const uint8_t> payload) { (void)payload; }
  // Every violation, at most one per frame, in stream order.
  virtual void on_violation(Violation v) { (void)v; }
  // A data message completed (FIN frame seen). size = sum of payload lengths
  // on the wire; compressed = RSV1 on the first frame (deflate negotiated).
  virtual void on_message_end(Opcode op, uint64_t size, bool compressed) {
    (void)op, (void)size, (void)compressed;
  }

 protected:
  TapSink() = default;
  TapSink(const TapSink&) = default;
  TapSink& operator=(const TapSink&) = default;
};

class FrameTap {
 public:
  explicit FrameTap(const TapConfig& config, TapSink* sink = nullptr);
  FrameTap(const FrameTap&) = delete;
  FrameTap& operator=(const FrameTap&) = delete;
  FrameTap(FrameTap&&) noexcept = default;
  FrameTap& operator=(FrameTap&&) noexcept = default;
  ~FrameTap() = default;

  // Feeds the next chunk of the stream; the stream may be split at any byte.
  // Returns the first violation seen in this chunk (Violation::none if none).
  Violation feed(const uint8_t* data, size_t n) noexcept;
  Violation feed(std::span<const uint8_t> s) noexcept { return feed(s.data(), s.size()); }

  // Not inside a frame header or payload: a frame may be injected here.
  bool at_frame_boundary() const noexcept { return state_ == State::header && hdr_have_ == 0; }
  // A fragmented data message is open (its FIN frame has not been seen yet).
  bool in_message() const noexcept { return msg_open_; }

  bool close_seen() const noexcept { return close_seen_; }
  uint16_t close_code() const noexcept { return close_code_; }  // 0 until close_seen()
  std::string_view close_reason() const noexcept {
    return {reinterpret_cast<const char*>(ctrl_buf_) + 2, close_reason_len_};
  }

  // The last complete text message, unmasked, up to capture_text_bytes
  // (empty when capture is off or no text message completed yet).
  std::string_view last_text() const noexcept;
  bool last_text_truncated() const noexcept { return last_text_truncated_; }
  bool last_text_compressed() const noexcept { return last_text_compressed_; }

  const TapStats& stats() const noexcept { return stats_; }
  // Violations of kind `v` so far.
  uint64_t violations_of(Violation v) const noexcept {
    return violation_kinds_ ? violation_kinds_[static_cast<size_t>(v)] : 0;
  }
  bool failed() const noexcept { return first_violation_ != Violation::none; }
  Violation first_violation() const noexcept { return first_violation_; }
  // Stream offset of the first byte of the frame that carried the first violation.
  uint64_t first_violation_offset() const noexcept { return first_violation_offset_; }
  const TapConfig& config() const noexcept { return config_; }

 private:
  enum class State : uint8_t { header, payload };

  void on_header(const uint8_t* h) noexcept;
  void inspect(const uint8_t* p, size_t n) noexcept;
  void end_frame() noexcept;
  void end_close_frame() noexcept;
  void violation(Violation v) noexcept;
  bool ensure_capture() noexcept;

  TapConfig config_;
  TapSink* sink_;
  TapStats stats_;

  // Header assembly (only when a header is split across chunks).
  State state_ = State::header;
  uint8_t hdr_have_ = 0;
  uint8_t hdr_need_ = 2;
  uint8_t hdr_buf_[14] = {};

  // Current frame.
  uint8_t opcode_ = 0;
  bool fin_ = false;
  bool masked_ = false;
  bool frame_flagged_ = false;  // a violation was already reported for this frame
  bool frame_in_msg_ = false;   // this data frame belongs to the open message
  bool inspect_ = false;        // some payload byte of this frame must be looked at
  bool inspect_ctrl_ = false;
  bool inspect_capture_ = false;
  bool inspect_utf8_ = false;
  uint8_t mask_[4] = {};
  uint64_t remaining_ = 0;
  uint64_t payload_off_ = 0;
  uint64_t frame_start_ = 0;

  // Current data message.
  bool msg_open_ = false;
  bool msg_compressed_ = false;
  bool msg_text_ = false;
  bool msg_validate_ = false;  // text, validate_text_utf8, not compressed
  uint32_t msg_fragments_ = 0;
  uint64_t msg_size_ = 0;

  // Control payload; also the text prefix, which is gathered inside a data
  // frame's payload, where no control payload can be.
  uint8_t ctrl_len_ = 0;
  uint8_t ctrl_buf_[125] = {};

  // Close.
  bool close_seen_ = false;
  uint16_t close_code_ = 0;
  // The reason stays where the close payload was gathered, in ctrl_buf_
  // after the code: nothing is gathered once a close was seen.
  uint8_t close_reason_len_ = 0;

  // Text capture: two buffers of capture_text_bytes, one being filled, one last complete.
  std::unique_ptr<char[]> capture_;
  size_t cap_len_ = 0;
  bool cap_truncated_ = false;
  uint8_t cap_fill_ = 0;  // index of the buffer being filled
  // Text prefix (TapConfig::text_prefix_bytes), gathered in ctrl_buf_.
  bool inspect_prefix_ = false;
  bool prefix_cut_ = false;
  uint8_t prefix_len_ = 0;
  uint8_t prefix_want_ = 0;
  size_t last_text_len_ = 0;
  bool last_text_truncated_ = false;
  bool last_text_compressed_ = false;
  bool have_last_text_ = false;

  Utf8Validator utf8_;
  Violation chunk_first_ = Violation::none;
  Violation first_violation_ = Violation::none;
  // Per kind, made on the tap's first violation: most sessions never have
  // one, and kViolationKinds counters held in each tap would add 320 bytes
  // to every session.
  std::unique_ptr<uint64_t[]> violation_kinds_;
  uint64_t first_violation_offset_ = 0;
};

}  // namespace wsgate::tap
