#include "backend/options.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <fstream>
#include <sstream>

#include "common/version.hpp"
#include "common/admin_server.hpp"
#include "common/yaml_config.hpp"

namespace wsgate::backend {
namespace {

constexpr std::size_t kMinHmacSecret = 32;  // RFC 7518 section 3.2: >= hash size

CLI::Validator host_port_validator() {
  return CLI::Validator([](std::string& value) -> std::string { return host_port_error(value); },
                        "HOST:PORT");
}

CLI::Validator fault_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        std::string error;
        if (parse_fault(value, error)) return {};
        return error;
      },
      "SPEC");
}

// The proxy fetches only plain http:// URLs up to 2048 bytes; {host} on a
// wildcard admin address would announce an address nobody can reach.
std::string advertise_trace_url_error(const std::string& url, const std::string& admin_host) {
  constexpr std::size_t kMaxTemplate = 1024;
  if (url.size() > kMaxTemplate)
    return "longer than " + std::to_string(kMaxTemplate) + " characters";
  if (url.rfind("http://", 0) != 0 || url.size() == 7 || url[7] == '/')
    return "'" + url + "' is not http://HOST[:PORT]/PATH";
  for (unsigned char ch : url)
    if (ch <= 0x20 || ch >= 0x7f) return "'" + url + "' holds a space, control or non-ASCII byte";
  if (url.find("{correlation_id}") == std::string::npos)
    return "'" + url + "' does not hold {correlation_id}";
  for (auto open = url.find('{'); open != std::string::npos; open = url.find('{', open + 1)) {
    auto name = url.substr(open, url.find('}', open) + 1 - open);
    if (name != "{correlation_id}" && name != "{host}" && name != "{port}")
      return "unknown placeholder " + name + " (known: {correlation_id}, {host}, {port})";
  }
  if (url.find("{host}") != std::string::npos &&
      (admin_host == "0.0.0.0" || admin_host == "::" || admin_host.empty()))
    return "{host} would be the wildcard admin address " + admin_host +
           ": name the host (for example http://$(POD_IP):9091/...)";
  return {};
}

CLI::Validator level_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        if (logging::parse_level(value)) return {};
        return "'" + value + "' is not one of trace, debug, info, warn, error, critical, off";
      },
      "LEVEL");
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string trim_newlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

std::variant<std::string, std::string> load_secret(const std::string& file, const char* env,
                                                   const char* key) {
  std::string secret;
  if (!file.empty()) {
    auto text = read_file(file);
    if (!text)
      return std::variant<std::string, std::string>(
          std::in_place_index<1>, std::string(key) + ": cannot read '" + file + "'");
    secret = trim_newlines(*text);
  } else if (env && *env) {
    secret = env;
  } else {
    return std::variant<std::string, std::string>(
        std::in_place_index<1>, std::string(key) +
                                    ": no JWT key (give --jwt-secret-file, WSGATE_JWT_SECRET or "
                                    "--jwt-public-key)");
  }
  if (secret.size() < kMinHmacSecret)
    return std::variant<std::string, std::string>(
        std::in_place_index<1>, std::string(key) + ": HS256 secret is " +
                                    std::to_string(secret.size()) + " bytes; at least " +
                                    std::to_string(kMinHmacSecret) + " are required");
  return std::variant<std::string, std::string>(std::in_place_index<0>, std::move(secret));
}

bool is_rsa_public_key_pem(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (!bio) return false;
  EVP_PKEY* key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!key) return false;
  bool rsa = EVP_PKEY_base_id(key) == EVP_PKEY_RSA;
  EVP_PKEY_free(key);
  return rsa;
}

std::chrono::milliseconds seconds_to_ms(double s) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000.0));
}

}  // namespace

