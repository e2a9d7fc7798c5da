#include "proxy/close_codes.hpp"

namespace wsgate::proxy {

std::string_view to_string(Initiator who) {
  switch (who) {
    case Initiator::client: return "client";
    case Initiator::upstream: return "upstream";
    case Initiator::proxy: return "proxy";
  }
  return "proxy";
}

bool is_labelled_close_code(std::uint16_t code) {
  return (code >= 1000 && code <= 1015) || is_private_close_code(code);
}

bool is_private_close_code(std::uint16_t code) { return code >= 3000 && code <= 4999; }

}  // namespace wsgate::proxy
