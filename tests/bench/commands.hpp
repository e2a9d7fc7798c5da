#pragma once
// The four subcommands of wsgate-bench. Each returns the process exit code:
// 0 success, 1 ran but failed its own check (errors, nothing echoed, fewer
// sessions than asked), 3 could not start (bad URL, unreadable certificate,
// address in use). Usage errors (2) are the caller's.
#include <cstddef>
#include <string>

namespace wsgate::bench {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitSetup = 3;

struct EchoOptions {
  std::string listen = "127.0.0.1:0";
  std::string tls_cert;
  std::string tls_key;
  int threads = 1;
  std::string port_file;
  bool keep_tls_buffers = false;  // clear SSL_MODE_RELEASE_BUFFERS (memory study)
};
int run_echo(const EchoOptions& options);

struct ClientOptions {
  std::string url;
  std::string ca_file;
  bool insecure = false;
  int threads = 1;
  double timeout_s = 10;  // per session: connect + TLS + upgrade
};

struct LoadOptions {
  ClientOptions client;
  int connections = 1;
  std::size_t size = 64;
  int inflight = 1;
  double duration_s = 10;
  double warmup_s = 1;
  double rate = 0;  // messages/s over all connections; 0: closed loop
};
int run_load(const LoadOptions& options);

struct ConnectOptions {
  ClientOptions client;
  double duration_s = 5;
  int concurrency = 16;
};
int run_connect(const ConnectOptions& options);

struct HoldOptions {
  ClientOptions client;
  int connections = 1000;
  double hold_s = 3600;
  int concurrency = 128;  // handshakes in flight while opening
  std::size_t warm_bytes = 0;  // one echo of this size per session before idling; 0: none
};
int run_hold(const HoldOptions& options);

}  // namespace wsgate::bench
