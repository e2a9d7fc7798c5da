// wsgate: the proxy binary. Wires options, the shared Gateway, the listener,
// the admin endpoints and signal handling together; no protocol logic here.
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/admin_server.hpp"
#include "common/tls.hpp"
#include "common/yaml_config.hpp"
#include "proxy/admin_api.hpp"
#include "proxy/gateway.hpp"
#include "proxy/incidents/incident_recorder.hpp"
#include "proxy/incidents_cli.hpp"
#include "proxy/listener.hpp"
#include "proxy/memory_trim.hpp"
#include "proxy/options.hpp"
#include "proxy/workers.hpp"

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
// for them up to the drain timeout, then stop. Runs on the control thread.
void drain_and_stop(net::io_context& control, Gateway& gw, std::shared_ptr<net::steady_timer> timer,
                    std::chrono::steady_clock::time_point deadline) {
  if (gw.busy_count() == 0) {
    spdlog::info("drained; exiting");
    return control.stop();
  }
  if (std::chrono::steady_clock::now() >= deadline) {
    spdlog::warn("drain timeout with {} sessions left; exiting", gw.busy_count());
    gw.metrics().timeout(TimeoutKind::drain).Increment(static_cast<double>(gw.busy_count()));
    return control.stop();
  }
  timer->expires_after(std::chrono::milliseconds(50));
  timer->async_wait([&control, &gw, timer, deadline](boost::system::error_code ec) {
    if (!ec) drain_and_stop(control, gw, timer, deadline);
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

  const CpuBudget cpus = read_cpu_budget();
  const bool threads_from_cpus = options->config.threads == 0;
  if (threads_from_cpus) options->config.threads = cpus.workers();

  // Declared in the order of their lifetimes: sessions on the workers refer
  // to the gateway, the listener's acceptor to its worker.
  std::unique_ptr<Gateway> gateway;
  std::unique_ptr<Workers> workers;
  std::shared_ptr<Listener> listener;
  // The control thread (this one): signals, drain, the admin endpoints,
  // trace fetches and incident records. Answering a page of /connections
  // or a scrape never delays relaying.
  net::io_context control(1);
  std::unique_ptr<AdminServer> admin;
  std::unique_ptr<AdminApi> admin_api;
  std::unique_ptr<incidents::IncidentRecorder> recorder;
  try {
    options->config.max_connections = fit_connections_to_fd_limit(options->config.max_connections);
    gateway = std::make_unique<Gateway>(options->config);
    workers = std::make_unique<Workers>(gateway->config().threads);
    if (!gateway->config().tls_cert.empty()) {
      load_server_tls(*gateway);
    } else {
      spdlog::warn("no --tls-cert/--tls-key: the listener serves plaintext ws://");
    }
    const auto& where = gateway->config();
    listener = listen_on(where.listen, "--listen", [&] {
      return std::make_shared<Listener>(*workers, *gateway,
                                        resolve_listen(where.listen, "--listen"));
    });
    admin = listen_on(where.admin, "--admin", [&] {
      return std::make_unique<AdminServer>(control, resolve_listen(where.admin, "--admin"));
    });
    admin_api = std::make_unique<AdminApi>(*gateway, *admin);
    recorder = std::make_unique<incidents::IncidentRecorder>(control, *gateway, *admin);
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
    std::ofstream(cfg.port_file)
        << nlohmann::json{{"listen", listen_port}, {"admin", admin_port}}.dump() << "\n";
  }
  for (auto& r : cfg.routes)
    spdlog::info("route {} -> {}{}", r.path_prefix, r.upstream.to_string(),
                 r.trace_url_template.empty() ? "" : " (trace " + r.trace_url_template + ")");
  spdlog::info("wsgate listening on {}:{} ({}), admin on {}:{}, {} worker{} ({}), tap {}",
               cfg.listen.host, listen_port, cfg.tls_cert.empty() ? "ws" : "wss", cfg.admin.host,
               admin_port, cfg.threads, cfg.threads == 1 ? "" : "s",
               threads_from_cpus ? "one per CPU this process may use: " + cpus.describe()
                                 : "--threads; " + cpus.describe(),
               cfg.tap_mode == TapMode::enforce   ? "enforce"
               : cfg.tap_mode == TapMode::observe ? "observe"
                                                  : "off");

  listener->run();
  admin->start();

  net::signal_set stop_signals(control, SIGINT, SIGTERM);
  auto drain_timer = std::make_shared<net::steady_timer>(control);
  stop_signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: draining {} sessions (up to {} s)", sig, gateway->session_count(),
                 std::chrono::duration_cast<std::chrono::seconds>(cfg.drain_timeout).count());
    gateway->set_draining();
    listener->stop();
    gateway->drain_all();
    drain_and_stop(control, *gateway, drain_timer,
                   std::chrono::steady_clock::now() + cfg.drain_timeout);
  });

  net::signal_set reload_signal(control, SIGHUP);
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

  MemoryTrimmer trimmer(
      control, cfg.memory_trim_interval,
      [&] {
        return Activity{gateway->session_count(), gateway->handshakes_in_flight()};
      },
      gateway->metrics().memory_trims, gateway->metrics().memory_trim_released_bytes);
  trimmer.start();
  if (cfg.memory_trim_interval.count() > 0)
    spdlog::info(
        "memory: freed heap returned to the kernel once a burst settles (checked every {} ms)",
        cfg.memory_trim_interval.count());

  workers->start();
  control.run();
  // Workers first: their sessions call into the recorder and the gateway.
  workers->stop();
  workers->join();
  admin->stop();
  return 0;
}
