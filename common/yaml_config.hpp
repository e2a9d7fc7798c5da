#pragma once
// YAML configuration files for CLI11: every long flag is also a config key
// (`listen: 127.0.0.1:8443`, `context-policy: strict`, `fault: [a, b]`;
// underscores may stand for dashes). Command-line flags override the file.
// Unknown keys and bad values are refused at start, naming the key. An
// empty list (`fault: []`) of a repeatable key whose default is empty means
// none, as if the key were absent.
#include <CLI/CLI.hpp>

namespace wsgate {

class YamlConfig : public CLI::Config {
 public:
  // `app` (may be null) tells which keys are repeatable, for empty lists.
  explicit YamlConfig(const CLI::App* app = nullptr) : app_(app) {}
  std::string to_config(const CLI::App* app, bool default_also, bool write_description,
                        std::string prefix) const override;
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;

 private:
  // True to drop the key (a repeatable option, empty by default); throws
  // for an option that takes one value or has a non-empty default.
  bool empty_list_means_none(const std::string& key) const;
  const CLI::App* app_;
};

// Wires `--config FILE` (YAML) into `app`; unknown keys become errors.
void add_yaml_config_option(CLI::App& app);

// Exit codes of both binaries (listed in their --help and in the README).
inline constexpr int kExitOk = 0;       // clean stop, --help, --version
inline constexpr int kExitStartup = 1;  // start-up failed at run time: bind, TLS files
inline constexpr int kExitUsage = 2;    // bad command line or config file
inline constexpr const char* kExitCodesHelp =
    "Exit codes:\n"
    "  0  clean stop (SIGTERM/SIGINT after draining), --help, --version\n"
    "  1  start-up failed at run time: an address cannot be bound or resolved, a TLS or key\n"
    "     file cannot be loaded\n"
    "  2  bad command line or config file (the message names the flag or key)";

// Prints the error as app.exit(e) does (CLI11's INI wording turned into
// ours) and returns the exit code: kExitOk for --help and --version,
// kExitUsage for every error.
int report_parse_error(CLI::App& app, const CLI::ParseError& error);

}  // namespace wsgate
