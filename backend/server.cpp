#include "backend/server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "backend/admin_routes.hpp"
#include "backend/listener.hpp"
#include "backend/shared_state.hpp"
#include "backend/websocket_session.hpp"
#include "common/admin_server.hpp"

namespace wsgate::backend {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

void write_port_file(const std::string& path, unsigned short listen, unsigned short admin) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << nlohmann::json{{"listen", listen}, {"admin", admin}}.dump() << "\n";
    if (!out) throw std::runtime_error("port-file: cannot write '" + tmp + "'");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error("port-file: cannot rename to '" + path + "'");
}

// Polls until every session has finished or the deadline passes.
void drain(net::steady_timer& timer, SharedState& state,
           std::chrono::steady_clock::time_point deadline, std::function<void()> done) {
  if (state.session_count() == 0 || std::chrono::steady_clock::now() >= deadline) return done();
  timer.expires_after(std::chrono::milliseconds(20));
  timer.async_wait(
      [&timer, &state, deadline, done = std::move(done)](boost::system::error_code ec) {
        if (ec) return done();
        drain(timer, state, deadline, done);
      });
}

}  // namespace

int run_server(BackendConfig config) {
  net::io_context ioc(config.threads);
  auto registry = std::make_shared<prometheus::Registry>();
  auto agent = std::make_unique<DeterministicAgent>(ioc.get_executor(), config.agent_step_delay);
  auto state = std::make_shared<SharedState>(config, registry, std::move(agent));

  auto listener = listen_on(config.listen, "--listen", [&] {
    return std::make_shared<Listener>(ioc, resolve_listen(config.listen, "--listen"), state);
  });
  // The admin endpoints run on a thread of their own: a slow scrape or a
  // large trace listing never delays a WebSocket session.
  net::io_context admin_ioc(1);
  AdminServer admin = listen_on(config.admin, "--admin", [&] {
    return AdminServer(admin_ioc, resolve_listen(config.admin, "--admin"));
  });
  register_admin_routes(admin, state);
  auto listen_port = listener->local_endpoint().port();
  auto admin_port = admin.local_endpoint().port();
  if (!config.advertise_trace_url.empty())
    state->set_trace_location_template(
        fill_admin_address(config.advertise_trace_url, config.admin.host, admin_port));
  listener->start();
  admin.start();

  if (!config.port_file.empty()) write_port_file(config.port_file, listen_port, admin_port);
  HostPort shown_listen{config.listen.host, listen_port};
  HostPort shown_admin{config.admin.host, admin_port};
  SPDLOG_INFO(
      "wsgate-backend listening on {} (WebSocket path /ws), admin on {}; jwt {}; context-policy "
      "{}; faults: {}{}",
      shown_listen.to_string(), shown_admin.to_string(), jwt_alg_name(config.jwt.alg),
      policy_name(config.policy), state->faults().describe(),
      state->trace_location_template().empty()
          ? std::string()
          : "; announces traces at " + state->trace_location_template());

  net::signal_set signals(ioc, SIGINT, SIGTERM);
  net::steady_timer drain_timer(ioc);
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec,
                                                                      int signo) {
    if (ec) return;
    if (state->draining()) {
      SPDLOG_WARN("second signal {}: stopping now", signo);
      ioc.stop();
      return;
    }
    auto sessions = state->sessions();
    SPDLOG_INFO("signal {}: draining {} session(s) with 1001, up to {} ms", signo, sessions.size(),
                config.drain_timeout.count());
    state->set_draining();
    listener->stop();
    for (auto& s : sessions) s->shutdown(1001, "Server shutting down");
    signals.async_wait(on_signal);
    drain(drain_timer, *state, std::chrono::steady_clock::now() + config.drain_timeout, [&] {
      auto left = state->session_count();
      if (left > 0) SPDLOG_WARN("drain timeout: {} session(s) still open", left);
      SPDLOG_INFO("wsgate-backend stopped");
      admin.stop();
      ioc.stop();
    });
  };
  signals.async_wait(on_signal);

  std::thread admin_thread([&admin_ioc] { admin_ioc.run(); });
  std::vector<std::thread> threads;
  for (int i = 1; i < config.threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();
  // Before anything its handlers use (shared state, traces) goes away.
  admin.stop();
  admin_ioc.stop();
  admin_thread.join();
  return 0;
}

}  // namespace wsgate::backend
