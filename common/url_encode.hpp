#pragma once
// Percent-encoding of one URL component: every byte but RFC 3986's
// unreserved ones (ALPHA, DIGIT, "-", ".", "_", "~") becomes %XX.
#include <string>
#include <string_view>

namespace wsgate {

std::string url_encode(std::string_view text);

}  // namespace wsgate
