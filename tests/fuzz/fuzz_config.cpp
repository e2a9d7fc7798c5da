// libFuzzer target: the YAML config loader (common/yaml_config.hpp).
// Arbitrary bytes -> wsgate::YamlConfig::from_config. Must not crash, hang
// or throw anything but CLI::ConfigError (CLI11's refusal, which the
// binaries turn into "bad config: ..." and exit 2).
// Then the same bytes go through a CLI11 app shaped like the proxy's (a few
// typed options, --config wired by add_yaml_config_option): any
// CLI::ParseError is an allowed refusal, nothing else.

#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include "common/yaml_config.hpp"
#include "tests/fuzz/fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  wsgate::YamlConfig cfg;
  std::istringstream in(bytes);
  try {
    const auto items = cfg.from_config(in);
    for (const auto& item : items) FUZZ_CHECK(item.inputs.size() <= size + 1);
  } catch (const CLI::ConfigError&) {
    // the allowed refusal
  }

  // Through a CLI11 app, as the binaries load --config FILE.
  static const std::string& path = *[] {
    // Never destroyed, so the atexit handler can still read it.
    auto* p = new std::string((std::filesystem::temp_directory_path() /
                               ("wsgate-fuzz-config-" + std::to_string(::getpid()) + ".yaml")).string());
    return p;
  }();
  static const bool cleanup = [] { return std::atexit([] { std::remove(path.c_str()); }) == 0; }();
  (void)cleanup;
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << bytes;
  }
  CLI::App app{"fuzz"};
  std::string listen, upstream, level;
  unsigned threads = 1;
  std::uint64_t max_bytes = 0;
  std::vector<std::string> faults;
  bool flag = false;
  app.add_option("--listen", listen);
  app.add_option("--upstream", upstream);
  app.add_option("--log-level", level);
  app.add_option("--threads", threads);
  app.add_option("--max-message-bytes", max_bytes);
  app.add_option("--fault", faults);
  app.add_flag("--trust-client-correlation-id", flag);
  wsgate::add_yaml_config_option(app);
  const char* argv[] = {"fuzz", "--config", path.c_str()};
  try {
    app.parse(3, const_cast<char**>(argv));
  } catch (const CLI::ParseError&) {
    // allowed refusal: bad key, bad value, bad YAML
  }
  return 0;
}
