#include "backend/options.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "common/yaml_config.hpp"

using namespace wsgate::backend;

namespace {

const char* kEnvSecret = "an-environment-secret-of-32-bytes-or-more";

std::string temp_file(const std::string& text) {
  char name[] = "/tmp/wsgate-backend-opt-XXXXXX";
  int fd = mkstemp(name);
  EXPECT_GE(fd, 0);
  std::FILE* f = fdopen(fd, "w");
  std::fputs(text.c_str(), f);
  std::fclose(f);
  return name;
}

std::string error_of(const ServeOptions& o, const char* env = kEnvSecret) {
  auto r = resolve(o, env);
  return r.index() == 1 ? std::get<1>(r) : "";
}

}  // namespace

TEST(Options, DefaultsResolveWithEnvSecret) {
  ServeOptions o;
  auto r = resolve(o, kEnvSecret);
  ASSERT_EQ(r.index(), 0u) << std::get<1>(r);
  const auto& c = std::get<0>(r);
  EXPECT_EQ(c.listen.to_string(), "127.0.0.1:8080");
  EXPECT_EQ(c.admin.to_string(), "127.0.0.1:9091");
  EXPECT_EQ(c.policy, ContextPolicy::fallback);
  EXPECT_EQ(c.max_connections_per_user, 16u);
  EXPECT_EQ(c.max_message_bytes, 1024u * 1024u);
  EXPECT_EQ(c.jwt.alg, JwtAlg::HS256);
  EXPECT_EQ(c.jwt.key, kEnvSecret);
}

TEST(Options, ErrorsNameTheKey) {
  ServeOptions o;
  EXPECT_EQ(error_of(o, nullptr).rfind("jwt-secret-file:", 0), 0u);
  EXPECT_EQ(error_of(o, "short").rfind("jwt-secret-file: HS256 secret is 5 bytes", 0), 0u);
  o.listen = "nope";
  EXPECT_EQ(error_of(o).rfind("listen:", 0), 0u);
  o = {};
  o.context_policy = "lenient";
  EXPECT_EQ(error_of(o).rfind("context-policy:", 0), 0u);
  o = {};
  o.faults = {"factory.fial"};
  EXPECT_EQ(error_of(o).rfind("fault: unknown fault", 0), 0u);
  o = {};
  auto pem = temp_file("not a pem");
  o.jwt_public_key = pem;
  EXPECT_EQ(error_of(o).rfind("jwt-public-key:", 0), 0u);
  o.jwt_secret_file = pem;
  EXPECT_EQ(error_of(o).rfind("jwt-public-key: give either", 0), 0u);
  std::remove(pem.c_str());
}

TEST(Options, AdvertiseTraceUrlIsCheckedAndFilled) {
  ServeOptions o;
  o.advertise_trace_url = "http://{host}:{port}/debug/traces/{correlation_id}";
  auto r = resolve(o, kEnvSecret);
  ASSERT_EQ(r.index(), 0u) << std::get<1>(r);
  const auto& tmpl = std::get<0>(r).advertise_trace_url;
  EXPECT_EQ(fill_admin_address(tmpl, "10.0.0.7", 9091),
            "http://10.0.0.7:9091/debug/traces/{correlation_id}");
  EXPECT_EQ(fill_admin_address(tmpl, "fd00::7", 9091),
            "http://[fd00::7]:9091/debug/traces/{correlation_id}");
  EXPECT_EQ(advertised_trace_url(fill_admin_address(tmpl, "h", 1), "cid-00000001"),
            "http://h:1/debug/traces/cid-00000001");
  EXPECT_TRUE(std::get<0>(resolve(ServeOptions{}, kEnvSecret)).advertise_trace_url.empty());

  for (const auto& [url, why] : std::vector<std::pair<std::string, std::string>>{
           {"https://h/debug/traces/{correlation_id}", "is not http://HOST[:PORT]/PATH"},
           {"http:///debug/traces/{correlation_id}", "is not http://HOST[:PORT]/PATH"},
           {"http://h/debug/traces/", "does not hold {correlation_id}"},
           {"http://h/{cid}/{correlation_id}", "unknown placeholder {cid}"},
           {"http://h/a b/{correlation_id}", "space, control or non-ASCII"},
           {"http://h/" + std::string(1100, 'a') + "{correlation_id}", "longer than 1024"}}) {
    o.advertise_trace_url = url;
    auto e = error_of(o);
    EXPECT_EQ(e.rfind("advertise-trace-url: ", 0), 0u) << e;
    EXPECT_NE(e.find(why), std::string::npos) << e;
  }
  o.advertise_trace_url = "http://{host}:{port}/debug/traces/{correlation_id}";
  o.admin = "0.0.0.0:9091";
  EXPECT_NE(error_of(o).find("wildcard admin address"), std::string::npos);
  o.advertise_trace_url = "http://10.0.0.7:{port}/debug/traces/{correlation_id}";
  EXPECT_EQ(error_of(o), "");
}

TEST(Options, SecretFileTrailingNewlineIsStripped) {
  auto path = temp_file("0123456789abcdef0123456789abcdef\n");
  ServeOptions o;
  o.jwt_secret_file = path;
  auto r = resolve(o, nullptr);
  ASSERT_EQ(r.index(), 0u);
  EXPECT_EQ(std::get<0>(r).jwt.key, "0123456789abcdef0123456789abcdef");
  std::remove(path.c_str());
}

TEST(Options, YamlConfigSetsEveryKindOfFlagAndRefusesUnknownKeys) {
  auto path = temp_file(
      "listen: 127.0.0.1:0\ncontext_policy: strict\nfault: [factory.fail, "
      "context.drop=thread_id]\nmax-connections-per-user: 3\nagent-step-delay-ms: 0\n");
  CLI::App app;
  ServeOptions o;
  add_serve_options(app, o);
  app.parse(std::vector<std::string>{path, "--config"});
  EXPECT_EQ(o.listen, "127.0.0.1:0");
  EXPECT_EQ(o.context_policy, "strict");
  EXPECT_EQ(o.faults, (std::vector<std::string>{"factory.fail", "context.drop=thread_id"}));
  EXPECT_EQ(o.max_connections_per_user, 3);
  EXPECT_EQ(o.agent_step_delay_ms, 0);
  std::remove(path.c_str());

  auto bad = temp_file("context-polcy: strict\n");
  CLI::App app2;
  ServeOptions o2;
  add_serve_options(app2, o2);
  EXPECT_THROW(app2.parse(std::vector<std::string>{bad, "--config"}), CLI::ParseError);
  std::remove(bad.c_str());

  auto bad_value = temp_file("context-policy: lenient\n");
  CLI::App app3;
  ServeOptions o3;
  add_serve_options(app3, o3);
  try {
    app3.parse(std::vector<std::string>{bad_value, "--config"});
    ADD_FAILURE() << "bad value accepted";
  } catch (const CLI::ParseError& e) {
    EXPECT_NE(std::string(e.what()).find("context-policy"), std::string::npos) << e.what();
  }
  std::remove(bad_value.c_str());
}
