#include "proxy/close_frame.hpp"

#include <gtest/gtest.h>

#include <string>

#include "proxy/tap/frame_tap.hpp"

using namespace wsgate;

namespace {
struct CloseSink : tap::TapSink {
  uint16_t code = 0;
  std::string reason;
  void on_close(uint16_t c, std::string_view r) override {
    code = c;
    reason = std::string(r);
  }
};
}  // namespace

// What the proxy injects must pass its own tap in the direction it goes.
TEST(CloseFrame, MaskedAndUnmaskedFramesParse) {
  for (bool masked : {true, false}) {
    uint8_t buf[proxy::kMaxCloseFrame];
    auto n = proxy::build_close_frame(buf, 1014, "upstream went away", masked);
    EXPECT_EQ(n, 2 + (masked ? 4u : 0u) + 2 + 18);
    CloseSink sink;
    tap::TapConfig cfg;
    cfg.direction = masked ? tap::Direction::client_to_upstream : tap::Direction::upstream_to_client;
    tap::FrameTap t(cfg, &sink);
    EXPECT_EQ(t.feed(buf, n), tap::Violation::none);
    EXPECT_TRUE(t.at_frame_boundary());
    EXPECT_EQ(sink.code, 1014);
    EXPECT_EQ(sink.reason, "upstream went away");
  }
}

TEST(CloseFrame, LongReasonIsCutTo123Bytes) {
  uint8_t buf[proxy::kMaxCloseFrame];
  auto n = proxy::build_close_frame(buf, 1001, std::string(300, 'r'), true);
  EXPECT_EQ(n, proxy::kMaxCloseFrame);
  EXPECT_EQ(buf[1] & 0x7f, 125);
}
