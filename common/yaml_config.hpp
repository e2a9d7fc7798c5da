#pragma once
// YAML configuration files for CLI11: every long flag is also a config key
// (`listen: 127.0.0.1:8443`, `context-policy: strict`, `fault: [a, b]`;
// underscores may stand for dashes). Command-line flags override the file.
// Unknown keys and bad values are refused at start, naming the key.
#include <CLI/CLI.hpp>

namespace wsgate {

class YamlConfig : public CLI::Config {
 public:
  std::string to_config(const CLI::App* app, bool default_also, bool write_description,
                        std::string prefix) const override;
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;
};

// Wires `--config FILE` (YAML) into `app`; unknown keys become errors.
void add_yaml_config_option(CLI::App& app);

// app.exit(e) with CLI11's INI wording turned into ours.
int report_parse_error(CLI::App& app, const CLI::ParseError& error);

}  // namespace wsgate
