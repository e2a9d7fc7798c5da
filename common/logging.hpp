#pragma once
// spdlog set-up shared by both binaries: text or JSON lines on stderr, every
// line scrubbed of secrets, the correlation ID as its own JSON field.
//
// Convention: a message about one connection starts with "[cid=<id>] "; the
// JSON formatter lifts it into "correlation_id". Use WSG_LOG(level, cid, ...)
// so the prefix is always spelled the same way.
#include <spdlog/spdlog.h>

#include <optional>
#include <string_view>

namespace wsgate::logging {

enum class Format { text, json };

std::optional<Format> parse_format(std::string_view name);
std::optional<spdlog::level::level_enum> parse_level(std::string_view name);

// Installs the default logger for `program` (e.g. "wsgate").
void init(std::string_view program, Format format, spdlog::level::level_enum level);

}  // namespace wsgate::logging

#define WSG_LOG(level, cid, fmtstr, ...) \
  SPDLOG_LOGGER_CALL(spdlog::default_logger_raw(), level, "[cid={}] " fmtstr, cid __VA_OPT__(, ) __VA_ARGS__)
