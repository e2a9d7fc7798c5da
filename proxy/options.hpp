#pragma once
// Command line and YAML config into a ProxyConfig.
#include <optional>
#include <string>

#include "common/logging.hpp"
#include "proxy/config.hpp"

namespace wsgate::proxy {

struct ProxyOptions {
  ProxyConfig config;
  logging::Format log_format = logging::Format::text;
  spdlog::level::level_enum log_level = spdlog::level::info;
};

// Parses argv. On --help or an error, prints and returns the exit code in
// `exit_code` with nullopt.
std::optional<ProxyOptions> parse_options(int argc, char** argv, int& exit_code);

}  // namespace wsgate::proxy
