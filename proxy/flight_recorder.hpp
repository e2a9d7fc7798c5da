#pragma once
// The flight recorder: per session, the headers of the last K frames in each
// direction (and the code and reason of a close), for incidents and
// /connections/{id}. Entries are 12 bytes in one block allocated on the first
// frame: K = 16 costs 384 bytes of heap plus the recorder itself (see
// FlightRecorder::footprint_bytes).
//
// Optionally (off by default) the first bytes of each text message's first
// frame, kept raw after the entries in the same block and redacted only when
// shown (FlightLog::to_json), off the frame path.
//
// The session's I/O thread records; the admin thread reads. The frame path
// takes no lock: each direction's ring is a sequence lock (two counter
// stores around three relaxed word stores per frame header), and a reader
// copies it and retries when a write overlapped.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

#include "proxy/tap/frame_tap.hpp"

namespace wsgate::proxy {

// One frame header as recorded. Lengths past kMaxLength are kept as
// kMaxLength and shown with "length_capped".
struct RecordedFrame {
  static constexpr std::uint64_t kMaxLength = (std::uint64_t{1} << 39) - 1;

  std::uint32_t t_ms = 0;        // since the session started (saturates at ~49 days)
  std::uint32_t len_lo = 0;      // low 32 bits of the payload length
  std::uint8_t b0 = 0;           // FIN, RSV1-3, opcode: the frame's first byte
  std::uint8_t b1 = 0;           // bit 7: masked; bits 0-6: length bits 32-38
  std::uint16_t close_code = 0;  // close frames whose payload was decoded; 0 otherwise

  std::uint64_t length() const { return (std::uint64_t{b1 & 0x7Fu} << 32) | len_lo; }
  bool masked() const { return (b1 & 0x80) != 0; }
  std::uint8_t opcode() const { return b0 & 0x0F; }
  bool fin() const { return (b0 & 0x80) != 0; }
  std::uint8_t rsv() const { return (b0 >> 4) & 0x07; }  // RSV1 = 4, RSV2 = 2, RSV3 = 1
};
static_assert(sizeof(RecordedFrame) == 12);

// The recorded frames of a session: a ring per direction.
class FlightLog {
 public:
  // Close reasons are kept at most this long (after redaction), cut at a
  // UTF-8 character boundary.
  static constexpr std::size_t kMaxReason = 64;

  // Text prefixes are kept at most this long: a control payload, as the
  // tap gathers them (TapConfig::text_prefix_bytes).
  static constexpr std::size_t kMaxTextPrefix = 124;

  FlightLog() = default;
  explicit FlightLog(std::uint16_t per_direction, std::uint8_t text_prefix_bytes = 0)
      : k_(per_direction), text_bytes_(text_prefix_bytes) {}

  void record(tap::Direction d, const tap::FrameHeader& h, std::uint32_t t_ms);
  // Completes the direction's latest close entry with its code and reason
  // (redacted, capped): the tap decodes a close payload after its header.
  void record_close(tap::Direction d, std::uint16_t code, std::string_view reason);

  // Allocates the block (the first record() does it too).
  void prepare();
  // Filling a log from a recorder's copy.
  RecordedFrame* slots(std::size_t dir) { return entries_.get() + dir * k_; }
  void set_ring(std::size_t dir, std::uint16_t head, std::uint16_t count);
  void set_reason(std::size_t dir, const std::string& reason);
  // Text prefix slots: [length, flags, bytes...] per entry (null until the
  // first one; allocated by prepare_text()).
  void prepare_text();
  std::uint8_t* text_slot(std::size_t dir, std::size_t slot);
  std::size_t text_stride() const { return 2 + std::size_t{text_bytes_}; }
  static constexpr std::uint8_t kTextPresent = 1, kTextCut = 2;

  // An entry as the recorder stores it.
  static RecordedFrame encode(const tap::FrameHeader& h, std::uint32_t t_ms);

  bool empty() const { return !entries_; }
  std::uint16_t capacity() const { return k_; }
  std::size_t size(tap::Direction d) const { return count_[idx(d)]; }
  // Heap bytes held (entries and close reasons), without malloc's overhead.
  std::size_t heap_bytes() const;

