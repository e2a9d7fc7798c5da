#include "common/yaml_config.hpp"

#include <yaml-cpp/yaml.h>

#include <iostream>
#include <sstream>

namespace wsgate {
namespace {

std::string normalise_key(std::string key) {
  for (char& c : key)
    if (c == '_') c = '-';
  return key;
}

std::string scalar_text(const YAML::Node& node, const std::string& key) {
  if (!node.IsScalar())
    throw CLI::ConfigError("config key '" + key + "': expected a scalar or a list of scalars");
  return node.Scalar();
}

}  // namespace

std::string YamlConfig::to_config(const CLI::App* app, bool default_also, bool, std::string) const {
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const CLI::Option* opt : app->get_options()) {
    if (opt->get_lnames().empty() || !opt->get_configurable()) continue;
    const std::string& name = opt->get_lnames().front();
    if (name == "help" || name == "config") continue;
    std::vector<std::string> values = opt->results();
    if (values.empty() && default_also && !opt->get_default_str().empty())
      values.push_back(opt->get_default_str());
    if (values.empty()) continue;
    out << YAML::Key << name << YAML::Value;
    if (opt->get_expected_max() > 1 || values.size() > 1) {
      out << YAML::BeginSeq;
      for (auto& v : values) out << v;
      out << YAML::EndSeq;
    } else {
      out << values.front();
    }
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

bool YamlConfig::empty_list_means_none(const std::string& key) const {
  const CLI::Option* opt = app_ ? app_->get_option_no_throw("--" + key) : nullptr;
  // Unknown keys go on to CLI11, which refuses them by name.
  if (!opt) return false;
  if (opt->get_items_expected_max() <= 1)
    throw CLI::ConfigError("config key '" + key + "': expected a value, got an empty list");
  const std::string& def = opt->get_default_str();
  if (!def.empty() && def != "[]")
    throw CLI::ConfigError("config key '" + key + "': an empty list is not a value here (the " +
                           "default is " + def + "; omit the key to keep it)");
  return true;
}

std::vector<CLI::ConfigItem> YamlConfig::from_config(std::istream& input) const {
  YAML::Node root;
  try {
    root = YAML::Load(input);
  } catch (const YAML::Exception& e) {
    throw CLI::ConfigError("config is not valid YAML: " + std::string(e.what()));
  }
  std::vector<CLI::ConfigItem> result;
  if (root.IsNull()) return result;
  if (!root.IsMap()) throw CLI::ConfigError("config must be a YAML mapping of flag names to values");
  for (const auto& entry : root) {
    CLI::ConfigItem item;
    item.name = normalise_key(entry.first.Scalar());
    const YAML::Node& value = entry.second;
    if (value.IsSequence() && value.size() == 0) {
      if (empty_list_means_none(item.name)) continue;
    } else if (value.IsSequence()) {
      for (const auto& element : value) item.inputs.push_back(scalar_text(element, item.name));
    } else if (value.IsNull()) {
      throw CLI::ConfigError("config key '" + item.name + "': missing value");
    } else {
      item.inputs.push_back(scalar_text(value, item.name));
    }
    result.push_back(std::move(item));
  }
  return result;
}

void add_yaml_config_option(CLI::App& app) {
  app.config_formatter(std::make_shared<YamlConfig>(&app));
  app.set_config("--config", "", "YAML config file; its keys are the long flag names", false);
  app.allow_config_extras(CLI::config_extras_mode::error);
}

int report_parse_error(CLI::App& app, const CLI::ParseError& error) {
  static constexpr std::string_view kIniWording = "INI was not able to parse ";
  std::string what = error.what();
  if (what.rfind(kIniWording, 0) == 0) {
    std::cerr << "config: unknown key '" << what.substr(kIniWording.size()) << "'\n";
    return kExitUsage;
  }
  return app.exit(error) == static_cast<int>(CLI::ExitCodes::Success) ? kExitOk : kExitUsage;
}

}  // namespace wsgate
