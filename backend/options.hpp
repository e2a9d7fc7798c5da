#pragma once
// Command line and YAML config of wsgate-backend: the flags (each also a
// config key), and their resolution into a checked configuration. Every
// error names the key it is about.
#include <spdlog/common.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "backend/faults.hpp"
#include "backend/jwt_verifier.hpp"
#include "backend/trace_store.hpp"
#include "backend/user_context.hpp"
#include "common/endpoint.hpp"
#include "common/logging.hpp"

namespace wsgate::backend {

// The flags as given (strings and numbers, defaults filled in).
struct ServeOptions {
  std::string listen = "127.0.0.1:8080";
  std::string admin = "127.0.0.1:9091";
  std::string jwt_secret_file;
  std::string jwt_public_key;
  std::string jwt_issuer;
  std::string jwt_audience;
  int jwt_leeway = 30;
  std::string context_policy = "fallback";
  std::vector<std::string> faults;
  int max_connections_per_user = 16;
  std::size_t max_message_bytes = 1024 * 1024;
  std::size_t send_queue_limit = 256;
  int agent_step_delay_ms = 20;
  int threads = 2;
  std::string log_format = "text";
  std::string log_level = "info";
  double drain_timeout = 10.0;
  double handshake_timeout = 10.0;
  double idle_timeout = 300.0;
  std::size_t trace_capacity = 10000;
  std::size_t trace_max_bytes = 16 * 1024 * 1024;
  std::size_t trace_max_stages = 100;
  std::string admin_token_file;
  std::string admin_token_scope = "users";
  std::string advertise_trace_url;
  std::string port_file;
};

struct TokenOptions {
  std::string sub;
  std::string thread_id;
  std::int64_t ttl = 3600;
  std::string issuer;
  std::string audience;
  std::string jwt_secret_file;
};

// Checked, typed settings the server runs with.
struct BackendConfig {
  HostPort listen;
  HostPort admin;
  JwtConfig jwt;
  ContextPolicy policy = ContextPolicy::fallback;
  std::vector<FaultSpec> faults;
  std::size_t max_connections_per_user = 16;
  std::size_t max_message_bytes = 1024 * 1024;
  std::size_t send_queue_limit = 256;
  std::chrono::milliseconds agent_step_delay{20};
  int threads = 2;
  logging::Format log_format = logging::Format::text;
  spdlog::level::level_enum log_level = spdlog::level::info;
  std::chrono::milliseconds drain_timeout{10000};
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds idle_timeout{300000};
  TraceLimits trace_limits;
  // Required as Authorization: Bearer by /debug/traces (and by every admin
  // endpoint with scope "all"); none when empty.
  std::string admin_token;
  std::string admin_token_scope = "users";  // users | all
  // Sent as Wsgate-Trace-Location in every 101 (none when empty): where the
  // proxy fetches this session's trace when a load balancer hides which
  // replica took it. Holds {correlation_id}, maybe {host} and {port}.
  std::string advertise_trace_url;
  std::string port_file;
};

// The --advertise-trace-url template with {host} and {port} (the admin
// listener as bound) filled in; {correlation_id} stays for each session.
std::string fill_admin_address(const std::string& url_template, const std::string& admin_host,
                               unsigned short admin_port);
// The template with {correlation_id} filled in (IDs are [A-Za-z0-9._-]).
std::string advertised_trace_url(const std::string& url_template, std::string_view correlation_id);

void add_serve_options(CLI::App& app, ServeOptions& options);
CLI::App* add_token_command(CLI::App& app, TokenOptions& options);

// `env_secret`: the value of WSGATE_JWT_SECRET, if set. Returns the config
// or an error message that starts with the key's name.
std::variant<BackendConfig, std::string> resolve(const ServeOptions& options,
                                                 const char* env_secret);

// The HS256 secret for the token command: file, else env. Error names the key.
std::variant<std::string, std::string> load_token_secret(const TokenOptions& options,
                                                         const char* env_secret);

}  // namespace wsgate::backend
