// wsgate-bench: benchmark tools for wsgate — an echo upstream and three load
// shapes (echo load, connect rate, idle hold). Results are one JSON object per
// line on stdout; diagnostics go to stderr.
#include <CLI/CLI.hpp>

#include <iostream>

#include "tests/bench/commands.hpp"

namespace {

void add_client_options(CLI::App* cmd, wsgate::bench::ClientOptions& o) {
  cmd->add_option("--url", o.url, "ws://HOST:PORT/path or wss://...")->required();
  cmd->add_option("--ca", o.ca_file, "CA file to verify a wss:// server (default: system CAs)");
  cmd->add_flag("--insecure", o.insecure, "do not verify the wss:// server certificate");
  cmd->add_option("--threads", o.threads, "client threads, one io_context each")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--timeout", o.timeout_s, "seconds for connect + TLS + upgrade of one session")
      ->check(CLI::PositiveNumber)->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace wsgate::bench;
  CLI::App app{"wsgate-bench: WebSocket echo upstream and load generator for benchmarks.\n"
               "Exit codes: 0 ok; 1 ran but failed (errors, no echo, sessions short); "
               "2 usage; 3 setup (bad URL, certificate, address)."};
  app.require_subcommand(1);

  EchoOptions echo;
  auto* echo_cmd = app.add_subcommand("echo", "echo upstream: returns every message with its opcode");
  echo_cmd->add_option("--listen", echo.listen, "HOST:PORT (port 0: any free port)")->capture_default_str();
  echo_cmd->add_option("--tls-cert", echo.tls_cert, "PEM certificate chain (serve wss)");
  echo_cmd->add_option("--tls-key", echo.tls_key, "PEM private key");
  echo_cmd->add_option("--threads", echo.threads, "threads, one io_context each")
      ->check(CLI::PositiveNumber)->capture_default_str();
  echo_cmd->add_option("--port-file", echo.port_file, "write the bound port here once listening");
  echo_cmd->add_flag("--keep-tls-buffers", echo.keep_tls_buffers,
                     "clear SSL_MODE_RELEASE_BUFFERS (to measure its effect on memory)");

  LoadOptions load;
  auto* load_cmd = app.add_subcommand(
      "load", "echo load; prints messages_per_sec, mb_per_sec, latency_us, errors as JSON");
  add_client_options(load_cmd, load.client);
  load_cmd->add_option("--connections", load.connections, "sessions")->check(CLI::PositiveNumber)->capture_default_str();
  load_cmd->add_option("--size", load.size, "payload bytes per message")->check(CLI::PositiveNumber)->capture_default_str();
  load_cmd->add_option("--inflight", load.inflight, "closed loop: messages in flight per session")
      ->check(CLI::PositiveNumber)->capture_default_str();
  load_cmd->add_option("--duration", load.duration_s, "measured seconds")->check(CLI::PositiveNumber)->capture_default_str();
  load_cmd->add_option("--warmup", load.warmup_s, "unmeasured seconds first")->check(CLI::NonNegativeNumber)->capture_default_str();
  load_cmd->add_option("--rate", load.rate,
                       "open loop: messages/s over all sessions at a fixed schedule; latency from "
                       "the intended send time (0: closed loop)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();

  ConnectOptions connect;
  auto* connect_cmd = app.add_subcommand(
      "connect", "handshakes/s: TCP + TLS + upgrade, then close, in a loop");
  add_client_options(connect_cmd, connect.client);
  connect_cmd->add_option("--duration", connect.duration_s, "seconds")->check(CLI::PositiveNumber)->capture_default_str();
  connect_cmd->add_option("--concurrency", connect.concurrency, "handshakes in flight")
      ->check(CLI::PositiveNumber)->capture_default_str();

  HoldOptions hold;
  auto* hold_cmd = app.add_subcommand(
      "hold", "open N idle sessions, print a JSON line, hold until SIGTERM/SIGINT or --hold");
  add_client_options(hold_cmd, hold.client);
  hold_cmd->add_option("--connections", hold.connections, "sessions to open")->check(CLI::PositiveNumber)->capture_default_str();
  hold_cmd->add_option("--hold", hold.hold_s, "seconds to hold")->check(CLI::NonNegativeNumber)->capture_default_str();
  hold_cmd->add_option("--concurrency", hold.concurrency, "handshakes in flight while opening")
      ->check(CLI::PositiveNumber)->capture_default_str();
  hold_cmd
      ->add_option("--warm", hold.warm_bytes,
                   "bytes of one message each session sends and awaits the echo of before "
                   "idling (warm-idle; 0: idle straight after the upgrade)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }

  if (*echo_cmd) {
    if (echo.tls_cert.empty() != echo.tls_key.empty()) {
      std::cerr << "echo: --tls-cert and --tls-key go together\n";
      return kExitUsage;
    }
    return run_echo(echo);
  }
  if (*load_cmd) return run_load(load);
  if (*connect_cmd) return run_connect(connect);
  return run_hold(hold);
}
