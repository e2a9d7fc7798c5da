#pragma once
// A log-linear latency histogram in the manner of HdrHistogram: values below
// 256 are exact, above that each power of two is split into 128 linear
// sub-buckets, so every recorded value is known to within 1/128 (< 0.8 %).
// Fixed size (8 Ki buckets, 64 KiB), no allocation after construction; one per
// thread, merged at the end.
#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <limits>
#include <memory>

namespace wsgate::bench {

class Histogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr std::uint64_t kSub = std::uint64_t{1} << kSubBits;
  static constexpr std::size_t kBuckets = 64 * kSub;

  Histogram() : counts_(std::make_unique<std::array<std::uint64_t, kBuckets>>()) {
    counts_->fill(0);
  }

  void record(std::uint64_t v) {
    ++(*counts_)[index_of(v)];
    ++total_;
    sum_ += static_cast<double>(v);
    max_ = std::max(max_, v);
    min_ = std::min(min_, v);
  }

  void merge(const Histogram& other) {
    for (std::size_t i = 0; i < kBuckets; ++i) (*counts_)[i] += (*other.counts_)[i];
    total_ += other.total_;
    sum_ += other.sum_;
    max_ = std::max(max_, other.max_);
    min_ = std::min(min_, other.min_);
  }

  std::uint64_t count() const { return total_; }
  std::uint64_t max() const { return total_ ? max_ : 0; }
  std::uint64_t min() const { return total_ ? min_ : 0; }
  double mean() const { return total_ ? sum_ / static_cast<double>(total_) : 0.0; }

  // The highest value equivalent to the bucket holding quantile q (0..1],
  // capped at the exact maximum, as HdrHistogram reports percentiles.
  std::uint64_t percentile(double q) const {
    if (total_ == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_) + 0.5);
    rank = std::clamp<std::uint64_t>(rank, 1, total_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += (*counts_)[i];
      if (seen >= rank) return std::min(upper_of(i), max_);
    }
    return max_;
  }

  static std::size_t index_of(std::uint64_t v) {
    if (v < 2 * kSub) return static_cast<std::size_t>(v);
    const int shift = std::bit_width(v) - (kSubBits + 1);  // >= 1
    return static_cast<std::size_t>(shift) * kSub + static_cast<std::size_t>(v >> shift);
  }
  static std::uint64_t upper_of(std::size_t index) {
    if (index < 2 * kSub) return index;
    const std::size_t shift = index / kSub - 1;
    const std::uint64_t m = index - shift * kSub;  // in [kSub, 2 kSub)
    return ((m + 1) << shift) - 1;
  }

 private:
  std::unique_ptr<std::array<std::uint64_t, kBuckets>> counts_;
  std::uint64_t total_ = 0;
  double sum_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max();
};

}  // namespace wsgate::bench
