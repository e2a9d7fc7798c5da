// `wsgate-bench hold`: open N idle sessions (a bounded number of handshakes in
// flight; with --warm each first echoes one message), print one JSON line
// saying how many opened, then keep them open, each with a read pending so a
// drop is noticed, until SIGTERM/SIGINT or the hold time ends; then print a
// second line with the drops. For measuring a proxy's memory per idle session.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <ctime>
#include <iostream>
#include <thread>
#include <vector>

#include "tests/bench/client.hpp"
#include "tests/bench/commands.hpp"
#include "tests/bench/runtime.hpp"
#include "tests/bench/stats.hpp"

namespace wsgate::bench {
namespace {

constexpr auto kToken = asio::as_tuple(asio::use_awaitable);

struct Counters {
  std::atomic<int> next{0};
  std::atomic<int> attempted{0};
  std::atomic<int> established{0};
  std::atomic<int> dropped{0};
  std::atomic<bool> holding{false};
};

template <class Ws>
asio::awaitable<void> idle(std::unique_ptr<Ws> ws, Counters& counters) {
  beast::flat_buffer buffer;
  for (;;) {
    auto [ec, n] = co_await ws->async_read(buffer, kToken);
    if (ec) {
      counters.dropped.fetch_add(1);
      co_return;
    }
    buffer.consume(n);
  }
}

// One message out and its echo back before the session goes idle: a proxy
// then holds whatever it keeps after relaying (nginx its relay buffers), as a
// real session's greeting leaves it. Bounded by `timeout` like the handshake.
template <class Ws>
asio::awaitable<beast::error_code> warm_up(Ws& ws, std::size_t bytes, Clock::duration timeout) {
  SocketDeadline deadline(beast::get_lowest_layer(ws), timeout);
  std::vector<unsigned char> payload(bytes, static_cast<unsigned char>('w'));
  auto [wec, written] = co_await ws.async_write(asio::buffer(payload), kToken);
  if (wec) co_return wec;
  beast::flat_buffer buffer;
  auto [rec, n] = co_await ws.async_read(buffer, kToken);
  if (rec) co_return rec;
  if (n != bytes) co_return beast::error_code(asio::error::message_size);
  co_return beast::error_code{};
}

template <class Ws>
asio::awaitable<void> opener(asio::io_context& ioc, const Target& target,
                             const HoldOptions& options, Counters& counters, ThreadStats& stats) {
  const auto timeout = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(options.client.timeout_s));
  while (counters.next.fetch_add(1) < options.connections) {
    auto ws = make_stream<Ws>(ioc, target);
    auto ec = co_await open_session(*ws, target, timeout);
    if (ec) {
      stats.error("handshake: " + ec.message());
    } else if (options.warm_bytes > 0 &&
               (ec = co_await warm_up(*ws, options.warm_bytes, timeout))) {
      stats.error("warm-up echo: " + ec.message());
    } else {
      counters.established.fetch_add(1);
      asio::co_spawn(ioc, idle(std::move(ws), counters), asio::detached);
    }
    counters.attempted.fetch_add(1);
  }
}

template <class Ws>
int run(const HoldOptions& options, const Target& target) {
  // Signals are taken synchronously by this thread (sigtimedwait), never by
  // the io threads, which inherit the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  Runtime runtime(options.client.threads);
  Counters counters;
  std::vector<ThreadStats> stats(runtime.size());
  const auto t0 = Clock::now();
  for (int w = 0; w < std::max(1, std::min(options.concurrency, options.connections)); ++w) {
    const std::size_t t = static_cast<std::size_t>(w) % runtime.size();
    asio::co_spawn(runtime.at(t), opener<Ws>(runtime.at(t), target, options, counters, stats[t]),
                   asio::detached);
  }
  runtime.start(/*keep_alive=*/true);

  bool signalled = false;
  while (counters.attempted.load() < options.connections) {
    timespec tick{0, 20'000'000};
    if (sigtimedwait(&set, nullptr, &tick) > 0) {
      signalled = true;
      break;
    }
  }
  const double open_s = std::chrono::duration<double>(Clock::now() - t0).count();
  // Error texts are read while the threads still run: ThreadStats is only
  // appended to during opening, which is over (or abandoned) here.
  runtime.stop();
  runtime.join();
  ThreadStats total = merge(stats);
  const int established = counters.established.load();
  nlohmann::json first;
  first["mode"] = "hold";
  first["url"] = options.client.url;
  first["requested"] = options.connections;
  first["warm_bytes"] = options.warm_bytes;
  first["established"] = established;
  first["errors"] = total.errors;
  first["error_samples"] = total.samples;
  first["open_s"] = open_s;
  first["dropped_while_opening"] = counters.dropped.load();
  std::cout << first.dump() << std::endl;

  // Hold: resume the io threads so pending reads notice drops.
  runtime.start(/*keep_alive=*/true);
  const auto hold_start = Clock::now();
  if (!signalled) {
    const auto until = hold_start + std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(options.hold_s));
    for (;;) {
      const auto left = until - Clock::now();
      if (left <= Clock::duration::zero()) break;
      const auto step = std::min<Clock::duration>(left, std::chrono::milliseconds(200));
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(step).count();
      timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
      if (sigtimedwait(&set, nullptr, &ts) > 0) break;
    }
  }
  runtime.stop();
  runtime.join();
  nlohmann::json last;
  last["event"] = "released";
  last["held_s"] = std::chrono::duration<double>(Clock::now() - hold_start).count();
  last["dropped"] = counters.dropped.load();
  std::cout << last.dump() << std::endl;
  return established == options.connections ? kExitOk : kExitFailed;
}

}  // namespace

int run_hold(const HoldOptions& options) {
  raise_fd_limit();
  Target target;
  try {
    target = make_target(options.client.url, options.client.ca_file, options.client.insecure);
  } catch (const std::exception& e) {
    std::cerr << "hold: " << e.what() << "\n";
    return kExitSetup;
  }
  return target.url.tls ? run<TlsWs>(options, target) : run<PlainWs>(options, target);
}

}  // namespace wsgate::bench
