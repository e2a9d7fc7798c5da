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

}  // namespace

TEST(YamlConfig, FileSetsFlagsAndCommandLineWins) {
  auto path = write_temp("listen: 0.0.0.0:9\ncontext_policy: strict\nfault: [factory.fail, "
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
  auto path = write_temp("listen: 0.0.0.0:9\nlsiten: typo\n");
  CLI::App app;
  Flags f;
  add_flags(app, f);
  std::vector<std::string> args = {path, "--config"};
  try {
    app.parse(args);
    FAIL() << "unknown key accepted";
  } catch (const CLI::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("lsiten"), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
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
  auto path = write_temp("- just\n- a list\n");
  CLI::App app;
  Flags f;
  add_flags(app, f);
  std::vector<std::string> args = {path, "--config"};
  EXPECT_THROW(app.parse(args), CLI::ConfigError);
  std::remove(path.c_str());
}

TEST(YamlConfig, EmptyListOfRepeatableKeyMeansNone) {
  auto path = write_temp("fault: []\nthreads: 3\n");
  CLI::App app;
  Flags f;
  add_flags(app, f);
  std::vector<std::string> args = {path, "--config"};
  app.parse(args);
  EXPECT_TRUE(f.faults.empty());
  EXPECT_EQ(f.threads, 3);
  std::remove(path.c_str());
}

TEST(YamlConfig, EmptyListOfSingleValueKeyIsRefusedByName) {
  auto path = write_temp("listen: []\n");
  CLI::App app;
  Flags f;
  add_flags(app, f);
  std::vector<std::string> args = {path, "--config"};
  try {
    app.parse(args);
    FAIL() << "empty list accepted for a single value";
  } catch (const CLI::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("listen"), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
}

TEST(YamlConfig, EmptyListOfUnknownKeyIsRefusedByName) {
  auto path = write_temp("faults: []\n");
  CLI::App app;
  Flags f;
  add_flags(app, f);
  std::vector<std::string> args = {path, "--config"};
  try {
    app.parse(args);
    FAIL() << "unknown key accepted";
  } catch (const CLI::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("faults"), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
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
