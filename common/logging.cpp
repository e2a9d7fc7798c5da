#include "common/logging.hpp"

#include <nlohmann/json.hpp>
#include <fmt/chrono.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

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

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string text(msg.payload.data(), msg.payload.size());
    redact_secrets(text);
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

// Text lines keep spdlog's pattern but pass through the same scrubber.
class TextFormatter final : public spdlog::formatter {
 public:
  TextFormatter() : inner_("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %n: %v", spdlog::pattern_time_type::utc) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string text(msg.payload.data(), msg.payload.size());
    if (redact_secrets(text) == 0) return inner_.format(msg, dest);
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
  if (format == Format::json)
    logger->set_formatter(std::make_unique<JsonFormatter>());
  else
    logger->set_formatter(std::make_unique<TextFormatter>());
  logger->set_level(level);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace wsgate::logging
