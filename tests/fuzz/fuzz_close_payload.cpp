// libFuzzer target: close payloads. Input: 4 bytes of mask key, 1 byte of
// split position, then the payload. parse_close_payload() must agree with an
// independent reading of RFC 6455 7.4 and RFC 3629; the same payload inside a
// masked close frame, split anywhere, must give the same code, reason and
// violation through the tap.

#include <cstdint>

#include "proxy/tap/frame_tap.hpp"
#include "tests/fuzz/fuzz_check.hpp"
#include "tests/unit/tap/tap_test_util.hpp"

using namespace wsgate::tap;
using namespace wsgate::tap::testing;

namespace {

bool reference_code_ok(unsigned c) {
  switch (c) {
    case 1000: case 1001: case 1002: case 1003: case 1007: case 1008: case 1009:
    case 1010: case 1011: case 1012: case 1013: case 1014:
      return true;
    default:
      return c >= 3000 && c < 5000;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;
  const uint32_t key = (uint32_t{data[0]} << 24) | (uint32_t{data[1]} << 16) |
                       (uint32_t{data[2]} << 8) | data[3];
  const uint8_t split = data[4];
  const std::span<const uint8_t> payload(data + 5, size - 5);

  const ClosePayload cp = parse_close_payload(payload);
  Violation want = Violation::none;
  uint16_t want_code = 1005;
  if (payload.size() == 1) {
    want = Violation::close_payload_one_byte;
  } else if (payload.size() >= 2) {
    want_code = static_cast<uint16_t>(payload[0] << 8 | payload[1]);
    if (!reference_code_ok(want_code)) want = Violation::close_code_invalid;
    else if (!reference_utf8(payload.subspan(2))) want = Violation::close_reason_not_utf8;
  }
  FUZZ_CHECK(cp.violation == want);
  FUZZ_CHECK(cp.code == want_code);
  FUZZ_CHECK(cp.reason.size() == (payload.size() >= 2 ? payload.size() - 2 : 0));
  FUZZ_CHECK(close_code_valid_on_wire(want_code) == reference_code_ok(want_code));

  // Through the tap, as a client close frame (payloads > 125 are a violation).
  const Bytes body(payload.begin(), payload.end());
  const Bytes f = cframe(0x8, body, {.fin = true, .rsv = 0, .mask = key, .form = LenForm::minimal,
                                     .announced = std::nullopt});
  TapConfig cfg;
  cfg.direction = Direction::client_to_upstream;
  const Outcome whole = run_whole(cfg, f);
  const size_t cut = f.empty() ? 0 : split % f.size();
  FUZZ_CHECK(run_cuts(cfg, f, {cut}) == whole);
  if (body.size() > 125) {
    FUZZ_CHECK(whole.first_violation == Violation::control_too_long);
    FUZZ_CHECK(!whole.close_seen);
  } else {
    FUZZ_CHECK(whole.first_violation == want);
    FUZZ_CHECK(whole.close_seen);
    FUZZ_CHECK(whole.close_code == want_code);
    FUZZ_CHECK(whole.close_reason == cp.reason);
  }
  return 0;
}
