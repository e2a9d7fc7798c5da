#include "proxy/tap/utf8.hpp"

#include <array>
#include <cstring>

namespace wsgate::tap {
namespace {

// Byte classes:
//  0: 00..7F  ASCII            6: E0      (next A0..BF: no overlong)
//  1: 80..8F  continuation     7: E1..EC, EE..EF
//  2: 90..9F  continuation     8: ED      (next 80..9F: no surrogates)
//  3: A0..BF  continuation     9: F0      (next 90..BF: no overlong)
//  4: C0, C1, F5..FF invalid  10: F1..F3
//  5: C2..DF                  11: F4      (next 80..8F: <= U+10FFFF)
constexpr std::array<uint8_t, 256> make_classes() {
  std::array<uint8_t, 256> c{};
  for (int b = 0; b < 256; ++b) {
    uint8_t k = 4;
    if (b <= 0x7F) k = 0;
    else if (b <= 0x8F) k = 1;
    else if (b <= 0x9F) k = 2;
    else if (b <= 0xBF) k = 3;
    else if (b <= 0xC1) k = 4;
    else if (b <= 0xDF) k = 5;
    else if (b == 0xE0) k = 6;
    else if (b == 0xED) k = 8;
    else if (b <= 0xEF) k = 7;
    else if (b == 0xF0) k = 9;
    else if (b <= 0xF3) k = 10;
    else if (b == 0xF4) k = 11;
    c[static_cast<size_t>(b)] = k;
  }
  return c;
}
constexpr std::array<uint8_t, 256> kClass = make_classes();

// States: 0 accept, 1 reject, 2 need one continuation, 3 need two, 4 need three,
// 5 after E0, 6 after ED, 7 after F0, 8 after F4.
constexpr uint8_t R = 1;
constexpr uint8_t kNext[9][12] = {
    // cls: 0  1  2  3  4  5  6  7  8  9  10 11
    /*0*/ {0, R, R, R, R, 2, 5, 3, 6, 7, 4, 8},
    /*1*/ {R, R, R, R, R, R, R, R, R, R, R, R},
    /*2*/ {R, 0, 0, 0, R, R, R, R, R, R, R, R},
    /*3*/ {R, 2, 2, 2, R, R, R, R, R, R, R, R},
    /*4*/ {R, 3, 3, 3, R, R, R, R, R, R, R, R},
    /*5*/ {R, R, R, 2, R, R, R, R, R, R, R, R},
    /*6*/ {R, 2, 2, R, R, R, R, R, R, R, R, R},
    /*7*/ {R, R, 3, 3, R, R, R, R, R, R, R, R},
    /*8*/ {R, 3, R, R, R, R, R, R, R, R, R, R},
};

}  // namespace

bool Utf8Validator::feed(const uint8_t* data, size_t n) noexcept {
  uint8_t s = state_;
  size_t i = 0;
  while (i < n) {
    if (s == kReject) break;
    if (s == kAccept) {
      // ASCII fast path: eight bytes at a time while none has the top bit set.
      while (n - i >= 8) {
        uint64_t w;
        std::memcpy(&w, data + i, 8);
        if (w & 0x8080808080808080ULL) break;
        i += 8;
      }
      if (i == n) break;
    }
    s = kNext[s][kClass[data[i]]];
    ++i;
  }
  state_ = s;
  return s != kReject;
}

bool is_valid_utf8(const uint8_t* data, size_t n) noexcept {
  Utf8Validator v;
  v.feed(data, n);
  return v.complete();
}

}  // namespace wsgate::tap
