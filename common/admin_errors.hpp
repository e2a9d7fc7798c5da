#pragma once
// Why the admin server refused or failed a request, apart from the server
// so the binaries' metrics can name the reasons without including Asio.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace wsgate {

// The `reason` label of each binary's admin error counter.
enum class AdminError : std::uint8_t {
  bad_request,         // 400: not HTTP/1.x as the parser reads it
  bad_target,          // 400: a byte >= 0x80 or a control byte in the target, raw or decoded
  header_too_large,    // 431
  body_too_large,      // 413
  method_not_allowed,  // 405
  unauthorized,        // 401
  handler_exception,   // 500: a handler threw
  write_timeout,       // the client did not read the answer in time
  accept_failed,       // the listener could not accept (out of descriptors): retried after a pause
  count_
};
std::string_view to_string(AdminError e);
inline constexpr std::size_t kAdminErrorKinds = static_cast<std::size_t>(AdminError::count_);

}  // namespace wsgate