void add_serve_options(CLI::App& app, ServeOptions& o) {
  add_yaml_config_option(app);
  app.set_version_flag("--version", "wsgate-backend " + std::string(version()),
                       "Print the version and exit");
  app.footer(kExitCodesHelp);
  app.add_option("--listen", o.listen, "WebSocket listener HOST:PORT (path /ws; port 0: any free)")
      ->check(host_port_validator())
      ->capture_default_str();
  app.add_option("--admin", o.admin,
                 "Admin HTTP HOST:PORT: /metrics, /healthz, /debug/traces[/{correlation_id}]")
      ->check(host_port_validator())
      ->capture_default_str();
  app.add_option("--jwt-secret-file", o.jwt_secret_file,
                 "File holding the HS256 secret (>= 32 bytes; env WSGATE_JWT_SECRET otherwise)")
      ->check(CLI::ExistingFile);
  app.add_option("--jwt-public-key", o.jwt_public_key,
                 "RSA public key PEM: accept RS256 tokens only (instead of HS256)")
      ->check(CLI::ExistingFile);
  app.add_option("--jwt-issuer", o.jwt_issuer, "Required iss claim (unchecked when empty)");
  app.add_option("--jwt-audience", o.jwt_audience,
                 "Required aud claim, string or array member (unchecked when empty)");
  app.add_option("--jwt-leeway", o.jwt_leeway, "Clock leeway for exp/nbf, seconds (0..60)")
      ->check(CLI::Range(0, 60))
      ->capture_default_str();
  app.add_option("--context-policy", o.context_policy,
                 "strict: incomplete context -> FACTORY_INIT_FAILED + close 1011 (the staging "
                 "failure); fallback: fill missing attributes, warn, count")
      ->check(CLI::IsMember({"strict", "fallback"}))
      ->capture_default_str();
  app.add_option("--fault", o.faults,
                 "Inject a fault (repeatable): context.drop=ATTR, handler.throw=TYPE, "
                 "factory.fail; optional @P probability 0..1")
      ->check(fault_validator());
  app.add_option("--max-connections-per-user", o.max_connections_per_user,
                 "Connections one user may hold; more are closed with 1013")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--max-message-bytes", o.max_message_bytes,
                 "Largest client message; bigger ones close the session with 1009")
      ->check(CLI::Range(std::size_t{64}, std::size_t{64} * 1024 * 1024))
      ->capture_default_str();
  app.add_option("--send-queue-limit", o.send_queue_limit,
                 "Outgoing messages queued per session before it is closed with 1008")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}))
      ->capture_default_str();
  app.add_option("--agent-step-delay-ms", o.agent_step_delay_ms,
                 "Delay between the built-in agent's events, milliseconds")
      ->check(CLI::Range(0, 60000))
      ->capture_default_str();
  app.add_option("--threads", o.threads, "I/O threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--log-format", o.log_format, "Log lines: text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error, critical, off")
      ->check(level_validator())
      ->capture_default_str();
  app.add_option("--drain-timeout", o.drain_timeout,
                 "On SIGTERM/SIGINT: seconds to wait for sessions closed with 1001 before exit")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--handshake-timeout", o.handshake_timeout,
                 "Seconds allowed for the HTTP upgrade and for the close handshake")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--idle-timeout", o.idle_timeout,
                 "Seconds of silence before a session is dropped (pings are sent at half)")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
  app.add_option("--trace-capacity", o.trace_capacity, "Stage traces kept (oldest evicted first)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10000000}))
      ->capture_default_str();
  app.add_option("--trace-max-bytes", o.trace_max_bytes, "Bytes the stored traces may use")
      ->check(CLI::Range(std::size_t{4096}, std::size_t{1} << 34))
      ->capture_default_str();
  app.add_option("--trace-max-stages", o.trace_max_stages,
                 "Stages kept per trace (old successful message stages make room)")
      ->check(CLI::Range(std::size_t{8}, std::size_t{100000}))
      ->capture_default_str();
  app.add_option("--admin-token-file", o.admin_token_file,
                 "Bearer token (the file's content) that /debug/traces requires; none when not "
                 "given");
  app.add_option("--admin-token-scope", o.admin_token_scope,
                 "What the admin token guards: users (/debug/traces) or all (also /metrics "
                 "/healthz)")
      ->check(CLI::IsMember({"users", "all"}))
      ->capture_default_str();
  app.add_option("--advertise-trace-url", o.advertise_trace_url,
                 "Announce each session's trace URL in the 101 (header Wsgate-Trace-Location), "
                 "for a proxy that reaches this replica through a load balancer: "
                 "http://HOST:PORT/debug/traces/{correlation_id}, where {host} and {port} stand "
                 "for the admin listener as bound; none when not given");
  app.add_option("--port-file", o.port_file,
                 "After binding, write {\"listen\":PORT,\"admin\":PORT} to this file");
}

CLI::App* add_token_command(CLI::App& app, TokenOptions& o) {
  auto* cmd = app.add_subcommand(
      "token",
      "Print an HS256 token for --sub (secret from --jwt-secret-file or WSGATE_JWT_SECRET)");
  cmd->add_option("--sub", o.sub, "Subject (user id)")->required();
  cmd->add_option("--thread-id", o.thread_id, "thread_id claim (omitted when empty)");
  cmd->add_option("--ttl", o.ttl, "Seconds until exp (negative: already expired)")
      ->capture_default_str();
  cmd->add_option("--iss", o.issuer, "iss claim");
  cmd->add_option("--aud", o.audience, "aud claim");
  cmd->add_option("--jwt-secret-file", o.jwt_secret_file, "File holding the HS256 secret")
      ->check(CLI::ExistingFile);
  return cmd;
}

