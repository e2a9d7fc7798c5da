#include "proxy/close_frame.hpp"

#include <openssl/rand.h>

#include <cstring>

namespace wsgate::proxy {

std::size_t build_close_frame(std::uint8_t* out, std::uint16_t code, std::string_view reason,
                              bool masked) {
  if (reason.size() > 123) reason = reason.substr(0, 123);
  const std::size_t payload = 2 + reason.size();
  std::size_t n = 0;
  out[n++] = 0x88;  // FIN + close
  out[n++] = static_cast<std::uint8_t>((masked ? 0x80 : 0) | payload);
  std::uint8_t mask[4] = {0, 0, 0, 0};
  if (masked) {
    if (RAND_bytes(mask, 4) != 1) std::memset(mask, 0x5a, 4);
    std::memcpy(out + n, mask, 4);
    n += 4;
  }
  std::uint8_t* p = out + n;
  p[0] = static_cast<std::uint8_t>(code >> 8);
  p[1] = static_cast<std::uint8_t>(code & 0xff);
  std::memcpy(p + 2, reason.data(), reason.size());
  for (std::size_t i = 0; i < payload; ++i) p[i] ^= mask[i & 3];
  return n + payload;
}

}  // namespace wsgate::proxy
