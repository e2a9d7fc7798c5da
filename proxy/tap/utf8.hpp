#pragma once
// Incremental UTF-8 validator (RFC 3629): a 9-state DFA over 12 byte classes.
// Rejects overlong forms, UTF-16 surrogates (U+D800..U+DFFF), code points
// above U+10FFFF and the bytes C0, C1, F5..FF. Input may be split anywhere:
// feed() keeps the state between calls; complete() says whether the text fed
// so far ends on a code-point boundary. No allocation, no exceptions.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace wsgate::tap {

class Utf8Validator {
 public:
  // Feeds the next bytes. Returns false once the input can no longer be valid
  // (sticky: later calls keep returning false until reset()).
  bool feed(const uint8_t* data, size_t n) noexcept;
  bool feed(std::span<const uint8_t> s) noexcept { return feed(s.data(), s.size()); }

  // No invalid byte seen so far (the text may still end inside a sequence).
  bool ok() const noexcept { return state_ != kReject; }
  // Valid and not inside a multi-byte sequence: the text fed so far is valid UTF-8.
  bool complete() const noexcept { return state_ == kAccept; }
  void reset() noexcept { state_ = kAccept; }

 private:
  static constexpr uint8_t kAccept = 0;
  static constexpr uint8_t kReject = 1;
  uint8_t state_ = kAccept;
};

// Whole-buffer helpers.
bool is_valid_utf8(const uint8_t* data, size_t n) noexcept;
inline bool is_valid_utf8(std::string_view s) noexcept {
  return is_valid_utf8(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

}  // namespace wsgate::tap