std::variant<BackendConfig, std::string> resolve(const ServeOptions& o, const char* env_secret) {
  using Result = std::variant<BackendConfig, std::string>;
  auto error = [](std::string text) { return Result(std::in_place_index<1>, std::move(text)); };
  BackendConfig c;
  auto listen = parse_host_port(o.listen);
  if (!listen) return error("listen: '" + o.listen + "' is not HOST:PORT");
  auto admin = parse_host_port(o.admin);
  if (!admin) return error("admin: '" + o.admin + "' is not HOST:PORT");
  c.listen = *listen;
  c.admin = *admin;

  if (!o.jwt_public_key.empty()) {
    if (!o.jwt_secret_file.empty())
      return error(
          "jwt-public-key: give either --jwt-public-key (RS256) or --jwt-secret-file "
          "(HS256), not both");
    auto pem = read_file(o.jwt_public_key);
    if (!pem) return error("jwt-public-key: cannot read '" + o.jwt_public_key + "'");
    if (!is_rsa_public_key_pem(*pem))
      return error("jwt-public-key: '" + o.jwt_public_key + "' is not an RSA public key PEM");
    c.jwt.alg = JwtAlg::RS256;
    c.jwt.key = *pem;
  } else {
    auto secret = load_secret(o.jwt_secret_file, env_secret, "jwt-secret-file");
    if (secret.index() == 1) return error(std::get<1>(secret));
    c.jwt.alg = JwtAlg::HS256;
    c.jwt.key = std::get<0>(std::move(secret));
  }
  c.jwt.issuer = o.jwt_issuer;
  c.jwt.audience = o.jwt_audience;
  if (o.jwt_leeway < 0 || o.jwt_leeway > 60) return error("jwt-leeway: must be 0..60 seconds");
  c.jwt.leeway = std::chrono::seconds(o.jwt_leeway);

  auto policy = parse_policy(o.context_policy);
  if (!policy) return error("context-policy: '" + o.context_policy + "' is not strict or fallback");
  c.policy = *policy;
  for (const auto& spec : o.faults) {
    std::string why;
    auto f = parse_fault(spec, why);
    if (!f) return error("fault: " + why);
    c.faults.push_back(*f);
  }
  c.max_connections_per_user = static_cast<std::size_t>(o.max_connections_per_user);
  c.max_message_bytes = o.max_message_bytes;
  c.send_queue_limit = o.send_queue_limit;
  c.agent_step_delay = std::chrono::milliseconds(o.agent_step_delay_ms);
  c.threads = o.threads;
  auto format = logging::parse_format(o.log_format);
  if (!format) return error("log-format: '" + o.log_format + "' is not text or json");
  c.log_format = *format;
  auto level = logging::parse_level(o.log_level);
  if (!level) return error("log-level: '" + o.log_level + "' is not a log level");
  c.log_level = *level;
  c.drain_timeout = seconds_to_ms(o.drain_timeout);
  c.handshake_timeout = seconds_to_ms(o.handshake_timeout);
  c.idle_timeout = seconds_to_ms(o.idle_timeout);
  c.trace_limits.max_traces = o.trace_capacity;
  c.trace_limits.max_bytes = o.trace_max_bytes;
  c.trace_limits.max_stages = o.trace_max_stages;
  if (o.admin_token_scope != "users" && o.admin_token_scope != "all")
    return error("admin-token-scope: '" + o.admin_token_scope + "' is not users or all");
  c.admin_token_scope = o.admin_token_scope;
  if (!o.admin_token_file.empty()) {
    std::string why;
    auto token = read_token_file(o.admin_token_file, why);
    if (!token) return error("admin-token-file: " + why);
    c.admin_token = std::move(*token);
  } else if (o.admin_token_scope == "all") {
    return error("admin-token-scope: all needs --admin-token-file");
  }
  if (!o.advertise_trace_url.empty()) {
    if (auto why = advertise_trace_url_error(o.advertise_trace_url, c.admin.host); !why.empty())
      return error("advertise-trace-url: " + why);
    c.advertise_trace_url = o.advertise_trace_url;
  }
  c.port_file = o.port_file;
  return c;
}

namespace {

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

}  // namespace

std::string fill_admin_address(const std::string& url_template, const std::string& admin_host,
                               unsigned short admin_port) {
  const bool v6 = admin_host.find(':') != std::string::npos;
  return replace_all(replace_all(url_template, "{host}", v6 ? "[" + admin_host + "]" : admin_host),
                     "{port}", std::to_string(admin_port));
}

std::string advertised_trace_url(const std::string& url_template, std::string_view correlation_id) {
  return replace_all(url_template, "{correlation_id}", correlation_id);
}

std::variant<std::string, std::string> load_token_secret(const TokenOptions& o,
                                                         const char* env_secret) {
  return load_secret(o.jwt_secret_file, env_secret, "jwt-secret-file");
}

}  // namespace wsgate::backend
