#pragma once
// Close frames the proxy writes itself (1001 on drain, 1014 when the
// upstream dies, 1002/1009 on violations). Frames towards the upstream are
// masked, as a client's must be.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace wsgate::proxy {

// 2 header + 4 mask + 2 code + up to 123 reason bytes.
inline constexpr std::size_t kMaxCloseFrame = 131;

// Writes a close frame into `out` (kMaxCloseFrame bytes) and returns its
// size. The reason is cut to 123 bytes.
std::size_t build_close_frame(std::uint8_t* out, std::uint16_t code, std::string_view reason,
                              bool masked);

}  // namespace wsgate::proxy
