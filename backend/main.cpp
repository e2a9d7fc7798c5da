// wsgate-backend: the chat/agent WebSocket service behind wsgate. See
// docs/backend.md.
#include <chrono>
#include <cstdlib>
#include <iostream>

#include "backend/options.hpp"
#include "backend/server.hpp"
#include "common/logging.hpp"
#include "common/yaml_config.hpp"

namespace {

int run_token(const wsgate::backend::TokenOptions& options) {
  auto secret = wsgate::backend::load_token_secret(options, std::getenv("WSGATE_JWT_SECRET"));
  if (secret.index() == 1) {
    std::cerr << "wsgate-backend token: " << std::get<1>(secret) << "\n";
    return 2;
  }
  wsgate::backend::MintOptions mint;
  mint.sub = options.sub;
  mint.thread_id = options.thread_id;
  mint.ttl_seconds = options.ttl;
  mint.issuer = options.issuer;
  mint.audience = options.audience;
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::cout << wsgate::backend::mint_hs256(std::get<0>(secret), mint, now) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "wsgate-backend: chat/agent WebSocket service (JWT auth, per-user execution context with "
      "strict or fallback validation, per-user managers, stage traces). WebSocket path /ws.\n"
      "Every flag is also a key of the --config YAML file; flags override the file."};
  wsgate::backend::ServeOptions serve;
  wsgate::backend::add_serve_options(app, serve);
  wsgate::backend::TokenOptions token;
  auto* token_cmd = wsgate::backend::add_token_command(app, token);
  app.require_subcommand(0, 1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return wsgate::report_parse_error(app, e);
  }
  if (token_cmd->parsed()) {
    try {
      return run_token(token);
    } catch (const std::exception& e) {
      std::cerr << "wsgate-backend token: " << e.what() << "\n";
      return 1;
    }
  }

  auto resolved = wsgate::backend::resolve(serve, std::getenv("WSGATE_JWT_SECRET"));
  if (resolved.index() == 1) {
    std::cerr << "wsgate-backend: config error: " << std::get<1>(resolved) << "\n";
    return 2;
  }
  auto& config = std::get<0>(resolved);
  wsgate::logging::init("wsgate-backend", config.log_format, config.log_level);
  try {
    return wsgate::backend::run_server(std::move(config));
  } catch (const std::exception& e) {
    SPDLOG_CRITICAL("wsgate-backend failed to start: {}", e.what());
    return 1;
  }
}
