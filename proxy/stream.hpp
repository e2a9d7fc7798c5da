#pragma once
// One byte stream that is plain TCP, TLS on the listener (TlsSocketStream:
// OpenSSL on the socket, lean) or TLS to an upstream (asio::ssl::stream, for
// its certificate verification plumbing), chosen at run time. The branch is
// per operation and the completion handlers stay concrete, so Asio's
// recycling handler allocator applies: no heap allocation per read or write
// (a type-erased std::function handler would allocate every time).
#include <boost/asio/ssl/stream.hpp>
#include <memory>
#include <optional>
#include <utility>

#include "proxy/tls_socket_stream.hpp"
#include "proxy/worker_socket.hpp"

namespace wsgate::proxy {

class AnyStream {
 public:
  using executor_type = WorkerSocket::executor_type;
  using TlsStream = boost::asio::ssl::stream<WorkerSocket>;

  explicit AnyStream(WorkerSocket socket) : plain_(std::move(socket)) {}
  // Client side of a wss:// upstream.
  AnyStream(WorkerSocket socket, boost::asio::ssl::context& ctx)
      : tls_(std::make_unique<TlsStream>(std::move(socket), ctx)) {}
  // Server side of the TLS listener.
  struct ServerTls {};
  AnyStream(WorkerSocket socket, boost::asio::ssl::context& ctx, ServerTls)
      : server_tls_(std::make_unique<TlsSocketStream>(std::move(socket), ctx.native_handle())) {}

  bool is_tls() const { return tls_ || server_tls_; }
  TlsStream& tls() { return *tls_; }
  bool is_server_tls() const { return server_tls_ != nullptr; }
  // TLS to a wss:// upstream (asio::ssl::stream): its reads stay pending,
  // buffer and all, since it may hold ciphertext the socket no longer shows.
  bool is_upstream_tls() const { return tls_ != nullptr; }
  TlsSocketStream& server_tls() { return *server_tls_; }
  WorkerSocket& socket() {
    if (server_tls_) return server_tls_->socket();
    return tls_ ? tls_->next_layer() : *plain_;
  }
  executor_type get_executor() { return socket().get_executor(); }

  template <class Buffers, class Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    if (server_tls_)
      server_tls_->async_read_some(buffers, std::forward<Handler>(handler));
    else if (tls_)
      tls_->async_read_some(buffers, std::forward<Handler>(handler));
    else
      plain_->async_read_some(buffers, std::forward<Handler>(handler));
  }

  template <class Buffers, class Handler>
  void async_write_some(const Buffers& buffers, Handler&& handler) {
    if (server_tls_)
      server_tls_->async_write_some(buffers, std::forward<Handler>(handler));
    else if (tls_)
      tls_->async_write_some(buffers, std::forward<Handler>(handler));
    else
      plain_->async_write_some(buffers, std::forward<Handler>(handler));
  }

  // One write attempt now, without Asio's write operation: the relay's
  // common case, a message the socket takes whole, then costs only the send.
  // would_block / in_progress: nothing more went (always so for a wss://
  // upstream, whose asio::ssl::stream has no such call); finish with
  // async_write_some. Plain sockets must be non-blocking (the tunnel sets it).
  std::size_t try_write_some(boost::asio::const_buffer b, boost::system::error_code& ec) {
    if (server_tls_) return server_tls_->try_write_some(b, ec);
    if (tls_) {
      ec = boost::asio::error::would_block;
      return 0;
    }
    return plain_->write_some(b, ec);
  }

  // Ends the write side: TCP FIN on plain streams; on TLS the socket's send
  // side too (a close_notify exchange could stall on a dead peer).
  void shutdown_send() {
    boost::system::error_code ignored;
    socket().shutdown(WorkerSocket::shutdown_send, ignored);
  }

  void close() {
    boost::system::error_code ignored;
    socket().shutdown(WorkerSocket::shutdown_both, ignored);
    socket().close(ignored);
  }

 private:
  // The TLS streams live on the heap so a plain session pays only for its
  // socket: held inline, they made every AnyStream 648 bytes, two per session.
  std::optional<WorkerSocket> plain_;
  std::unique_ptr<TlsStream> tls_;
  std::unique_ptr<TlsSocketStream> server_tls_;
};

}  // namespace wsgate::proxy
