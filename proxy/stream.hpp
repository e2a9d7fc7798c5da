#pragma once
// One byte stream that is plain TCP, TLS on the listener (TlsSocketStream:
// OpenSSL on the socket, lean) or TLS to an upstream (asio::ssl::stream, for
// its certificate verification plumbing), chosen at run time. The branch is
// per operation and the completion handlers stay concrete, so Asio's
// recycling handler allocator applies: no heap allocation per read or write
// (a type-erased std::function handler would allocate every time).
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <cerrno>
#include <memory>
#include <optional>
#include <utility>

#include "proxy/tls_socket_stream.hpp"

namespace wsgate::proxy {

class AnyStream {
 public:
  using tcp = boost::asio::ip::tcp;
  using executor_type = tcp::socket::executor_type;
  using TlsStream = boost::asio::ssl::stream<tcp::socket>;

  explicit AnyStream(tcp::socket socket) : plain_(std::move(socket)) {}
  // Client side of a wss:// upstream.
  AnyStream(tcp::socket socket, boost::asio::ssl::context& ctx)
      : tls_(std::make_unique<TlsStream>(std::move(socket), ctx)) {}
  // Server side of the TLS listener.
  struct ServerTls {};
  AnyStream(tcp::socket socket, boost::asio::ssl::context& ctx, ServerTls)
      : server_tls_(std::make_unique<TlsSocketStream>(std::move(socket), ctx.native_handle())) {}

  bool is_tls() const { return tls_ || server_tls_; }
  // A plain stream whose descriptor was taken out of Asio (take_from_asio):
  // only the non-blocking calls below work on it, and the caller waits for
  // readiness itself (the worker's EdgePoller).
  bool owned() const { return owned_.fd >= 0; }
  int native_handle() { return owned() ? owned_.fd : socket().native_handle(); }
  // Takes a plain socket's descriptor out of Asio's reactor, so its events
  // reach only the caller's own epoll set. No operation may be pending.
  bool take_from_asio(boost::system::error_code& ec) {
    if (!plain_ || owned()) {
      ec = boost::asio::error::operation_not_supported;
      return false;
    }
    plain_->non_blocking(true, ec);
    if (ec) return false;
    const int fd = plain_->release(ec);
    if (ec) return false;
    owned_ = OwnedFd(fd);
    return true;
  }
  // One non-blocking read now (plain streams): would_block when empty.
  std::size_t read_some_now(boost::asio::mutable_buffer b, boost::system::error_code& ec) {
    if (!owned()) return socket().read_some(b, ec);
    for (;;) {
      const ssize_t n = ::recv(owned_.fd, b.data(), b.size(), 0);
      if (n > 0) {
        ec = {};
        return static_cast<std::size_t>(n);
      }
      if (n == 0) {
        ec = b.size() == 0 ? boost::system::error_code() : boost::asio::error::eof;
        return 0;
      }
      if (errno == EINTR) continue;
      ec = errno == EAGAIN || errno == EWOULDBLOCK
               ? boost::system::error_code(boost::asio::error::would_block)
               : boost::system::error_code(errno, boost::system::system_category());
      return 0;
    }
  }
  TlsStream& tls() { return *tls_; }
  bool is_server_tls() const { return server_tls_ != nullptr; }
  // TLS to a wss:// upstream (asio::ssl::stream): its reads stay pending,
  // buffer and all, since it may hold ciphertext the socket no longer shows.
  bool is_upstream_tls() const { return tls_ != nullptr; }
  TlsSocketStream& server_tls() { return *server_tls_; }
  tcp::socket& socket() {
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
    if (owned()) {
      for (;;) {
        const ssize_t n = ::send(owned_.fd, b.data(), b.size(), MSG_NOSIGNAL);
        if (n >= 0) {
          ec = {};
          return static_cast<std::size_t>(n);
        }
        if (errno == EINTR) continue;
        ec = errno == EAGAIN || errno == EWOULDBLOCK
                 ? boost::system::error_code(boost::asio::error::would_block)
                 : boost::system::error_code(errno, boost::system::system_category());
        return 0;
      }
    }
    return plain_->write_some(b, ec);
  }

  // Ends the write side: TCP FIN on plain streams; on TLS the socket's send
  // side too (a close_notify exchange could stall on a dead peer).
  void shutdown_send() {
    if (owned()) {
      ::shutdown(owned_.fd, SHUT_WR);
      return;
    }
    boost::system::error_code ignored;
    socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  void close() {
    if (owned()) {
      ::shutdown(owned_.fd, SHUT_RDWR);
      owned_ = OwnedFd();
      return;
    }
    boost::system::error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
  }

 private:
  // The TLS streams live on the heap so a plain session pays only for its
  // socket: held inline, they made every AnyStream 648 bytes, two per session.
  struct OwnedFd {
    int fd = -1;
    OwnedFd() = default;
    explicit OwnedFd(int f) : fd(f) {}
    OwnedFd(OwnedFd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
    OwnedFd& operator=(OwnedFd&& o) noexcept {
      if (this != &o) {
        if (fd >= 0) ::close(fd);
        fd = std::exchange(o.fd, -1);
      }
      return *this;
    }
    ~OwnedFd() {
      if (fd >= 0) ::close(fd);
    }
  };
  std::optional<tcp::socket> plain_;
  OwnedFd owned_;  // the plain socket's descriptor once taken from Asio
  std::unique_ptr<TlsStream> tls_;
  std::unique_ptr<TlsSocketStream> server_tls_;
};

}  // namespace wsgate::proxy
