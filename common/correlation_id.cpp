#include "common/correlation_id.hpp"

#include <openssl/rand.h>

#include <array>
#include <random>

namespace wsgate {

bool is_valid_correlation_id(std::string_view id) {
  if (id.size() < 8 || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string random_hex(std::size_t bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::array<unsigned char, 64> raw{};
  if (bytes > raw.size()) bytes = raw.size();
  if (RAND_bytes(raw.data(), static_cast<int>(bytes)) != 1) {
    // The CSPRNG failing is near impossible; IDs only need to be unique.
    thread_local std::mt19937_64 fallback{std::random_device{}()};
    for (std::size_t i = 0; i < bytes; ++i) raw[i] = static_cast<unsigned char>(fallback());
  }
  std::string out(bytes * 2, '0');
  for (std::size_t i = 0; i < bytes; ++i) {
    out[2 * i] = kHex[raw[i] >> 4];
    out[2 * i + 1] = kHex[raw[i] & 0xf];
  }
  return out;
}

std::string generate_correlation_id() { return random_hex(16); }

namespace {
bool is_lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}
bool all_zero(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }
}  // namespace

std::string TraceParent::to_string() const { return "00-" + trace_id + "-" + parent_id + "-" + flags; }

std::optional<TraceParent> parse_traceparent(std::string_view h) {
  // version 00 is exactly 55 characters; a future version may append fields.
  if (h.size() < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-') return std::nullopt;
  auto version = h.substr(0, 2);
  if (!is_lower_hex(version) || version == "ff") return std::nullopt;
  if (version == "00" && h.size() != 55) return std::nullopt;
  if (h.size() > 55 && h[55] != '-') return std::nullopt;
  TraceParent tp{std::string(h.substr(3, 32)), std::string(h.substr(36, 16)),
                 std::string(h.substr(53, 2))};
  if (!is_lower_hex(tp.trace_id) || !is_lower_hex(tp.parent_id) || !is_lower_hex(tp.flags) ||
      all_zero(tp.trace_id) || all_zero(tp.parent_id))
    return std::nullopt;
  return tp;
}

TraceParent child_traceparent(const std::optional<TraceParent>& parent) {
  if (parent) return TraceParent{parent->trace_id, random_hex(8), parent->flags};
  return TraceParent{random_hex(16), random_hex(8), "01"};
}

}  // namespace wsgate
