// `wsgate-bench connect`: full handshakes per second. Each worker loops: TCP
// connect, TLS handshake (wss: a full one, no session resumption), WebSocket
// upgrade, close handshake; only the open sequence is timed.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <nlohmann/json.hpp>

#include <iostream>

#include "tests/bench/client.hpp"
#include "tests/bench/commands.hpp"
#include "tests/bench/runtime.hpp"
#include "tests/bench/stats.hpp"

namespace wsgate::bench {
namespace {

constexpr auto kToken = asio::as_tuple(asio::use_awaitable);

struct ConnectStats {
  ThreadStats base;  // messages = completed handshakes
  std::uint64_t close_errors = 0;
};

template <class Ws>
asio::awaitable<void> worker(asio::io_context& ioc, const Target& target,
                             const ConnectOptions& options, std::uint64_t end_ns,
                             ConnectStats& stats) {
  const auto timeout = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(options.client.timeout_s));
  while (now_ns() < end_ns) {
    auto ws = make_stream<Ws>(ioc, target);
    const std::uint64_t t0 = now_ns();
    auto ec = co_await open_session(*ws, target, timeout);
    const std::uint64_t t1 = now_ns();
    if (ec) {
      stats.base.error("handshake: " + ec.message());
      // Do not spin on a refused port: pause briefly after a failure.
      asio::steady_timer pause(ioc, std::chrono::milliseconds(10));
      co_await pause.async_wait(kToken);
      continue;
    }
    if (t1 <= end_ns) {
      ++stats.base.messages;
      stats.base.histogram.record(t1 - t0);
    }
    auto [cec] = co_await ws->async_close(websocket::close_code::normal, kToken);
    if (cec) ++stats.close_errors;
  }
}

template <class Ws>
int run(const ConnectOptions& options, const Target& target) {
  Runtime runtime(options.client.threads);
  std::vector<ConnectStats> stats(runtime.size());
  const std::uint64_t start = now_ns();
  const std::uint64_t end = start + static_cast<std::uint64_t>(options.duration_s * 1e9);
  for (int w = 0; w < std::max(1, options.concurrency); ++w) {
    const std::size_t t = static_cast<std::size_t>(w) % runtime.size();
    asio::co_spawn(runtime.at(t), worker<Ws>(runtime.at(t), target, options, end, stats[t]),
                   asio::detached);
  }
  runtime.start(/*keep_alive=*/false);
  runtime.join();

  std::vector<ThreadStats> parts;
  std::uint64_t close_errors = 0;
  for (auto& s : stats) {
    parts.push_back(std::move(s.base));
    close_errors += s.close_errors;
  }
  ThreadStats total = merge(parts);
  nlohmann::json out;
  out["mode"] = "connect";
  out["url"] = options.client.url;
  out["concurrency"] = options.concurrency;
  out["threads"] = runtime.size();
  out["duration_s"] = options.duration_s;
  out["handshakes"] = total.messages;
  out["handshakes_per_sec"] = static_cast<double>(total.messages) / options.duration_s;
  out["handshake_latency_us"] = latency_json(total.histogram);
  out["errors"] = total.errors;
  out["close_errors"] = close_errors;
  out["error_samples"] = total.samples;
  std::cout << out.dump() << std::endl;
  return (total.errors == 0 && total.messages > 0) ? kExitOk : kExitFailed;
}

}  // namespace

int run_connect(const ConnectOptions& options) {
  raise_fd_limit();
  Target target;
  try {
    target = make_target(options.client.url, options.client.ca_file, options.client.insecure);
  } catch (const std::exception& e) {
    std::cerr << "connect: " << e.what() << "\n";
    return kExitSetup;
  }
  return target.url.tls ? run<TlsWs>(options, target) : run<PlainWs>(options, target);
}

}  // namespace wsgate::bench
