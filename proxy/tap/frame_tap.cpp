#include "proxy/tap/frame_tap.hpp"

#include <algorithm>
#include <cstring>
#include <new>

namespace wsgate::tap {
namespace {

constexpr uint8_t kFin = 0x80;
constexpr uint8_t kRsv1 = 0x40;
constexpr uint8_t kRsv23 = 0x30;
constexpr uint8_t kMaskBit = 0x80;
constexpr size_t kMaxControlPayload = 125;

constexpr uint8_t op(Opcode o) { return static_cast<uint8_t>(o); }

// Size of the whole header announced by its first two bytes: 2..14.
inline uint8_t header_size(uint8_t b1) noexcept {
  const uint8_t len7 = b1 & 0x7F;
  uint8_t n = 2;
  if (len7 == 126)
    n += 2;
  else if (len7 == 127)
    n += 8;
  if (b1 & kMaskBit) n += 4;
  return n;
}

// Copies n payload bytes starting at payload offset `off`, unmasking them when
// a mask is given (the key rotates with the offset, so splits do not matter).
inline void unmask_copy(uint8_t* dst, const uint8_t* src, size_t n, const uint8_t* mask,
                        uint64_t off) noexcept {
  if (!mask) {
    std::memcpy(dst, src, n);
    return;
  }
  for (size_t i = 0; i < n; ++i) dst[i] = src[i] ^ mask[(off + i) & 3];
}

constexpr std::string_view kViolationNames[kViolationKinds] = {
    "none",
    "reserved_opcode",
    "reserved_bits",
    "mask_missing",
    "mask_unexpected",
    "control_too_long",
    "control_fragmented",
    "length_not_minimal",
    "length_msb_set",
    "unexpected_continuation",
    "expected_continuation",
    "message_too_big",
    "too_many_fragments",
    "close_payload_one_byte",
    "close_code_invalid",
    "close_reason_not_utf8",
    "text_not_utf8",
    "frame_after_close",
};

}  // namespace

std::string_view to_string(Violation v) noexcept {
  const auto i = static_cast<size_t>(v);
  return i < kViolationKinds ? kViolationNames[i] : std::string_view("unknown");
}

std::string_view to_string(Direction d) noexcept {
  return d == Direction::client_to_upstream ? "client_to_upstream" : "upstream_to_client";
}

std::string_view opcode_label(uint8_t opcode) noexcept {
  switch (opcode) {
    case 0x0:
      return "continuation";
    case 0x1:
      return "text";
    case 0x2:
      return "binary";
    case 0x8:
      return "close";
    case 0x9:
      return "ping";
    case 0xA:
      return "pong";
    default:
      return "reserved";
  }
}

ClosePayload parse_close_payload(std::span<const uint8_t> payload) noexcept {
  ClosePayload r;
  if (payload.empty()) return r;
  if (payload.size() == 1) {
    r.violation = Violation::close_payload_one_byte;
    return r;
  }
  r.code = static_cast<uint16_t>((payload[0] << 8) | payload[1]);
  r.reason = {reinterpret_cast<const char*>(payload.data()) + 2, payload.size() - 2};
  if (!close_code_valid_on_wire(r.code)) {
    r.violation = Violation::close_code_invalid;
  } else if (!is_valid_utf8(r.reason)) {
    r.violation = Violation::close_reason_not_utf8;
  }
  return r;
}

FrameTap::FrameTap(const TapConfig& config, TapSink* sink) : config_(config), sink_(sink) {}

bool FrameTap::ensure_capture() noexcept {
  // Two buffers: one being filled, one holding the last complete message.
  // Allocated on the first text message, once per tap: an idle session, or
  // one that only carries binary, costs nothing (thousands of them do add up).
  if (!capture_ && config_.capture_text_bytes > 0)
    capture_.reset(new (std::nothrow) char[2 * config_.capture_text_bytes]);
  return capture_ != nullptr;
}

std::string_view FrameTap::last_text() const noexcept {
  if (!have_last_text_) return {};
  return {capture_.get() + (cap_fill_ ^ 1u) * config_.capture_text_bytes, last_text_len_};
}

void FrameTap::violation(Violation v) noexcept {
  if (frame_flagged_) return;
  frame_flagged_ = true;
  ++stats_.violations;
  // Out of memory, the kinds go uncounted; the total above still counts.
  if (!violation_kinds_) violation_kinds_.reset(new (std::nothrow) uint64_t[kViolationKinds]());
  if (violation_kinds_) ++violation_kinds_[static_cast<size_t>(v)];
  if (chunk_first_ == Violation::none) chunk_first_ = v;
  if (first_violation_ == Violation::none) {
    first_violation_ = v;
    first_violation_offset_ = frame_start_;
  }
  if (sink_) sink_->on_violation(v);
}

Violation FrameTap::feed(const uint8_t* data, size_t n) noexcept {
  chunk_first_ = Violation::none;
  const uint8_t* p = data;
  const uint8_t* const end = data + n;
  const uint64_t base = stats_.bytes;
  stats_.bytes += n;

  while (p != end) {
    if (state_ == State::header) {
      if (hdr_have_ == 0) {
        frame_start_ = base + static_cast<uint64_t>(p - data);
        const size_t avail = static_cast<size_t>(end - p);
        if (avail >= 2) {
          const uint8_t need = header_size(p[1]);
          if (avail >= need) {  // fast path: the whole header is in this chunk
            const uint8_t* h = p;
            p += need;
            on_header(h);
            continue;
          }
        }
      }
      // Slow path: the header is split across chunks; assemble it.
      const size_t avail = static_cast<size_t>(end - p);
      const size_t want = (hdr_have_ < 2 ? 2u : hdr_need_) - hdr_have_;
      const size_t k = std::min(want, avail);
      std::memcpy(hdr_buf_ + hdr_have_, p, k);
      hdr_have_ = static_cast<uint8_t>(hdr_have_ + k);
      p += k;
      if (hdr_have_ == 2) hdr_need_ = header_size(hdr_buf_[1]);
      if (hdr_have_ >= 2 && hdr_have_ == hdr_need_) {
        hdr_have_ = 0;
        on_header(hdr_buf_);
      }
      continue;
    }
    // Payload: O(1) per chunk unless some bytes must be looked at.
    const size_t avail = static_cast<size_t>(end - p);
    const size_t take = remaining_ < avail ? static_cast<size_t>(remaining_) : avail;
    if (inspect_) inspect(p, take);
    p += take;
    remaining_ -= take;
    payload_off_ += take;
    if (remaining_ == 0) end_frame();
  }
  return chunk_first_;
}

void FrameTap::on_header(const uint8_t* h) noexcept {
  const uint8_t b0 = h[0];
  const uint8_t b1 = h[1];
  fin_ = (b0 & kFin) != 0;
  opcode_ = b0 & 0x0F;
  masked_ = (b1 & kMaskBit) != 0;
  frame_flagged_ = false;
  frame_in_msg_ = false;
  inspect_ctrl_ = inspect_capture_ = inspect_utf8_ = inspect_prefix_ = false;

  Violation v = Violation::none;
  const auto flag = [&v](Violation x) {
    if (v == Violation::none) v = x;
  };

  uint64_t len = b1 & 0x7F;
  size_t pos = 2;
  Violation len_violation = Violation::none;
  if (len == 126) {
    len = (uint64_t{h[2]} << 8) | h[3];
    pos = 4;
    if (len < 126) len_violation = Violation::length_not_minimal;
  } else if (len == 127) {
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | h[2 + i];
    pos = 10;
    if (len >> 63)
      len_violation = Violation::length_msb_set;
    else if (len < 65536)
      len_violation = Violation::length_not_minimal;
  }
  if (masked_) std::memcpy(mask_, h + pos, 4);
  if (config_.report_frames && sink_)
    sink_->on_frame({len, opcode_, static_cast<uint8_t>((b0 >> 4) & 0x07), fin_, masked_});

  ++stats_.frames[opcode_];
  stats_.payload_bytes += len;
  remaining_ = len;
  payload_off_ = 0;

  const bool is_control = (opcode_ & 0x8) != 0;
  const bool known = opcode_ <= op(Opcode::binary) ||
                     (opcode_ >= op(Opcode::close) && opcode_ <= op(Opcode::pong));
  const bool rsv1 = (b0 & kRsv1) != 0;
  const bool deflate_start =
      config_.deflate_negotiated && (opcode_ == op(Opcode::text) || opcode_ == op(Opcode::binary));

  if (close_seen_) {
    // Counted, reported, otherwise ignored: nothing may follow a close.
    flag(Violation::frame_after_close);
  } else {
    if (!known) flag(Violation::reserved_opcode);
    if ((b0 & kRsv23) || (rsv1 && !deflate_start)) flag(Violation::reserved_bits);
    if (config_.direction == Direction::client_to_upstream) {
      if (!masked_) flag(Violation::mask_missing);
    } else if (masked_) {
      flag(Violation::mask_unexpected);
    }
    flag(len_violation);

    if (is_control) {
      if (known) {
        ++stats_.control_frames;
        if (len > kMaxControlPayload) {
          flag(Violation::control_too_long);
        } else {
          inspect_ctrl_ = true;
          ctrl_len_ = static_cast<uint8_t>(len);
        }
        if (!fin_) flag(Violation::control_fragmented);
      }
    } else if (known) {
      if (opcode_ != op(Opcode::continuation)) {
        if (msg_open_) flag(Violation::expected_continuation);  // the open message is dropped
        msg_open_ = true;
        msg_text_ = opcode_ == op(Opcode::text);
        msg_compressed_ = rsv1 && deflate_start;
        msg_validate_ = msg_text_ && config_.validate_text_utf8 && !msg_compressed_;
        msg_fragments_ = 0;
        msg_size_ = 0;
        if (msg_validate_) utf8_.reset();
        cap_len_ = 0;
        cap_truncated_ = false;
      } else if (!msg_open_) {
        flag(Violation::unexpected_continuation);
      }
      if (msg_open_) {
        frame_in_msg_ = true;
        ++msg_fragments_;
        if (config_.max_fragments_per_message != 0 &&
            msg_fragments_ > config_.max_fragments_per_message) {
          flag(Violation::too_many_fragments);
        }
        const uint64_t cap = config_.max_message_bytes;
        if (cap != 0 && (msg_size_ > cap || len > cap - msg_size_)) {
          flag(Violation::message_too_big);
        }
        msg_size_ = len > UINT64_MAX - msg_size_ ? UINT64_MAX : msg_size_ + len;
        if (msg_text_) {
          if (ensure_capture()) {
            if (cap_len_ < config_.capture_text_bytes)
              inspect_capture_ = len != 0;
            else if (len != 0)
              cap_truncated_ = true;
          }
          inspect_utf8_ = msg_validate_ && utf8_.ok() && len != 0;
          if (config_.text_prefix_bytes != 0 && opcode_ == op(Opcode::text) && !msg_compressed_ &&
              len != 0) {
            const auto want = std::min<uint64_t>(
                len, std::min<size_t>(config_.text_prefix_bytes, kMaxControlPayload));
            prefix_want_ = static_cast<uint8_t>(want);
            prefix_len_ = 0;
            prefix_cut_ = len > want;
            inspect_prefix_ = true;
          }
        }
      }
    }
  }

  if (v != Violation::none) violation(v);
  inspect_ = inspect_ctrl_ || inspect_capture_ || inspect_utf8_ || inspect_prefix_;
  if (len == 0) {
    end_frame();
  } else {
    state_ = State::payload;
  }
}

void FrameTap::inspect(const uint8_t* p, size_t n) noexcept {
  const uint8_t* mask = masked_ ? mask_ : nullptr;
  const uint64_t off = payload_off_;
  if (inspect_ctrl_) {  // off + n <= ctrl_len_ <= 125
    unmask_copy(ctrl_buf_ + off, p, n, mask, off);
    return;
  }
  if (inspect_prefix_) {
    const size_t k = std::min<size_t>(prefix_want_ - prefix_len_, n);
    unmask_copy(ctrl_buf_ + prefix_len_, p, k, mask, off);
    prefix_len_ = static_cast<uint8_t>(prefix_len_ + k);
    if (prefix_len_ == prefix_want_) {
      inspect_prefix_ = false;
      if (sink_) sink_->on_text_prefix({ctrl_buf_, prefix_len_}, prefix_cut_);
    }
  }
  if (inspect_capture_) {
    const size_t cap = config_.capture_text_bytes;
    const size_t k = std::min(cap - cap_len_, n);
    auto* dst = reinterpret_cast<uint8_t*>(capture_.get() + cap_fill_ * cap + cap_len_);
    unmask_copy(dst, p, k, mask, off);
    cap_len_ += k;
    if (k < n) {
      cap_truncated_ = true;
      inspect_capture_ = false;
    }
  }
  if (inspect_utf8_) {
    bool ok;
    if (!mask) {
      ok = utf8_.feed(p, n);
    } else {
      uint8_t block[256];
      ok = true;
      for (size_t i = 0; i < n && ok; i += sizeof block) {
        const size_t k = std::min(sizeof block, n - i);
        unmask_copy(block, p + i, k, mask, off + i);
        ok = utf8_.feed(block, k);
      }
    }
    if (!ok) {
      inspect_utf8_ = false;
      violation(Violation::text_not_utf8);  // fail fast, at the first bad byte's chunk
    }
  }
  inspect_ = inspect_capture_ || inspect_utf8_ || inspect_prefix_;
}

void FrameTap::end_frame() noexcept {
  state_ = State::header;
  if (inspect_ctrl_) {
    const std::span<const uint8_t> payload(ctrl_buf_, ctrl_len_);
    switch (static_cast<Opcode>(opcode_)) {
      case Opcode::close:
        end_close_frame();
        break;
      case Opcode::ping:
        if (sink_) sink_->on_ping(payload);
        break;
      case Opcode::pong:
        if (sink_) sink_->on_pong(payload);
        break;
      default:
        break;
    }
    return;
  }
  if (!frame_in_msg_ || !fin_) return;

  // The last frame of a data message.
  msg_open_ = false;
  if (msg_validate_ && utf8_.ok() && !utf8_.complete()) {
    violation(Violation::text_not_utf8);  // ends inside a multi-byte sequence
  }
  ++stats_.messages;
  if (msg_text_)
    ++stats_.text_messages;
  else
    ++stats_.binary_messages;
  if (msg_fragments_ > 1) ++stats_.fragmented_messages;
  if (msg_compressed_) ++stats_.compressed_messages;
  if (msg_text_ && capture_) {
    last_text_len_ = cap_len_;
    last_text_truncated_ = cap_truncated_;
    last_text_compressed_ = msg_compressed_;
    have_last_text_ = true;
    cap_fill_ ^= 1u;
  }
  if (sink_) {
    sink_->on_message_end(msg_text_ ? Opcode::text : Opcode::binary, msg_size_, msg_compressed_);
  }
}

void FrameTap::end_close_frame() noexcept {
  const ClosePayload cp = parse_close_payload({ctrl_buf_, ctrl_len_});
  if (cp.violation != Violation::none) violation(cp.violation);
  close_seen_ = true;
  close_code_ = cp.code;
  close_reason_len_ = static_cast<uint8_t>(cp.reason.size());  // <= 123, at ctrl_buf_ + 2
  if (sink_) sink_->on_close(close_code_, close_reason());
}

}  // namespace wsgate::tap
