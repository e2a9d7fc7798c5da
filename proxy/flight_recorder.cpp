#include "proxy/flight_recorder.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <thread>

#include "common/redact.hpp"
#include "proxy/tap/utf8.hpp"

namespace wsgate::proxy {

namespace {

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
void cap_utf8(std::string& s, std::size_t max) {
  if (s.size() <= max) return;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  s.resize(n);
}

std::size_t malloc_chunk(std::size_t n) { return n == 0 ? 0 : (n + 8 + 15) / 16 * 16; }

}  // namespace

RecordedFrame FlightLog::encode(const tap::FrameHeader& h, std::uint32_t t_ms) {
  const std::uint64_t len = std::min(h.length, RecordedFrame::kMaxLength);
  RecordedFrame e;
  e.t_ms = t_ms;
  e.len_lo = static_cast<std::uint32_t>(len);
  e.b0 = static_cast<std::uint8_t>((h.fin ? 0x80 : 0) | ((h.rsv & 0x07) << 4) | (h.opcode & 0x0F));
  e.b1 = static_cast<std::uint8_t>((h.masked ? 0x80 : 0) | ((len >> 32) & 0x7F));
  return e;
}

void FlightLog::record(tap::Direction d, const tap::FrameHeader& h, std::uint32_t t_ms) {
  if (k_ == 0) return;
  prepare();
  const std::size_t dir = idx(d);
  entries_[dir * k_ + head_[dir]] = encode(h, t_ms);
  head_[dir] = static_cast<std::uint16_t>(head_[dir] + 1 == k_ ? 0 : head_[dir] + 1);
  if (count_[dir] < k_) ++count_[dir];
}

void FlightLog::set_ring(std::size_t dir, std::uint16_t head, std::uint16_t count) {
  head_[dir] = head;
  count_[dir] = count;
}

void FlightLog::set_reason(std::size_t dir, const std::string& reason) {
  if (!reasons_) reasons_ = std::make_unique<std::string[]>(2);
  reasons_[dir] = reason;
}

void FlightLog::record_close(tap::Direction d, std::uint16_t code, std::string_view reason) {
  const std::size_t dir = idx(d);
  if (!entries_ || count_[dir] == 0) return;
  RecordedFrame& e = entries_[dir * k_ + (head_[dir] == 0 ? k_ - 1 : head_[dir] - 1)];
  if (e.opcode() != static_cast<std::uint8_t>(tap::Opcode::close)) return;
  e.close_code = code;
  if (!reasons_) reasons_ = std::make_unique<std::string[]>(2);
  // Redacted whole, then cut: a cut first could leave a secret too short
  // to be recognised.
  reasons_[dir] = redacted(reason);
  cap_utf8(reasons_[dir], kMaxReason);
}

void FlightLog::prepare_text() {
  if (k_ != 0 && text_bytes_ != 0 && !text_)
    text_ = std::make_unique<std::uint8_t[]>(2 * std::size_t{k_} * text_stride());
}

std::uint8_t* FlightLog::text_slot(std::size_t dir, std::size_t slot) {
  return text_.get() + (dir * k_ + slot) * text_stride();
}

void FlightLog::prepare() {
  if (k_ != 0 && !entries_) entries_ = std::make_unique<RecordedFrame[]>(2 * std::size_t{k_});
}

std::size_t FlightLog::heap_bytes() const {
  std::size_t n = entries_ ? 2 * std::size_t{k_} * sizeof(RecordedFrame) : 0;
  if (reasons_) n += 2 * sizeof(std::string) + reasons_[0].capacity() + reasons_[1].capacity();
  if (text_) n += 2 * std::size_t{k_} * text_stride();
  return n;
}

std::size_t FlightLog::slot_of(std::size_t dir, std::size_t i) const {
  std::size_t first = count_[dir] < k_ ? 0 : head_[dir];
  std::size_t slot = first + i;
  return slot >= k_ ? slot - k_ : slot;
}

const RecordedFrame& FlightLog::at(std::size_t dir, std::size_t i) const {
  return entries_[dir * k_ + slot_of(dir, i)];
}

nlohmann::json FlightLog::to_json() const {
  auto out = nlohmann::json::array();
  if (!entries_) return out;
  std::size_t i[2] = {0, 0};
  while (i[0] < count_[0] || i[1] < count_[1]) {
    std::size_t dir;
    if (i[0] == count_[0])
      dir = 1;
    else if (i[1] == count_[1])
      dir = 0;
    else
      dir = at(1, i[1]).t_ms < at(0, i[0]).t_ms ? 1 : 0;
    const std::size_t slot = slot_of(dir, i[dir]++);
    const RecordedFrame& e = entries_[dir * k_ + slot];
    nlohmann::json f = {
        {"t_ms", e.t_ms},
        {"direction", std::string(tap::to_string(static_cast<tap::Direction>(dir)))},
        {"opcode", e.opcode()},
        {"fin", e.fin()},
        {"rsv", e.rsv()},
        {"length", e.length()},
        {"masked", e.masked()}};
    if (e.length() == RecordedFrame::kMaxLength) f["length_capped"] = true;
    if (e.close_code != 0) {
      f["close_code"] = e.close_code;
      f["close_reason"] = reasons_ ? reasons_[dir] : std::string();
    }
    if (text_) {
      const std::uint8_t* t = text_.get() + (dir * k_ + slot) * text_stride();
      if (t[1] & kTextPresent) {
        const std::string_view raw(reinterpret_cast<const char*>(t + 2), t[0]);
        const bool cut = (t[1] & kTextCut) != 0;
        // A cut may split a character; the cut rule drops it with its word.
        if (cut || tap::is_valid_utf8(raw))
          f["text"] = redacted_prefix(raw, cut);
        else
          f["text_not_utf8"] = true;
        f["text_cut"] = cut;
      }
    }
    out.push_back(std::move(f));
  }
  return out;
}

FlightRecorder::FlightRecorder(std::uint16_t frames_per_direction, std::uint8_t text_prefix_bytes)
    : k_(frames_per_direction),
      text_bytes_(frames_per_direction == 0 ? 0
                                            : static_cast<std::uint8_t>(std::min<std::size_t>(
                                                  text_prefix_bytes, FlightLog::kMaxTextPrefix))) {}

FlightRecorder::~FlightRecorder() { delete[] block_.load(std::memory_order_relaxed); }

void FlightRecorder::record(tap::Direction d, const tap::FrameHeader& h,
                            std::chrono::milliseconds since_start) {
  if (k_ == 0 || released_) return;
  if (!block_.load(std::memory_order_relaxed))
    block_.store(new Word[2 * std::size_t{k_} * (kWords + text_words())](),
                 std::memory_order_release);
  const auto ms = static_cast<std::uint64_t>(std::max<std::int64_t>(0, since_start.count()));
  const auto t = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(ms, std::numeric_limits<std::uint32_t>::max()));
  const std::size_t dir = static_cast<std::size_t>(d);
  const std::uint16_t head = head_[dir].load(std::memory_order_relaxed);
  const std::uint16_t count = count_[dir].load(std::memory_order_relaxed);
  // Head and count change inside the same write as the entry.
  Word* w = block_.load(std::memory_order_relaxed) + (dir * k_ + head) * kWords;
  const std::uint32_t s = seq_[dir].load(std::memory_order_relaxed);
  seq_[dir].store(s + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  const RecordedFrame e = FlightLog::encode(h, t);
  w[0].store(e.t_ms, std::memory_order_relaxed);
  w[1].store(e.len_lo, std::memory_order_relaxed);
  w[2].store(std::uint32_t{e.b0} | std::uint32_t{e.b1} << 8, std::memory_order_relaxed);
  if (Word* text = text_area(block_.load(std::memory_order_relaxed)))
    text[(dir * k_ + head) * text_words()].store(0, std::memory_order_relaxed);
  head_[dir].store(static_cast<std::uint16_t>(head + 1 == k_ ? 0 : head + 1),
                   std::memory_order_relaxed);
  if (count < k_)
    count_[dir].store(static_cast<std::uint16_t>(count + 1), std::memory_order_relaxed);
  seq_[dir].store(s + 2, std::memory_order_release);
}

void FlightRecorder::record_close(tap::Direction d, std::uint16_t code, std::string_view reason) {
  const std::size_t dir = static_cast<std::size_t>(d);
  Word* block = block_.load(std::memory_order_relaxed);
  if (!block || released_ || count_[dir].load(std::memory_order_relaxed) == 0) return;
  const std::uint16_t head = head_[dir].load(std::memory_order_relaxed);
  const std::size_t slot = head == 0 ? k_ - 1u : head - 1u;
  Word* w = block + (dir * k_ + slot) * kWords;
  const std::uint32_t word2 = w[2].load(std::memory_order_relaxed);
  if ((word2 & 0x0F) != static_cast<std::uint8_t>(tap::Opcode::close)) return;
  // Redacted whole, then cut: a cut first could leave a secret too short
  // to be recognised.
  std::string clean = redacted(reason);
  cap_utf8(clean, FlightLog::kMaxReason);
  {
    std::lock_guard lock(reasons_mutex_);
    if (!reasons_) reasons_ = std::make_unique<std::string[]>(2);
    reasons_[dir] = std::move(clean);
  }
  const std::uint32_t s = seq_[dir].load(std::memory_order_relaxed);
  seq_[dir].store(s + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  w[2].store((word2 & 0xFFFF) | std::uint32_t{code} << 16, std::memory_order_relaxed);
  seq_[dir].store(s + 2, std::memory_order_release);
}

void FlightRecorder::record_text(tap::Direction d, std::span<const std::uint8_t> bytes, bool cut) {
  const std::size_t dir = static_cast<std::size_t>(d);
  Word* block = block_.load(std::memory_order_relaxed);
  if (text_bytes_ == 0 || !block || released_ || count_[dir].load(std::memory_order_relaxed) == 0)
    return;
  const std::uint16_t head = head_[dir].load(std::memory_order_relaxed);
  const std::size_t slot = head == 0 ? k_ - 1u : head - 1u;
  const std::uint32_t word2 = block[(dir * k_ + slot) * kWords + 2].load(std::memory_order_relaxed);
  if ((word2 & 0x0F) != static_cast<std::uint8_t>(tap::Opcode::text)) return;
  Word* text = text_area(block);
  if (bytes.size() > text_bytes_) {
    bytes = bytes.first(text_bytes_);
    cut = true;
  }
  std::uint32_t packed[1 + FlightLog::kMaxTextPrefix / 4] = {};
  std::memcpy(packed, bytes.data(), bytes.size());
  Word* w = text + (dir * k_ + slot) * text_words();
  const std::uint32_t s = seq_[dir].load(std::memory_order_relaxed);
  seq_[dir].store(s + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  const std::uint32_t flags = FlightLog::kTextPresent | (cut ? FlightLog::kTextCut : 0u);
  w[0].store(static_cast<std::uint32_t>(bytes.size()) | flags << 8, std::memory_order_relaxed);
  for (std::size_t i = 0; i < (bytes.size() + 3) / 4; ++i)
    w[1 + i].store(packed[i], std::memory_order_relaxed);
  seq_[dir].store(s + 2, std::memory_order_release);
}

bool FlightRecorder::copy_direction(std::size_t dir, const Word* block, const Word* text,
                                    FlightLog& out) const {
  RecordedFrame* dst = out.slots(dir);
  // A write takes nanoseconds; a reader that keeps colliding with a busy
  // writer yields and tries again, a bounded number of times.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const std::uint32_t s1 = seq_[dir].load(std::memory_order_acquire);
    if (s1 & 1) {
      std::this_thread::yield();
      continue;
    }
    const std::uint16_t head = head_[dir].load(std::memory_order_relaxed);
    const std::uint16_t count = count_[dir].load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < k_; ++i) {
      const Word* w = block + (dir * k_ + i) * kWords;
      dst[i].t_ms = w[0].load(std::memory_order_relaxed);
      dst[i].len_lo = w[1].load(std::memory_order_relaxed);
      const std::uint32_t word2 = w[2].load(std::memory_order_relaxed);
      dst[i].b0 = static_cast<std::uint8_t>(word2);
      dst[i].b1 = static_cast<std::uint8_t>(word2 >> 8);
      dst[i].close_code = static_cast<std::uint16_t>(word2 >> 16);
      if (text) {
        const Word* t = text + (dir * k_ + i) * text_words();
        std::uint32_t packed[1 + FlightLog::kMaxTextPrefix / 4];
        const std::uint32_t header = t[0].load(std::memory_order_relaxed);
        const std::size_t len = std::min<std::size_t>(header & 0xFF, text_bytes_);
        for (std::size_t j = 0; j < (len + 3) / 4; ++j)
          packed[j] = t[1 + j].load(std::memory_order_relaxed);
        std::uint8_t* slot = out.text_slot(dir, i);
        slot[0] = static_cast<std::uint8_t>(len);
        slot[1] = static_cast<std::uint8_t>(header >> 8);
        std::memcpy(slot + 2, packed, len);
      }
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (seq_[dir].load(std::memory_order_relaxed) == s1) {
      out.set_ring(dir, head, count);
      return true;
    }
  }
  return false;
}

FlightLog FlightRecorder::snapshot(bool& complete) const {
  FlightLog out(k_, text_bytes_);
  const Word* block = block_.load(std::memory_order_acquire);
  if (!block) return out;
  out.prepare();
  const Word* text = text_area(block);
  if (text) out.prepare_text();
  for (std::size_t dir = 0; dir < 2; ++dir)
    if (!copy_direction(dir, block, text, out)) {
      out.set_ring(dir, 0, 0);
      complete = false;
      spdlog::warn("flight recorder: no consistent copy of a busy session's {} frames",
                   tap::to_string(static_cast<tap::Direction>(dir)));
    }
  std::lock_guard lock(reasons_mutex_);
  if (reasons_)
    for (std::size_t dir = 0; dir < 2; ++dir) out.set_reason(dir, reasons_[dir]);
  return out;
}

std::shared_ptr<const FlightLog> FlightRecorder::release() {
  released_ = true;
  if (!block_.load(std::memory_order_relaxed)) return nullptr;
  bool complete = true;  // this thread is the writer: always
  return std::make_shared<const FlightLog>(snapshot(complete));
}

nlohmann::json FlightRecorder::to_json(bool* complete) const {
  bool whole = true;
  auto out = snapshot(whole).to_json();
  if (complete) *complete = whole;
  return out;
}

std::size_t FlightRecorder::footprint_bytes(std::uint16_t k, std::uint8_t text_prefix_bytes) {
  if (k == 0) return sizeof(FlightRecorder);
  const std::size_t n = std::min<std::size_t>(text_prefix_bytes, FlightLog::kMaxTextPrefix);
  const std::size_t text_words = n == 0 ? 0 : 1 + (n + 3) / 4;
  return sizeof(FlightRecorder) +
         malloc_chunk(2 * std::size_t{k} * (sizeof(RecordedFrame) + text_words * sizeof(Word)));
}

}  // namespace wsgate::proxy
