// `wsgate-bench echo`: the upstream every benchmark target relays to. It reads
// each whole message and writes it back with the same opcode; no compression,
// no fragmentation, no per-operation timers.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <openssl/ssl.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "common/tls.hpp"
#include "tests/bench/client.hpp"
#include "tests/bench/commands.hpp"
#include "tests/bench/runtime.hpp"

namespace wsgate::bench {
namespace {

constexpr auto kToken = asio::as_tuple(asio::use_awaitable);

template <class Ws>
void tune(Ws& ws) {
  websocket::stream_base::timeout t{};
  t.handshake_timeout = std::chrono::seconds(30);
  t.idle_timeout = websocket::stream_base::none();
  t.keep_alive_pings = false;
  ws.set_option(t);
  ws.read_message_max(std::size_t{1} << 30);
  ws.auto_fragment(false);
}

template <class Ws>
asio::awaitable<void> echo_loop(Ws& ws) {
  auto [aec] = co_await ws.async_accept(kToken);
  if (aec) co_return;
  beast::flat_buffer buffer;
  for (;;) {
    auto [rec, n] = co_await ws.async_read(buffer, kToken);
    if (rec) co_return;  // closed, reset, or the peer went away: all normal here
    ws.binary(ws.got_binary());
    auto [wec, written] = co_await ws.async_write(buffer.data(), kToken);
    if (wec) co_return;
    buffer.consume(n);
  }
}

asio::awaitable<void> serve_plain(tcp::socket socket) {
  PlainWs ws(std::move(socket));
  tune(ws);
  co_await echo_loop(ws);
}

asio::awaitable<void> serve_tls(tcp::socket socket, std::shared_ptr<ssl::context> ctx) {
  TlsWs ws(std::move(socket), *ctx);
  auto [hec] = co_await ws.next_layer().async_handshake(ssl::stream_base::server, kToken);
  if (hec) co_return;
  tune(ws);
  co_await echo_loop(ws);
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, Runtime& runtime,
                                  std::shared_ptr<ssl::context> ctx) {
  std::size_t next = 0;
  for (;;) {
    auto& ioc = runtime.at(next++);
    auto [ec, socket] = co_await acceptor.async_accept(ioc, kToken);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {  // EMFILE and friends: back off instead of spinning
      std::cerr << "echo: accept: " << ec.message() << "\n";
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(kToken);
      continue;
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    if (ctx)
      asio::co_spawn(ioc, serve_tls(std::move(socket), ctx), asio::detached);
    else
      asio::co_spawn(ioc, serve_plain(std::move(socket)), asio::detached);
  }
}

tcp::endpoint parse_listen(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("--listen wants HOST:PORT");
  std::string host = text.substr(0, colon);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return {asio::ip::make_address(host), static_cast<unsigned short>(std::stoi(text.substr(colon + 1)))};
}

}  // namespace

int run_echo(const EchoOptions& options) {
  raise_fd_limit();
  std::shared_ptr<ssl::context> ctx;
  tcp::endpoint endpoint;
  try {
    endpoint = parse_listen(options.listen);
    if (!options.tls_cert.empty() || !options.tls_key.empty()) {
      ctx = tls::make_server_context({options.tls_cert, options.tls_key});
      if (options.keep_tls_buffers) SSL_CTX_clear_mode(ctx->native_handle(), SSL_MODE_RELEASE_BUFFERS);
    }
  } catch (const std::exception& e) {
    std::cerr << "echo: " << e.what() << "\n";
    return kExitSetup;
  }

  Runtime runtime(options.threads);
  tcp::acceptor acceptor(runtime.at(0));
  beast::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::cerr << "echo: listen " << options.listen << ": " << ec.message() << "\n";
    return kExitSetup;
  }
  const auto port = acceptor.local_endpoint().port();
  if (!options.port_file.empty()) {
    const std::string tmp = options.port_file + ".tmp";
    std::ofstream(tmp) << port << "\n";
    std::filesystem::rename(tmp, options.port_file);
  }
  std::cerr << "echo: listening on " << acceptor.local_endpoint() << (ctx ? " (wss)" : " (ws)")
            << ", " << runtime.size() << " thread(s)\n";

  asio::signal_set signals(runtime.at(0), SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code, int) {
    beast::error_code ignored;
    acceptor.close(ignored);
    runtime.stop();
  });
  asio::co_spawn(runtime.at(0), accept_loop(acceptor, runtime, ctx), asio::detached);
  runtime.start(/*keep_alive=*/true);
  runtime.join();
  return kExitOk;
}

}  // namespace wsgate::bench
