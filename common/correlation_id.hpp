#pragma once
// Correlation IDs (header X-Correlation-ID) and W3C trace context.
#include <optional>
#include <string>
#include <string_view>

namespace wsgate {

inline constexpr std::string_view kCorrelationHeader = "X-Correlation-ID";

// A client-supplied ID is kept only when it matches [A-Za-z0-9._-]{8,128}:
// anything else could smuggle log or header injection through us.
bool is_valid_correlation_id(std::string_view id);

// 128 random bits as 32 lowercase hex characters.
std::string generate_correlation_id();

// W3C traceparent: "00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>".
struct TraceParent {
  std::string trace_id;   // 32 lowercase hex, not all zero
  std::string parent_id;  // 16 lowercase hex, not all zero
  std::string flags;      // 2 hex
  std::string to_string() const;
};
std::optional<TraceParent> parse_traceparent(std::string_view header);
// A child of `parent` (same trace, new span id), or a new trace.
TraceParent child_traceparent(const std::optional<TraceParent>& parent);

// Random lowercase hex of 2*bytes characters (OpenSSL's CSPRNG).
std::string random_hex(std::size_t bytes);

}  // namespace wsgate
