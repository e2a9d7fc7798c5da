#pragma once
// A server-side TLS stream where OpenSSL reads and writes the socket itself
// (SSL_set_fd, non-blocking) and Asio only waits for readiness.
//
// Why not asio::ssl::stream: it keeps two 17 KiB buffers per stream, zeroed
// and so resident from the start, plus a 2 x 17 KiB BIO pair: ~70 KiB per
// idle wss session. Here OpenSSL owns the only buffers and, with
// SSL_MODE_RELEASE_BUFFERS, frees them while the session is idle; and since
// nothing hides between socket and SSL, SSL_has_pending() tells exactly
// whether a read can proceed without the socket, so the relay can wait for
// readability without holding a buffer.
//
// All operations of one stream run on one strand; a read and a write may be
// in flight together (OpenSSL allows interleaving them on one thread).
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <cerrno>
#include <type_traits>
#include <utility>

namespace wsgate::proxy {

class TlsSocketStream {
 public:
  using tcp = boost::asio::ip::tcp;
  using error_code = boost::system::error_code;

  TlsSocketStream(tcp::socket socket, SSL_CTX* ctx)
      : socket_(std::move(socket)), ssl_(SSL_new(ctx)) {
    error_code ignored;
    socket_.non_blocking(true, ignored);
    if (ssl_) {
      SSL_set_fd(ssl_, static_cast<int>(socket_.native_handle()));
      SSL_set_accept_state(ssl_);
      SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                             SSL_MODE_RELEASE_BUFFERS);
      // Read ahead: one read() takes whatever records are there instead of
      // a 5-byte header read and then the body (3 -> 2 reads per small
      // message, +5 % round trips at wss 64 B). SSL_has_pending() counts
      // the read-ahead bytes, so the relay still knows when to wait.
      SSL_set_read_ahead(ssl_, 1);
      watch_socket_reads();
    }
  }
  TlsSocketStream(TlsSocketStream&& other) noexcept
      : socket_(std::move(other.socket_)),
        ssl_(std::exchange(other.ssl_, nullptr)),
        socket_drained_(other.socket_drained_),
        last_socket_read_(other.last_socket_read_) {
    if (ssl_) watch_socket_reads();
  }
  TlsSocketStream& operator=(TlsSocketStream&&) = delete;
  TlsSocketStream(const TlsSocketStream&) = delete;
  ~TlsSocketStream() {
    if (ssl_) SSL_free(ssl_);
  }

  tcp::socket& socket() { return socket_; }
  SSL* native_handle() { return ssl_; }
  // Decrypted or buffered bytes that a read returns without the socket.
  bool has_pending() const { return ssl_ && SSL_has_pending(ssl_) == 1; }
  // The last read() OpenSSL made on the socket came back short (or with
  // nothing): the socket was empty then. With nothing pending either, the
  // next read would only find EAGAIN.
  bool socket_drained() const { return socket_drained_; }
  // Bytes that last read() returned (0 for EAGAIN or EOF).
  std::size_t last_socket_read() const { return last_socket_read_; }

  template <class Handler>
  void async_handshake(Handler&& handler) {
    run_op(
        [](SSL* s, std::size_t& n) {
          n = 0;
          return SSL_do_handshake(s);
        },
        std::forward<Handler>(handler), /*yields_bytes=*/false);
  }

