#include "common/yaml_config.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

using namespace wsgate;

namespace {

struct Flags {
  std::string listen = "127.0.0.1:1";
  std::string policy = "fallback";
  std::vector<std::string> faults;
  int threads = 1;
};

void add_flags(CLI::App& app, Flags& f) {
  add_yaml_config_option(app);
  app.add_option("--listen", f.listen);
  app.add_option("--context-policy", f.policy)->check(CLI::IsMember({"strict", "fallback"}));
  app.add_option("--fault", f.faults);
  app.add_option("--threads", f.threads)->check(CLI::Range(1, 64));
}

std::string write_temp(const std::string& text) {
  char name[] = "/tmp/wsgate-yaml-XXXXXX";
  int fd = mkstemp(name);
  EXPECT_GE(fd, 0);
  std::FILE* f = fdopen(fd, "w");
  std::fputs(text.c_str(), f);
  std::fclose(f);
  return name;
}

// Loads `yaml` as a --config file into `f`. Returns the text of the
// CLI::ConfigError it raised ("" when it loaded); other errors propagate.
std::string config_error(const std::string& yaml, Flags& f) {
  auto path = write_temp(yaml);
  CLI::App app;
  add_flags(app, f);
  std::vector<std::string> args = {path, "--config"};
  std::string error;
  try {
    app.parse(args);
  } catch (const CLI::ConfigError& e) {
    error = e.what();
    if (error.empty()) error = "(ConfigError without text)";
  }
  std::remove(path.c_str());
  return error;
}

}  // namespace

TEST(YamlConfig, FileSetsFlagsAndCommandLineWins) {
  auto path = write_temp(
      "listen: 0.0.0.0:9\ncontext_policy: strict\nfault: [factory.fail, "
      "context.drop=thread_id]\nthreads: 4\n");
  CLI::App app;
  Flags f;
  add_flags(app, f);
  std::vector<std::string> args = {"--listen", "1.2.3.4:5", "--config", path};
  std::reverse(args.begin(), args.end());
  app.parse(args);
  EXPECT_EQ(f.listen, "1.2.3.4:5");
  EXPECT_EQ(f.policy, "strict");
  EXPECT_EQ(f.faults, (std::vector<std::string>{"factory.fail", "context.drop=thread_id"}));
  EXPECT_EQ(f.threads, 4);
  std::remove(path.c_str());
}

TEST(YamlConfig, UnknownKeyIsRefusedByName) {
  Flags f;
  auto error = config_error("listen: 0.0.0.0:9\nlsiten: typo\n", f);
  ASSERT_FALSE(error.empty()) << "unknown key accepted";
  EXPECT_NE(error.find("lsiten"), std::string::npos) << error;
}

TEST(YamlConfig, BadValueIsRefusedNamingTheKey) {
  auto path = write_temp("context-policy: lenient\n");
  CLI::App app;
  Flags f;
  add_flags(app, f);
  std::vector<std::string> args = {path, "--config"};
  try {
    app.parse(args);
    FAIL() << "bad value accepted";
  } catch (const CLI::ParseError& e) {
    EXPECT_NE(std::string(e.what()).find("context-policy"), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
}

TEST(YamlConfig, NotYamlMappingIsRefused) {
  Flags f;
  EXPECT_FALSE(config_error("- just\n- a list\n", f).empty());
}

TEST(YamlConfig, EmptyListOfRepeatableKeyMeansNone) {
  Flags f;
  EXPECT_EQ(config_error("fault: []\nthreads: 3\n", f), "");
  EXPECT_TRUE(f.faults.empty());
  EXPECT_EQ(f.threads, 3);
}

TEST(YamlConfig, EmptyListOfSingleValueKeyIsRefusedByName) {
  Flags f;
  auto error = config_error("listen: []\n", f);
  ASSERT_FALSE(error.empty()) << "empty list accepted for a single value";
  EXPECT_NE(error.find("listen"), std::string::npos) << error;
}

TEST(YamlConfig, EmptyListOfUnknownKeyIsRefusedByName) {
  Flags f;
  auto error = config_error("faults: []\n", f);
  ASSERT_FALSE(error.empty()) << "unknown key accepted";
  EXPECT_NE(error.find("faults"), std::string::npos) << error;
}

TEST(YamlConfig, EmptyListCannotHideANonEmptyDefault) {
  auto path = write_temp("codes: []\n");
  CLI::App app;
  add_yaml_config_option(app);
  std::vector<int> codes{1011};
  app.add_option("--codes", codes)->capture_default_str();
  std::vector<std::string> args = {path, "--config"};
  try {
    app.parse(args);
    FAIL() << "empty list silently kept the default";
  } catch (const CLI::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("codes"), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
}

TEST(YamlConfig, ParseErrorsExitWithTwoAndHelpWithZero) {
  {
    CLI::App app;
    Flags f;
    add_flags(app, f);
    std::vector<std::string> args = {"0", "--threads"};
    try {
      app.parse(args);
      FAIL() << "threads 0 accepted";
    } catch (const CLI::ParseError& e) {
      EXPECT_EQ(report_parse_error(app, e), kExitUsage);
    }
  }
  {
    auto path = write_temp("lsiten: 1.2.3.4:5\n");
    CLI::App app;
    Flags f;
    add_flags(app, f);
    std::vector<std::string> args = {path, "--config"};
    try {
      app.parse(args);
      FAIL() << "unknown key accepted";
    } catch (const CLI::ParseError& e) {
      EXPECT_EQ(report_parse_error(app, e), kExitUsage);
    }
    std::remove(path.c_str());
  }
  {
    CLI::App app;
    Flags f;
    add_flags(app, f);
    std::vector<std::string> args = {"--help"};
    try {
      app.parse(args);
      FAIL() << "--help did not stop the parse";
    } catch (const CLI::ParseError& e) {
      EXPECT_EQ(report_parse_error(app, e), kExitOk);
    }
  }
}
