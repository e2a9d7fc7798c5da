// libFuzzer target: the UTF-8 DFA against a reference decoder, whole, split
// at a position taken from the input, and byte by byte.

#include <cstdint>

#include "proxy/tap/utf8.hpp"
#include "tests/fuzz/fuzz_check.hpp"
#include "tests/unit/tap/tap_test_util.hpp"

using namespace wsgate::tap;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const bool want = wsgate::tap::testing::reference_utf8({data, size});
  FUZZ_CHECK(is_valid_utf8(data, size) == want);

  const size_t cut = size ? data[0] % (size + 1) : 0;
  Utf8Validator split;
  split.feed(data, cut);
  split.feed(data + cut, size - cut);
  FUZZ_CHECK(split.complete() == want);

  Utf8Validator bytewise;
  bool ok = true;
  for (size_t i = 0; i < size; ++i) {
    const bool now = bytewise.feed(data + i, 1);
    FUZZ_CHECK(!(now && !ok));  // rejection is sticky
    ok = now;
    // ok() means some continuation could still make the prefix valid: never
    // after a byte the reference would reject in every completion.
  }
  FUZZ_CHECK(bytewise.complete() == want);
  FUZZ_CHECK(bytewise.ok() == split.ok());
  if (want) FUZZ_CHECK(bytewise.ok());
  return 0;
}
