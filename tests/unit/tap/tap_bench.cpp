// wsgate-tap-bench: ns per frame and GB/s of the frame tap for small and large
// frames, in both directions, with and without inspection. Not a test: run it
// from a Release build (cmake -DCMAKE_BUILD_TYPE=Release) and read the figures.
//
//   wsgate-tap-bench [seconds-per-case]   (default 0.5)

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "proxy/tap/frame_tap.hpp"
#include "tests/unit/tap/tap_test_util.hpp"

using namespace wsgate::tap;
using namespace wsgate::tap::testing;

namespace {

struct Case {
  const char* name;
  Direction dir;
  size_t frame_payload;
  uint8_t opcode;
  size_t capture;
  bool utf8;
};

volatile uint64_t g_sink;  // keeps the optimiser honest

void run(const Case& c, double seconds) {
  // About 4 MiB of back-to-back frames, fed in 16 KiB reads like the relay does.
  const size_t frames = std::max<size_t>(1, (4u << 20) / (c.frame_payload + 14));
  const Bytes payload(c.frame_payload, 'a');
  const Bytes one = c.dir == Direction::client_to_upstream ? cframe(c.opcode, payload)
                                                           : sframe(c.opcode, payload);
  Bytes stream;
  stream.reserve(one.size() * frames);
  for (size_t i = 0; i < frames; ++i) append(stream, one);

  TapConfig cfg;
  cfg.direction = c.dir;
  cfg.capture_text_bytes = c.capture;
  cfg.validate_text_utf8 = c.utf8;
  constexpr size_t kRead = 16 * 1024;

  uint64_t total_frames = 0, total_bytes = 0;
  const auto start = std::chrono::steady_clock::now();
  std::chrono::duration<double> elapsed{};
  do {
    FrameTap tap(cfg);
    for (size_t off = 0; off < stream.size(); off += kRead) {
      tap.feed(stream.data() + off, std::min(kRead, stream.size() - off));
    }
    g_sink = g_sink + tap.stats().messages;
    total_frames += frames;
    total_bytes += stream.size();
    elapsed = std::chrono::steady_clock::now() - start;
  } while (elapsed.count() < seconds);
  const double ns_per_frame = elapsed.count() * 1e9 / static_cast<double>(total_frames);
  const double gbps = static_cast<double>(total_bytes) / elapsed.count() / 1e9;
  std::printf("%-44s %10.1f ns/frame %10.2f GB/s\n", c.name, ns_per_frame, gbps);
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 0.5;
  const Case cases[] = {
      {"client binary 64 B", Direction::client_to_upstream, 64, 0x2, 0, false},
      {"server binary 64 B", Direction::upstream_to_client, 64, 0x2, 0, false},
      {"client binary 16 KiB", Direction::client_to_upstream, 16384, 0x2, 0, false},
      {"server binary 16 KiB", Direction::upstream_to_client, 16384, 0x2, 0, false},
      {"server text 64 B, capture 4096", Direction::upstream_to_client, 64, 0x1, 4096, false},
      {"server text 16 KiB, capture 4096", Direction::upstream_to_client, 16384, 0x1, 4096, false},
      {"client text 64 B, utf8 validation", Direction::client_to_upstream, 64, 0x1, 0, true},
      {"client text 16 KiB, utf8 validation", Direction::client_to_upstream, 16384, 0x1, 0, true},
      {"client ping 16 B", Direction::client_to_upstream, 16, 0x9, 0, false},
  };
  std::printf("frame tap, 16 KiB reads, %.1f s per case\n", seconds);
  for (const Case& c : cases) run(c, seconds);
  return 0;
}
