#pragma once
// check_splits(): feeds a stream whole, then cut at every byte boundary (once),
// byte by byte, and (for short streams) at every pair of boundaries, and
// asserts that everything observable is identical. Returns the whole-feed outcome.

#include <gtest/gtest.h>

#include "tests/unit/tap/tap_test_util.hpp"

namespace wsgate::tap::testing {

inline Outcome check_splits(const TapConfig& cfg, const Bytes& in) {
  const Outcome whole = run_whole(cfg, in);
  const size_t n = in.size();
  auto cut_ok = [&](size_t k) {
    if (n <= 4096) return true;
    return k < 64 || k + 64 > n || k % 257 == 0;  // big payloads: edges + a sample
  };
  for (size_t k = 1; k < n; ++k) {
    if (!cut_ok(k)) continue;
    const Outcome o = run_cuts(cfg, in, {k});
    EXPECT_EQ(o, whole) << "cut at " << k << " of " << n;
    if (o != whole) return whole;
  }
  {
    const Outcome o = run_bytewise(cfg, in);
    EXPECT_EQ(o, whole) << "byte by byte, " << n << " bytes";
  }
  if (n <= 40) {
    for (size_t a = 1; a < n; ++a) {
      for (size_t b = a; b < n; ++b) {  // b == a: an empty chunk in between
        const Outcome o = run_cuts(cfg, in, {a, b});
        EXPECT_EQ(o, whole) << "cuts at " << a << "," << b;
        if (o != whole) return whole;
      }
    }
  }
  return whole;
}

inline TapConfig client_cfg() {
  TapConfig c;
  c.direction = Direction::client_to_upstream;
  return c;
}
inline TapConfig server_cfg() {
  TapConfig c;
  c.direction = Direction::upstream_to_client;
  return c;
}

using Events = std::vector<std::string>;

}  // namespace wsgate::tap::testing
