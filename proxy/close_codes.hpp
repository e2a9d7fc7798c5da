#pragma once
// Close-code vocabulary shared by the relay, metrics and incidents.
#include <cstdint>
#include <string_view>

namespace wsgate::proxy {

// Who sent the close that ended a session (Envoy's _remote/_local split,
// with two remotes).
enum class Initiator : std::uint8_t { client, upstream, proxy };
std::string_view to_string(Initiator who);

inline constexpr std::uint16_t kCloseNormal = 1000;
inline constexpr std::uint16_t kCloseGoingAway = 1001;
inline constexpr std::uint16_t kCloseProtocolError = 1002;
inline constexpr std::uint16_t kCloseNoStatus = 1005;    // never on the wire
inline constexpr std::uint16_t kCloseAbnormal = 1006;    // never on the wire
inline constexpr std::uint16_t kCloseInternalError = 1011;
inline constexpr std::uint16_t kCloseTooBig = 1009;
inline constexpr std::uint16_t kCloseBadGateway = 1014;
inline constexpr std::uint16_t kCloseTlsFailure = 1015;  // never on the wire

// Codes 1000-1015 and 3000-4999 are their own metric label; anything else
// (only seen when the tap merely observes) is "other".
bool is_labelled_close_code(std::uint16_t code);
bool is_private_close_code(std::uint16_t code);  // 3000-4999

}  // namespace wsgate::proxy
