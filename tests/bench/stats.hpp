#pragma once
// Per-thread counters (no atomics: each is touched by one io_context thread)
// and their JSON form once the threads have joined.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/bench/histogram.hpp"

namespace wsgate::bench {

struct ThreadStats {
  Histogram histogram;  // nanoseconds
  Histogram send_lag;   // open loop: actual send - scheduled send, nanoseconds
  std::uint64_t messages = 0;
  std::uint64_t sent = 0;  // open loop: messages scheduled inside the window
  std::uint64_t errors = 0;
  std::vector<std::string> samples;  // first few distinct error texts

  void error(std::string what) {
    ++errors;
    if (samples.size() < 5 && std::find(samples.begin(), samples.end(), what) == samples.end())
      samples.push_back(std::move(what));
  }
};

inline ThreadStats merge(std::vector<ThreadStats>& parts) {
  ThreadStats total;
  for (auto& p : parts) {
    total.histogram.merge(p.histogram);
    total.send_lag.merge(p.send_lag);
    total.messages += p.messages;
    total.sent += p.sent;
    total.errors += p.errors;
    for (auto& s : p.samples)
      if (total.samples.size() < 5 &&
          std::find(total.samples.begin(), total.samples.end(), s) == total.samples.end())
        total.samples.push_back(s);
  }
  return total;
}

inline nlohmann::json latency_json(const Histogram& h) {
  auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  return {{"p50", us(h.percentile(0.50))},   {"p90", us(h.percentile(0.90))},
          {"p99", us(h.percentile(0.99))},   {"p999", us(h.percentile(0.999))},
          {"max", us(h.max())},              {"mean", h.mean() / 1000.0},
          {"samples", h.count()}};
}

}  // namespace wsgate::bench
