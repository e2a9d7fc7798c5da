#pragma once
// The flight recorder: per session, the headers of the last K frames in each
// direction (and the code and reason of a close), for incidents and
// /connections/{id}. Entries are 12 bytes in one block allocated on the first
// frame: K = 16 costs 384 bytes of heap plus the recorder itself (see
// FlightRecorder::footprint_bytes).
//
// The session's I/O thread records; the admin thread reads. A mutex guards
// the block: uncontended on the frame path (one lock/unlock per frame header,
// about 20 ns), held by a reader only while it copies the block.
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
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

  FlightLog() = default;
  explicit FlightLog(std::uint16_t per_direction) : k_(per_direction) {}

  void record(tap::Direction d, const tap::FrameHeader& h, std::uint32_t t_ms);
  // Completes the direction's latest close entry with its code and reason
  // (redacted, capped): the tap decodes a close payload after its header.
  void record_close(tap::Direction d, std::uint16_t code, std::string_view reason);

  // Allocates the block (the first record() does it too).
  void prepare();
  // Copies `from`'s frames into this log's block (same capacity, prepared):
  // for readers on other threads, so only a copy is made under the lock.
  void assign(const FlightLog& from);

  bool empty() const { return !entries_; }
  std::uint16_t capacity() const { return k_; }
  std::size_t size(tap::Direction d) const { return count_[idx(d)]; }
  // Heap bytes held (entries and close reasons), without malloc's overhead.
  std::size_t heap_bytes() const;

  // Both directions, oldest first (ties: client_to_upstream first), as the
  // incident's `frames`: [{t_ms, direction, opcode, fin, rsv, length,
  // masked[, close_code, close_reason]}].
  nlohmann::json to_json() const;

 private:
  static std::size_t idx(tap::Direction d) { return static_cast<std::size_t>(d); }
  const RecordedFrame& at(std::size_t dir, std::size_t i) const;  // i-th oldest

  std::unique_ptr<RecordedFrame[]> entries_;  // 2 * k_: direction 0, then 1
  std::unique_ptr<std::string[]> reasons_;    // per direction, on the first close
  std::uint16_t k_ = 0;
  std::uint16_t head_[2] = {};   // next slot to write
  std::uint16_t count_[2] = {};  // filled slots
};

class FlightRecorder {
 public:
  // frames_per_direction 0 disables it: nothing is recorded or allocated.
  explicit FlightRecorder(std::uint16_t frames_per_direction) : log_(frames_per_direction) {}

  bool enabled() const { return log_.capacity() != 0; }

  // Session I/O thread.
  void record(tap::Direction d, const tap::FrameHeader& h, std::chrono::milliseconds since_start);
  void record_close(tap::Direction d, std::uint16_t code, std::string_view reason);
  // At session end: the log, for the session summary. Nothing is recorded after.
  std::shared_ptr<const FlightLog> release();

  // Any thread.
  nlohmann::json to_json() const;

  // Bytes one session spends on its recorder once it has seen a frame: the
  // recorder in the session object plus the block, rounded up to glibc's
  // 16-byte chunks with their 8-byte header.
  static std::size_t footprint_bytes(std::uint16_t frames_per_direction);

 private:
  mutable std::mutex mutex_;
  FlightLog log_;
};

}  // namespace wsgate::proxy