  template <class Buffers, class Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    auto b = first_buffer<boost::asio::mutable_buffer>(buffers);
    run_op([b](SSL* s, std::size_t& n) { return SSL_read_ex(s, b.data(), b.size(), &n); },
           std::forward<Handler>(handler), true, b.size() == 0);
  }

  template <class Buffers, class Handler>
  void async_write_some(const Buffers& buffers, Handler&& handler) {
    auto b = first_buffer<boost::asio::const_buffer>(buffers);
    run_op([b](SSL* s, std::size_t& n) { return SSL_write_ex(s, b.data(), b.size(), &n); },
           std::forward<Handler>(handler), true, b.size() == 0);
  }

  // One read attempt now. would_block: wait for readability; in_progress:
  // OpenSSL must write first (use async_read_some).
  std::size_t try_read_some(boost::asio::mutable_buffer b, error_code& ec) {
    return try_once([b](SSL* s, std::size_t& n) { return SSL_read_ex(s, b.data(), b.size(), &n); },
                    SSL_ERROR_WANT_READ, ec);
  }

  // One write attempt now (partial writes are on). would_block: the socket
  // is full; in_progress: OpenSSL must read first. Either way nothing was
  // taken, and async_write_some picks up the same bytes.
  std::size_t try_write_some(boost::asio::const_buffer b, error_code& ec) {
    return try_once([b](SSL* s, std::size_t& n) { return SSL_write_ex(s, b.data(), b.size(), &n); },
                    SSL_ERROR_WANT_WRITE, ec);
  }

 private:
  // SSL_get_error reads this thread's error queue, so it must be empty
  // before each call. It nearly always is already, and ERR_clear_error
  // walks all of its slots regardless (OpenSSL 3): only clear a queue
  // that holds something.
  static void clear_stale_errors() {
    if (ERR_peek_error() != 0) ERR_clear_error();
  }

  // `call` once. OpenSSL asking for the call's own direction is would_block,
  // for the other one in_progress.
  template <class Call>
  std::size_t try_once(Call call, int own_want, error_code& ec) {
    std::size_t n = 0;
    clear_stale_errors();
    errno = 0;  // SSL_ERROR_SYSCALL with errno 0 is a truncated stream (to_error)
    int r = call(ssl_, n);
    if (r == 1) {
      ec = {};
      return n;
    }
    int err = SSL_get_error(ssl_, r);
    if (err == own_want)
      ec = boost::asio::error::would_block;
    else if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
      ec = boost::asio::error::in_progress;
    else
      ec = to_error(err);
    return 0;
  }

  void watch_socket_reads() {
    BIO* rbio = SSL_get_rbio(ssl_);
    if (!rbio) return;
    BIO_set_callback_arg(rbio, reinterpret_cast<char*>(this));
    BIO_set_callback_ex(rbio, &TlsSocketStream::on_bio);
  }

  static long on_bio(BIO* b, int oper, const char*, std::size_t len, int, long, int ret,
                     std::size_t* processed) {
    if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
      auto* self = reinterpret_cast<TlsSocketStream*>(BIO_get_callback_arg(b));
      self->last_socket_read_ = ret > 0 && processed ? *processed : 0;
      self->socket_drained_ = self->last_socket_read_ < len;
    }
    return ret;
  }

  template <class Buffer, class Buffers>
  static Buffer first_buffer(const Buffers& buffers) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      Buffer b(*it);
      if (b.size() > 0) return b;
    }
    return Buffer();
  }

  static error_code to_error(int ssl_error) {
    if (ssl_error == SSL_ERROR_ZERO_RETURN) return boost::asio::error::eof;
    if (ssl_error == SSL_ERROR_SYSCALL) {
      int e = errno;
      if (ERR_peek_error() == 0 && e == 0) return boost::asio::ssl::error::stream_truncated;
      if (e != 0) return error_code(e, boost::system::system_category());
    }
    unsigned long code = ERR_get_error();
    ERR_clear_error();
    if (code == 0) return boost::asio::ssl::error::unspecified_system_error;
    return error_code(static_cast<int>(code), boost::asio::error::get_ssl_category());
  }

  // Runs `call` until it succeeds or fails, waiting for the socket as
  // OpenSSL asks. Completion always goes through the executor, never inline.
  template <class Call, class Handler>
  void run_op(Call call, Handler&& handler, bool yields_bytes, bool empty = false) {
    auto ex = socket_.get_executor();
    if (!ssl_) {
      boost::asio::post(ex, [h = std::forward<Handler>(handler)]() mutable {
        complete(h, boost::asio::error::no_memory, 0);
      });
      return;
    }
    if (empty && yields_bytes) {
      boost::asio::post(ex, [h = std::forward<Handler>(handler)]() mutable { complete(h, {}, 0); });
      return;
    }
    step(std::move(call), std::forward<Handler>(handler));
  }

  template <class Call, class Handler>
  void step(Call call, Handler&& handler) {
    std::size_t n = 0;
    clear_stale_errors();
    errno = 0;
    int r = call(ssl_, n);
    if (r == 1) {
      boost::asio::post(socket_.get_executor(),
                        [h = std::forward<Handler>(handler), n]() mutable { complete(h, {}, n); });
      return;
    }
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      auto what = err == SSL_ERROR_WANT_READ ? tcp::socket::wait_read : tcp::socket::wait_write;
      socket_.async_wait(what, [this, call = std::move(call),
                                h = std::forward<Handler>(handler)](error_code ec) mutable {
        if (ec) return complete(h, ec, 0);
        step(std::move(call), std::move(h));
      });
      return;
    }
    error_code ec = to_error(err);
    boost::asio::post(socket_.get_executor(),
                      [h = std::forward<Handler>(handler), ec]() mutable { complete(h, ec, 0); });
  }

  // Handshake handlers take (ec); I/O handlers (ec, n).
  template <class Handler>
  static void complete(Handler& h, error_code ec, std::size_t n) {
    if constexpr (std::is_invocable_v<Handler&, error_code, std::size_t>)
      h(ec, n);
    else
      h(ec);
  }

  tcp::socket socket_;
  SSL* ssl_;
  bool socket_drained_ = false;
  std::size_t last_socket_read_ = 0;
};

}  // namespace wsgate::proxy
