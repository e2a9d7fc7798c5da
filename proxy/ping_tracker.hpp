#pragma once
// Pings seen in one direction, waiting for their pongs in the other: every
// answered ping is an RTT sample, with up to kMaxOutstanding in flight. Only a
// fingerprint of each payload and a 32-bit microsecond stamp are kept (8
// bytes a ping), enough to match the pong and time RTTs up to 71 minutes. A
// ping arriving while the window is full evicts the oldest (the caller counts
// it: no sample for that one).
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>

namespace wsgate::proxy {

class PingTracker {
 public:
  static constexpr std::size_t kMaxOutstanding = 4;
  using Clock = std::chrono::steady_clock;

  // window: pings kept outstanding at most, 1..kMaxOutstanding.
  explicit PingTracker(std::size_t window = kMaxOutstanding)
      : window_(static_cast<std::uint8_t>(window < 1                 ? 1
                                          : window > kMaxOutstanding ? kMaxOutstanding
                                                                     : window)) {}

  // Returns true when an older ping was evicted to make room.
  bool on_ping(std::span<const std::uint8_t> payload, Clock::time_point now) {
    bool evicted = false;
    if (count_ == window_) {  // drop the oldest
      remove(0);
      evicted = true;
    }
    slots_[count_++] = {fingerprint(payload), stamp(now)};
    return evicted;
  }

  // The RTT of the ping this pong answers (the oldest one with the same
  // payload), or nothing for an unsolicited pong (a heartbeat) or a stale one.
  std::optional<std::chrono::microseconds> on_pong(std::span<const std::uint8_t> payload,
                                                   Clock::time_point now) {
    if (count_ == 0) return std::nullopt;
    const std::uint32_t h = fingerprint(payload);
    for (std::size_t i = 0; i < count_; ++i) {
      if (slots_[i].hash != h) continue;
      // Unsigned difference: right across the stamp's wrap-around.
      std::chrono::microseconds rtt(static_cast<std::uint32_t>(stamp(now) - slots_[i].sent_us));
      remove(i);
      return rtt;
    }
    return std::nullopt;
  }

  std::size_t outstanding() const { return count_; }

 private:
  // FNV-1a over the length and the payload, folded to 32 bits; a collision
  // would only mis-time one sample.
  static std::uint32_t fingerprint(std::span<const std::uint8_t> payload) {
    std::uint64_t h = (14695981039346656037ull ^ payload.size()) * 1099511628211ull;
    for (auto b : payload) h = (h ^ b) * 1099511628211ull;
    return static_cast<std::uint32_t>(h ^ (h >> 32));
  }
  static std::uint32_t stamp(Clock::time_point t) {
    return static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count());
  }
  void remove(std::size_t i) {
    for (std::size_t j = i + 1; j < count_; ++j) slots_[j - 1] = slots_[j];
    --count_;
  }

  struct Slot {
    std::uint32_t hash = 0;
    std::uint32_t sent_us = 0;
  };
  std::array<Slot, kMaxOutstanding> slots_{};
  std::uint8_t count_ = 0;
  std::uint8_t window_;
};

}  // namespace wsgate::proxy
