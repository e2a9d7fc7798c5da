// wsgate: the proxy binary. Wires options, the shared Gateway, the listener,
// the admin endpoints and signal handling together; no protocol logic here.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <fstream>
#include <string_view>
#include <thread>
#include <vector>

#include "common/admin_server.hpp"
#include "common/tls.hpp"
#include "common/yaml_config.hpp"
#include "proxy/admin_api.hpp"
#include "proxy/edge_poller.hpp"
#include "proxy/gateway.hpp"
#include "proxy/incidents/incident_recorder.hpp"
#include "proxy/incidents_cli.hpp"
#include "proxy/listener.hpp"
#include "proxy/options.hpp"

namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace wsgate;
using namespace wsgate::proxy;

namespace {

void load_server_tls(Gateway& gw) {
  const auto& c = gw.config();
  gw.set_server_tls(tls::make_server_context({c.tls_cert, c.tls_key}));
  if (auto expiry = tls::certificate_expiry(c.tls_cert)) gw.metrics().tls_cert_expiry.Set(*expiry);
}

// SIGTERM/SIGINT: stop accepting, /readyz 503, 1001 to every session, wait
// for them up to the drain timeout, then stop.
void drain_and_stop(net::io_context& ioc, Gateway& gw, Listener& listener,
                    std::shared_ptr<net::steady_timer> timer,
                    std::chrono::steady_clock::time_point deadline) {
  if (gw.busy_count() == 0) {
    spdlog::info("drained; exiting");
    return ioc.stop();
  }
  if (std::chrono::steady_clock::now() >= deadline) {
    spdlog::warn("drain timeout with {} sessions left; exiting", gw.busy_count());
    gw.metrics().timeout(TimeoutKind::drain).Increment(static_cast<double>(gw.busy_count()));
    return ioc.stop();
  }
  timer->expires_after(std::chrono::milliseconds(50));
  timer->async_wait([&ioc, &gw, &listener, timer, deadline](boost::system::error_code ec) {
    if (!ec) drain_and_stop(ioc, gw, listener, timer, deadline);
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "incidents")
    return incidents_cli::run(argc - 1, argv + 1);
  int exit_code = 0;
  auto options = parse_options(argc, argv, exit_code);
  if (!options) return exit_code;
  logging::init("wsgate", options->log_format, options->log_level);
  std::signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<Gateway> gateway;
  // One I/O thread: every handler and every operation on a socket or timer
  // runs on it (main() below), so the reactor's per-descriptor locks only
  // cost time; the scheduler keeps its lock for the incident writer's posts.
  net::io_context ioc(options->config.threads == 1 ? BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO
                                                   : static_cast<int>(options->config.threads));
  std::unique_ptr<EdgePoller> edge_poller;
  std::shared_ptr<Listener> listener;
  // The admin endpoints run on a thread of their own: answering them (a
  // page of /connections, a scrape) never delays relaying.
  net::io_context admin_ioc(1);
  std::unique_ptr<AdminServer> admin;
  std::unique_ptr<AdminApi> admin_api;
  std::unique_ptr<incidents::IncidentRecorder> recorder;
  try {
    options->config.max_connections = fit_connections_to_fd_limit(options->config.max_connections);
    gateway = std::make_unique<Gateway>(options->config);
    if (gateway->config().threads == 1) {
      // Readiness of tunnel sockets without a syscall per wait; it relies
      // on every handler running on this one thread.
      edge_poller = std::make_unique<EdgePoller>(ioc);
      if (edge_poller->ok()) gateway->set_edge_poller(edge_poller.get());
    }
    if (!gateway->config().tls_cert.empty()) {
      load_server_tls(*gateway);
    } else {
      spdlog::warn("no --tls-cert/--tls-key: the listener serves plaintext ws://");
    }
    const auto& where = gateway->config();
    listener = listen_on(where.listen, "--listen", [&] {
      return std::make_shared<Listener>(ioc, *gateway, resolve_listen(where.listen, "--listen"));
    });
    admin = listen_on(where.admin, "--admin", [&] {
      return std::make_unique<AdminServer>(admin_ioc, resolve_listen(where.admin, "--admin"));
    });
    admin_api = std::make_unique<AdminApi>(ioc, *gateway, *admin);
    recorder = std::make_unique<incidents::IncidentRecorder>(ioc, *gateway, *admin);
    gateway->set_session_end_hook(
        [r = recorder.get()](const SessionSummary& s) { r->on_session_end(s); });
  } catch (const ListenError& e) {
    spdlog::critical("{}", e.what());
    return kExitStartup;
  } catch (const std::exception& e) {
    spdlog::critical("start-up failed: {}", e.what());
    return kExitStartup;
  }
  const auto& cfg = gateway->config();
  auto listen_port = listener->local_endpoint().port();
  auto admin_port = admin->local_endpoint().port();
  if (!cfg.port_file.empty()) {
    std::ofstream(cfg.port_file) << nlohmann::json{{"listen", listen_port}, {"admin", admin_port}}.dump()
                                 << "\n";
  }
  for (auto& r : cfg.routes)
    spdlog::info("route {} -> {}{}", r.path_prefix, r.upstream.to_string(),
                 r.trace_url_template.empty() ? "" : " (trace " + r.trace_url_template + ")");
  spdlog::info("wsgate listening on {}:{} ({}), admin on {}:{}, {} threads, tap {}", cfg.listen.host,
               listen_port, cfg.tls_cert.empty() ? "ws" : "wss", cfg.admin.host, admin_port,
               cfg.threads,
               cfg.tap_mode == TapMode::enforce ? "enforce"
               : cfg.tap_mode == TapMode::observe ? "observe" : "off");

  listener->run();
  admin->start();
  std::thread admin_thread([&admin_ioc] { admin_ioc.run(); });
  if (gateway->edge_poller())
    spdlog::info("tunnel sockets: edge-triggered in Asio's epoll set, one operation per socket "
                 "that is never re-armed");
  else if (cfg.threads == 1)
    spdlog::info("tunnel sockets: wait through Asio (no edge watch on this build)");

  net::signal_set stop_signals(ioc, SIGINT, SIGTERM);
  auto drain_timer = std::make_shared<net::steady_timer>(ioc);
  stop_signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: draining {} sessions (up to {} s)", sig, gateway->session_count(),
                 std::chrono::duration_cast<std::chrono::seconds>(cfg.drain_timeout).count());
    gateway->set_draining();
    listener->stop();
    gateway->drain_all();
    drain_and_stop(ioc, *gateway, *listener, drain_timer,
                   std::chrono::steady_clock::now() + cfg.drain_timeout);
  });

  net::signal_set reload_signal(ioc, SIGHUP);
  std::function<void()> wait_reload = [&] {
    reload_signal.async_wait([&](boost::system::error_code ec, int) {
      if (ec) return;
      recorder->store().request_reopen();  // after logrotate moved the incident log away
      if (cfg.tls_cert.empty()) {
        spdlog::info("SIGHUP: no TLS configured, nothing to reload");
      } else {
        try {
          load_server_tls(*gateway);
          spdlog::info("SIGHUP: reloaded TLS certificate {}", cfg.tls_cert);
        } catch (const std::exception& e) {
          spdlog::error("SIGHUP: keeping the old certificate: {}", e.what());
        }
      }
      wait_reload();
    });
  };
  wait_reload();

  std::vector<std::thread> threads;
  for (unsigned i = 1; i < cfg.threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();
  // Before anything its handlers use (gateway, incident store) goes away.
  admin->stop();
  admin_ioc.stop();
  admin_thread.join();
  return 0;
}
