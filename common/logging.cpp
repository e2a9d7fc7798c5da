#include "common/logging.hpp"

#include <fmt/chrono.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <cstdint>
#include <nlohmann/json.hpp>

#include "common/redact.hpp"

namespace wsgate::logging {
namespace {

constexpr std::string_view kCidPrefix = "[cid=";

// Splits "[cid=abc] rest" into ("abc", "rest").
std::pair<std::string_view, std::string_view> split_cid(std::string_view msg) {
  if (msg.substr(0, kCidPrefix.size()) != kCidPrefix) return {{}, msg};
  auto close = msg.find("] ", kCidPrefix.size());
  if (close == std::string_view::npos) return {{}, msg};
  return {msg.substr(kCidPrefix.size(), close - kCidPrefix.size()), msg.substr(close + 2)};
}

// Length of the valid UTF-8 sequence starting at s[i] (2 to 4), else 0.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b = at(i);
  std::size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the first continuation byte
  if (b >= 0xC2 && b <= 0xDF) {
    len = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    len = 3;
    if (b == 0xE0) lo = 0xA0;  // overlong
    if (b == 0xED) hi = 0x9F;  // surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4;
    if (b == 0xF0) lo = 0x90;  // overlong
    if (b == 0xF4) hi = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (i + len > s.size() || at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < len; ++k)
    if (at(i + k) < 0x80 || at(i + k) > 0xBF) return 0;
  return len;
}

std::uint32_t code_point(std::string_view s, std::size_t i, std::size_t len) {
  auto at = [&](std::size_t k) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(s[k]));
  };
  std::uint32_t cp = at(i) & (0xFFu >> (len + 1));
  for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (at(i + k) & 0x3F);
  return cp;
}

bool needs_escape(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c >= 0x7F || c == '\\') return true;
  return false;
}

// Scrubbed and escaped message text; `text` is left alone when neither applies.
bool sanitize(std::string& text) {
  bool changed = redact_secrets(text) != 0;
  if (!needs_escape(text)) return changed;
  text = escape_line(text);
  return true;
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string text(msg.payload.data(), msg.payload.size());
    sanitize(text);
    auto [cid, body] = split_cid(text);
    nlohmann::json line;
    auto secs = std::chrono::duration_cast<std::chrono::microseconds>(msg.time.time_since_epoch());
    line["ts"] = fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:06}Z",
                             fmt::gmtime(std::chrono::system_clock::to_time_t(msg.time)),
                             secs.count() % 1000000);
    line["level"] = std::string(spdlog::level::to_string_view(msg.level).data(),
                                spdlog::level::to_string_view(msg.level).size());
    line["logger"] = std::string(msg.logger_name.data(), msg.logger_name.size());
    if (!cid.empty()) line["correlation_id"] = std::string(cid);
    line["msg"] = std::string(body);
    auto out = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(out.data(), out.data() + out.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

// Text lines keep spdlog's pattern over the same scrubbed, escaped text.
class TextFormatter final : public spdlog::formatter {
 public:
  TextFormatter() : inner_("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %n: %v", spdlog::pattern_time_type::utc) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string text(msg.payload.data(), msg.payload.size());
    if (!sanitize(text)) return inner_.format(msg, dest);
    spdlog::details::log_msg copy = msg;
    copy.payload = text;
    inner_.format(copy, dest);
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<TextFormatter>();
  }

 private:
  spdlog::pattern_formatter inner_;
};

}  // namespace

std::string escape_line(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 16);
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F) {
      if (c == '\\') out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c == '\n') {
      out += "\\n";
      ++i;
    } else if (c == '\r') {
      out += "\\r";
      ++i;
    } else if (std::size_t len = c >= 0x80 ? utf8_length(s, i) : 0; len != 0) {
      std::uint32_t cp = code_point(s, i, len);
      if ((cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029)
        out += fmt::format("\\u{:04X}", cp);
      else
        out.append(s, i, len);
      i += len;
    } else {
      out += fmt::format("\\x{:02X}", c);  // C0, DEL, a byte that is not UTF-8
      ++i;
    }
  }
  return out;
}

std::unique_ptr<spdlog::formatter> make_formatter(Format format) {
  if (format == Format::json) return std::make_unique<JsonFormatter>();
  return std::make_unique<TextFormatter>();
}

std::optional<Format> parse_format(std::string_view name) {
  if (name == "text") return Format::text;
  if (name == "json") return Format::json;
  return std::nullopt;
}

std::optional<spdlog::level::level_enum> parse_level(std::string_view name) {
  auto level = spdlog::level::from_str(std::string(name));
  if (level == spdlog::level::off && name != "off") return std::nullopt;
  return level;
}

void init(std::string_view program, Format format, spdlog::level::level_enum level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(std::string(program), sink);
  logger->set_formatter(make_formatter(format));
  logger->set_level(level);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace wsgate::logging
