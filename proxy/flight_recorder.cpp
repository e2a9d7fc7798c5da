#include "proxy/flight_recorder.hpp"

#include <algorithm>
#include <limits>

#include "common/redact.hpp"

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

void FlightLog::record(tap::Direction d, const tap::FrameHeader& h, std::uint32_t t_ms) {
  if (k_ == 0) return;
  prepare();
  const std::size_t dir = idx(d);
  RecordedFrame& e = entries_[dir * k_ + head_[dir]];
  const std::uint64_t len = std::min(h.length, RecordedFrame::kMaxLength);
  e.t_ms = t_ms;
  e.len_lo = static_cast<std::uint32_t>(len);
  e.b0 = static_cast<std::uint8_t>((h.fin ? 0x80 : 0) | ((h.rsv & 0x07) << 4) | (h.opcode & 0x0F));
  e.b1 = static_cast<std::uint8_t>((h.masked ? 0x80 : 0) | ((len >> 32) & 0x7F));
  e.close_code = 0;
  head_[dir] = static_cast<std::uint16_t>(head_[dir] + 1 == k_ ? 0 : head_[dir] + 1);
  if (count_[dir] < k_) ++count_[dir];
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

void FlightLog::prepare() {
  if (k_ != 0 && !entries_) entries_ = std::make_unique<RecordedFrame[]>(2 * std::size_t{k_});
}

void FlightLog::assign(const FlightLog& from) {
  if (!from.entries_ || !entries_ || from.k_ != k_) {
    head_[0] = head_[1] = count_[0] = count_[1] = 0;
    if (!from.entries_) entries_.reset();
    return;
  }
  std::copy_n(from.entries_.get(), 2 * std::size_t{k_}, entries_.get());
  for (std::size_t d = 0; d < 2; ++d) {
    head_[d] = from.head_[d];
    count_[d] = from.count_[d];
  }
  if (from.reasons_) {
    if (!reasons_) reasons_ = std::make_unique<std::string[]>(2);
    reasons_[0] = from.reasons_[0];
    reasons_[1] = from.reasons_[1];
  }
}

std::size_t FlightLog::heap_bytes() const {
  std::size_t n = entries_ ? 2 * std::size_t{k_} * sizeof(RecordedFrame) : 0;
  if (reasons_) n += 2 * sizeof(std::string) + reasons_[0].capacity() + reasons_[1].capacity();
  return n;
}

const RecordedFrame& FlightLog::at(std::size_t dir, std::size_t i) const {
  std::size_t first = count_[dir] < k_ ? 0 : head_[dir];
  std::size_t slot = first + i;
  if (slot >= k_) slot -= k_;
  return entries_[dir * k_ + slot];
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
    const RecordedFrame& e = at(dir, i[dir]++);
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
    out.push_back(std::move(f));
  }
  return out;
}

void FlightRecorder::record(tap::Direction d, const tap::FrameHeader& h,
                            std::chrono::milliseconds since_start) {
  const auto ms = static_cast<std::uint64_t>(std::max<std::int64_t>(0, since_start.count()));
  const auto t = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(ms, std::numeric_limits<std::uint32_t>::max()));
  std::lock_guard lock(mutex_);
  log_.record(d, h, t);
}

void FlightRecorder::record_close(tap::Direction d, std::uint16_t code, std::string_view reason) {
  if (!enabled()) return;
  std::lock_guard lock(mutex_);
  log_.record_close(d, code, reason);
}

std::shared_ptr<const FlightLog> FlightRecorder::release() {
  std::lock_guard lock(mutex_);
  if (log_.empty()) return nullptr;
  auto out = std::make_shared<const FlightLog>(std::move(log_));
  log_ = FlightLog();  // disabled from here on
  return out;
}

nlohmann::json FlightRecorder::to_json() const {
  // Copied under the lock, rendered outside it: the frame path never waits
  // for the JSON.
  FlightLog copy(log_.capacity());
  copy.prepare();
  {
    std::lock_guard lock(mutex_);
    copy.assign(log_);
  }
  return copy.to_json();
}

std::size_t FlightRecorder::footprint_bytes(std::uint16_t k) {
  if (k == 0) return sizeof(FlightRecorder);
  return sizeof(FlightRecorder) + malloc_chunk(2 * std::size_t{k} * sizeof(RecordedFrame));
}

}  // namespace wsgate::proxy
