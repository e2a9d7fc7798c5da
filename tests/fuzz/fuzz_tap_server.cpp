// libFuzzer target: the frame tap, upstream_to_client (unmasked frames).
#include "tests/fuzz/fuzz_tap_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return wsgate::tap::fuzz::fuzz_tap(wsgate::tap::Direction::upstream_to_client, data, size);
}
