#pragma once
// The backend process: io_context and its threads, the WebSocket listener,
// the admin server, the port file and the SIGTERM/SIGINT drain.
#include "backend/options.hpp"

namespace wsgate::backend {

// Runs until SIGTERM/SIGINT: stops accepting, closes every session with 1001,
// waits up to drain_timeout for them, then returns 0. Throws on bind errors.
int run_server(BackendConfig config);

}  // namespace wsgate::backend
