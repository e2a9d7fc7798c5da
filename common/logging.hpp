#pragma once
// spdlog set-up shared by both binaries: text or JSON lines on stderr, every
// line scrubbed of secrets (common/redact.hpp) and escaped to one line, the
// correlation ID as its own JSON field. Both happen in the formatters, so no
// call site can forget them.
//
// Convention: a message about one connection starts with "[cid=<id>] "; the
// JSON formatter lifts it into "correlation_id". Use WSG_LOG(level, cid, ...)
// so the prefix is always spelled the same way.
#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace wsgate::logging {

enum class Format { text, json };

std::optional<Format> parse_format(std::string_view name);
std::optional<spdlog::level::level_enum> parse_level(std::string_view name);

// One log message as one line of printable text: CR, LF as \r, \n; other C0
// controls, DEL and bytes that are not UTF-8 as \xNN; C1 controls and the
// Unicode line/paragraph separators as \uNNNN; the backslash as \\ (so an
// escape in the output always means an escaped byte). Text logs stay one
// record a line whatever a peer puts in a close reason or a target.
std::string escape_line(std::string_view text);

// The formatter init() installs for `format` (exposed for tests).
std::unique_ptr<spdlog::formatter> make_formatter(Format format);

// Installs the default logger for `program` (e.g. "wsgate").
void init(std::string_view program, Format format, spdlog::level::level_enum level);

}  // namespace wsgate::logging

#define WSG_LOG(level, cid, fmtstr, ...)                                      \
  SPDLOG_LOGGER_CALL(spdlog::default_logger_raw(), level, "[cid={}] " fmtstr, \
                     cid __VA_OPT__(, ) __VA_ARGS__)