  // Both directions, oldest first (ties: client_to_upstream first), as the
  // incident's `frames`: [{t_ms, direction, opcode, fin, rsv, length,
  // masked[, close_code, close_reason][, text, text_cut]}]. `text` is
  // redacted, and when cut its trailing partial word is dropped
  // (redacted_prefix); a prefix that is not UTF-8 shows as
  // "text_not_utf8": true instead.
  nlohmann::json to_json() const;

 private:
  static std::size_t idx(tap::Direction d) { return static_cast<std::size_t>(d); }
  std::size_t slot_of(std::size_t dir, std::size_t i) const;      // of the i-th oldest
  const RecordedFrame& at(std::size_t dir, std::size_t i) const;  // i-th oldest

  std::unique_ptr<RecordedFrame[]> entries_;  // 2 * k_: direction 0, then 1
  std::unique_ptr<std::string[]> reasons_;    // per direction, on the first close
  std::unique_ptr<std::uint8_t[]> text_;      // 2 * k_ text slots, on the first prefix
  std::uint16_t k_ = 0;
  std::uint8_t text_bytes_ = 0;
  std::uint16_t head_[2] = {};   // next slot to write
  std::uint16_t count_[2] = {};  // filled slots
};

class FlightRecorder {
 public:
  // frames_per_direction 0 disables it: nothing is recorded or allocated.
  // text_prefix_bytes (at most FlightLog::kMaxTextPrefix): how many first
  // bytes of text messages record_text() keeps; 0 keeps none.
  explicit FlightRecorder(std::uint16_t frames_per_direction, std::uint8_t text_prefix_bytes = 0);
  ~FlightRecorder();
  FlightRecorder(const FlightRecorder&) = delete;
  FlightRecorder& operator=(const FlightRecorder&) = delete;

  bool enabled() const { return k_ != 0; }

  // Session I/O thread.
  void record(tap::Direction d, const tap::FrameHeader& h, std::chrono::milliseconds since_start);
  void record_close(tap::Direction d, std::uint16_t code, std::string_view reason);
  // The first bytes of the text frame recorded last in this direction.
  void record_text(tap::Direction d, std::span<const std::uint8_t> bytes, bool cut);
  // At session end: a copy of the frames for the session summary (null when
  // none were seen). Nothing is recorded after; readers still see them.
  std::shared_ptr<const FlightLog> release();

  // Any thread, while the recorder lives. `complete` (when given) is set to
  // false if a direction was left out because its writer was busy on every
  // try (logged at warn).
  nlohmann::json to_json(bool* complete = nullptr) const;

  // Bytes one session spends on its recorder once it has seen a frame: the
  // recorder in the session object plus the block, rounded up to glibc's
  // 16-byte chunks with their 8-byte header.
  // With text prefixes kept, the block holds their slots too.
  static std::size_t footprint_bytes(std::uint16_t frames_per_direction,
                                     std::uint8_t text_prefix_bytes = 0);

 private:
  // An entry is three 32-bit words (RecordedFrame's fields), stored as
  // relaxed atomics under a sequence lock per direction: the writer pays
  // plain stores, a reader copies and retries if a write overlapped.
  using Word = std::atomic<std::uint32_t>;
  static constexpr std::size_t kWords = 3;

  FlightLog snapshot(bool& complete) const;
  bool copy_direction(std::size_t dir, const Word* block, const Word* text, FlightLog& out) const;
  // Text slots: a header word (length, flags as in FlightLog's slots) and
  // the bytes in words, written under the direction's sequence lock too.
  std::size_t text_words() const {
    return text_bytes_ == 0 ? 0 : 1 + (std::size_t{text_bytes_} + 3) / 4;
  }
  // The text slots follow the entries in the same block (null when off).
  template <class W>
  W* text_area(W* block) const {
    return block && text_bytes_ != 0 ? block + 2 * std::size_t{k_} * kWords : nullptr;
  }

  std::atomic<Word*> block_{nullptr};  // 2 * k_ entries; freed with the recorder
  std::atomic<std::uint32_t> seq_[2] = {};
  std::atomic<std::uint16_t> head_[2] = {};
  std::atomic<std::uint16_t> count_[2] = {};
  std::uint16_t k_;
  std::uint8_t text_bytes_;
  bool released_ = false;
  // Close reasons: set once per direction, read by the admin thread.
  mutable std::mutex reasons_mutex_;
  std::unique_ptr<std::string[]> reasons_;
};

}  // namespace wsgate::proxy
