// libFuzzer target: the frame tap, client_to_upstream (masked frames).
#include "tests/fuzz/fuzz_tap_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return wsgate::tap::fuzz::fuzz_tap(wsgate::tap::Direction::client_to_upstream, data, size);
}
