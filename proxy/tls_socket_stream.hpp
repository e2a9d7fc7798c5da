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
// An Asio stream (AsyncReadStream, AsyncWriteStream): the asynchronous
// operations take any completion token, keep the handler's associated
// executor, allocator and cancellation slot, and never complete inside the
// initiating call. Like asio::ssl::stream, operations of one stream must not
// run concurrently: one thread or one strand, where a read and a write may be
// in flight together (OpenSSL allows interleaving them on one thread).
//
// The socket, the SSL object and the read watch live in a heap-held core
// that the stream and each pending operation share. Moving the stream moves
// only the pointer, so an operation pending across a move follows the
// stream; destroying the stream closes the socket, and a pending operation
// then completes with operation_aborted without touching freed memory.
// Shared, not owned by the stream alone: an operation whose wait completed
// may still be queued when its stream goes away. The cost is one allocation
// per stream and a reference count per asynchronous operation; the tunnel's
// hot path (try_read_some, try_write_some, socket().async_wait) pays neither.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <cerrno>
#include <cstddef>
#include <memory>
#include <utility>

#include "proxy/worker_socket.hpp"

namespace wsgate::proxy {

class TlsSocketStream {
 public:
  using error_code = boost::system::error_code;
  using next_layer_type = WorkerSocket;
  using lowest_layer_type = next_layer_type::lowest_layer_type;
  using executor_type = next_layer_type::executor_type;
  using native_handle_type = SSL*;

  // SSL_new failing (out of memory) leaves native_handle() null; every
  // operation then completes with error::no_memory.
  TlsSocketStream(WorkerSocket socket, SSL_CTX* ctx)
      : core_(std::make_shared<Core>(std::move(socket), ctx)) {}
  // A moved-from stream may only be destroyed or assigned to.
  TlsSocketStream(TlsSocketStream&&) noexcept = default;
  TlsSocketStream& operator=(TlsSocketStream&& other) noexcept {
    if (this != &other) {
      close_core();
      core_ = std::move(other.core_);
    }
    return *this;
  }
  TlsSocketStream(const TlsSocketStream&) = delete;
  TlsSocketStream& operator=(const TlsSocketStream&) = delete;
  ~TlsSocketStream() { close_core(); }

  executor_type get_executor() noexcept { return core_->socket.get_executor(); }
  next_layer_type& next_layer() noexcept { return core_->socket; }
  const next_layer_type& next_layer() const noexcept { return core_->socket; }
  lowest_layer_type& lowest_layer() noexcept { return core_->socket.lowest_layer(); }
  const lowest_layer_type& lowest_layer() const noexcept { return core_->socket.lowest_layer(); }
  // The TCP socket; the relay waits on it directly.
  WorkerSocket& socket() noexcept { return core_->socket; }
  native_handle_type native_handle() noexcept { return core_->ssl; }

  // Decrypted or buffered bytes that a read returns without the socket.
  bool has_pending() const { return core_->ssl && SSL_has_pending(core_->ssl) == 1; }
  // The last read() OpenSSL made on the socket came back short (or with
  // nothing): the socket was empty then. With nothing pending either, the
  // next read would only find EAGAIN.
  bool socket_drained() const { return core_->socket_drained; }
  // Bytes that last read() returned (0 for EAGAIN or EOF).
  std::size_t last_socket_read() const { return core_->last_socket_read; }

  // The server side of the handshake. Completes with void(error_code).
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(error_code))
                HandshakeToken BOOST_ASIO_DEFAULT_COMPLETION_TOKEN_TYPE(executor_type)>
  auto async_handshake(HandshakeToken&& token BOOST_ASIO_DEFAULT_COMPLETION_TOKEN(executor_type)) {
    return boost::asio::async_compose<HandshakeToken, void(error_code)>(
        Op<Kind::handshake, boost::asio::mutable_buffer>(core_, {}), token, core_->socket);
  }

  // Reads into the first non-empty buffer of the sequence; an empty one
  // completes with 0 bytes. Completes with void(error_code, std::size_t).
  template <class MutableBuffers,
            BOOST_ASIO_COMPLETION_TOKEN_FOR(void(error_code, std::size_t))
                ReadToken BOOST_ASIO_DEFAULT_COMPLETION_TOKEN_TYPE(executor_type)>
  auto async_read_some(const MutableBuffers& buffers,
                       ReadToken&& token BOOST_ASIO_DEFAULT_COMPLETION_TOKEN(executor_type)) {
    return boost::asio::async_compose<ReadToken, void(error_code, std::size_t)>(
        Op<Kind::read, boost::asio::mutable_buffer>(
            core_, first_buffer<boost::asio::mutable_buffer>(buffers)),
        token, core_->socket);
  }

  // Writes from the first non-empty buffer (partial writes are on).
  template <class ConstBuffers,
            BOOST_ASIO_COMPLETION_TOKEN_FOR(void(error_code, std::size_t))
                WriteToken BOOST_ASIO_DEFAULT_COMPLETION_TOKEN_TYPE(executor_type)>
  auto async_write_some(const ConstBuffers& buffers,
                        WriteToken&& token BOOST_ASIO_DEFAULT_COMPLETION_TOKEN(executor_type)) {
    return boost::asio::async_compose<WriteToken, void(error_code, std::size_t)>(
        Op<Kind::write, boost::asio::const_buffer>(
            core_, first_buffer<boost::asio::const_buffer>(buffers)),
        token, core_->socket);
  }

  // One read attempt now. would_block: wait for readability; in_progress:
  // OpenSSL must write first (use async_read_some).
  std::size_t try_read_some(boost::asio::mutable_buffer b, error_code& ec) {
    return core_->attempt<Kind::read>(b, SSL_ERROR_WANT_READ, ec);
  }

  // One write attempt now. would_block: the socket is full; in_progress:
  // OpenSSL must read first. Either way nothing was taken, and
  // async_write_some picks up the same bytes.
  std::size_t try_write_some(boost::asio::const_buffer b, error_code& ec) {
    return core_->attempt<Kind::write>(b, SSL_ERROR_WANT_WRITE, ec);
  }

 private:
  enum class Kind { handshake, read, write };

  // Not movable: OpenSSL's BIO callback holds its address.
  struct Core {
    Core(WorkerSocket s, SSL_CTX* ctx) : socket(std::move(s)), ssl(SSL_new(ctx)) {
      error_code ignored;
      socket.non_blocking(true, ignored);
      if (!ssl) return;
      SSL_set_fd(ssl, static_cast<int>(socket.native_handle()));
      SSL_set_accept_state(ssl);
      SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
      // Read ahead: one read() takes whatever records are there instead of
      // a 5-byte header read and then the body (3 -> 2 reads per small
      // message, +5 % round trips at wss 64 B). SSL_has_pending() counts
      // the read-ahead bytes, so the relay still knows when to wait.
      SSL_set_read_ahead(ssl, 1);
      if (BIO* rbio = SSL_get_rbio(ssl)) {
        BIO_set_callback_arg(rbio, reinterpret_cast<char*>(this));
        BIO_set_callback_ex(rbio, &Core::on_bio);
      }
    }
    Core(const Core&) = delete;
    Core& operator=(const Core&) = delete;
    ~Core() {
      if (ssl) SSL_free(ssl);
    }

    // One SSL call. 1: done, n set; otherwise `err` holds SSL_get_error.
    template <Kind K, class Buffer>
    int call(Buffer b, std::size_t& n, int& err) {
      clear_stale_errors();
      errno = 0;  // SSL_ERROR_SYSCALL with errno 0 is a truncated stream (to_error)
      int r;
      if constexpr (K == Kind::handshake) {
        (void)b;
        n = 0;
        r = SSL_do_handshake(ssl);
      } else if constexpr (K == Kind::read) {
        r = SSL_read_ex(ssl, b.data(), b.size(), &n);
      } else {
        r = SSL_write_ex(ssl, b.data(), b.size(), &n);
      }
      if (r != 1) err = SSL_get_error(ssl, r);
      return r;
    }

    // `call` once. OpenSSL asking for the call's own direction is
    // would_block, for the other one in_progress.
    template <Kind K, class Buffer>
    std::size_t attempt(Buffer b, int own_want, error_code& ec) {
      std::size_t n = 0;
      int err = 0;
      if (call<K>(b, n, err) == 1) {
        ec = {};
        return n;
      }
      if (err == own_want)
        ec = boost::asio::error::would_block;
      else if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        ec = boost::asio::error::in_progress;
      else
        ec = to_error(err);
      return 0;
    }

    static long on_bio(BIO* b, int oper, const char*, std::size_t len, int, long, int ret,
                       std::size_t* processed) {
      if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
        auto* self = reinterpret_cast<Core*>(BIO_get_callback_arg(b));
        self->last_socket_read = ret > 0 && processed ? *processed : 0;
        self->socket_drained = self->last_socket_read < len;
      }
      return ret;
    }

    WorkerSocket socket;
    SSL* ssl;
    bool socket_drained = false;
    std::size_t last_socket_read = 0;
  };

  // The composed operation: SSL call, and while OpenSSL wants the socket,
  // wait for it and call again. Its state (the shared core, the buffer, the
  // result) travels inside each wait, which Asio allocates with the
  // handler's associated allocator (recycled per thread by default): no
  // allocation of its own per read or write.
  template <Kind K, class Buffer>
  class Op {
   public:
    Op(std::shared_ptr<Core> core, Buffer b) : core_(std::move(core)), buffer_(b) {}

    // The empty read's completion (see post_result).
    template <class Self>
    void operator()(Self& self, error_code ec, std::size_t) {
      (*this)(self, ec);
    }

    template <class Self>
    void operator()(Self& self, error_code ec = {}) {
      switch (state_) {
        case State::starting:
          // Results found here are posted: completing inside the initiating
          // call would run the handler before its caller is ready for it.
          if (!core_->ssl) return post_result(self, boost::asio::error::no_memory);
          // A deferred operation launched after its stream was destroyed:
          // OpenSSL still holds the descriptor's old number.
          if (!core_->socket.is_open())
            return post_result(self, boost::asio::error::bad_descriptor);
          if (K != Kind::handshake && buffer_.size() == 0) return post_result(self, {});
          break;
        case State::waiting:
          if (ec) return finish(self, ec);
          // Stream destroyed while this wait's completion was queued: the
          // descriptor may already belong to someone else.
          if (!core_->socket.is_open()) return finish(self, boost::asio::error::operation_aborted);
          break;
        case State::posted:
          return finish(self, result_ec_);  // the empty read's own result says nothing
      }
      int err = 0;
      if (core_->template call<K>(buffer_, n_, err) == 1) {
        if (state_ == State::starting) return post_result(self, {});
        return finish(self, {});
      }
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        state_ = State::waiting;
        WorkerSocket& s = core_->socket;
        s.async_wait(
            err == SSL_ERROR_WANT_READ ? WorkerSocket::wait_read : WorkerSocket::wait_write,
            std::move(self));
        return;
      }
      n_ = 0;
      if (state_ == State::starting) return post_result(self, to_error(err));
      finish(self, to_error(err));
    }

   private:
    enum class State : unsigned char { starting, waiting, posted };

    // Through an empty read, as asio::ssl::stream does: on a stream socket
    // it completes at once without a system call, and, unlike a post
    // through the type-erased executor (which drops the allocator
    // property), its memory comes from the handler's allocator; the
    // completion reaches the handler's executor the usual way.
    template <class Self>
    void post_result(Self& self, error_code ec) {
      state_ = State::posted;
      result_ec_ = ec;
      WorkerSocket& s = core_->socket;
      s.async_read_some(boost::asio::mutable_buffer(), std::move(self));
    }

    template <class Self>
    void finish(Self& self, error_code ec) {
      if constexpr (K == Kind::handshake)
        self.complete(ec);
      else
        self.complete(ec, ec ? 0 : n_);
    }

    std::shared_ptr<Core> core_;
    Buffer buffer_;
    std::size_t n_ = 0;
    error_code result_ec_;
    State state_ = State::starting;
  };

  // SSL_get_error reads this thread's error queue, so it must be empty
  // before each call. It nearly always is already, and ERR_clear_error
  // walks all of its slots regardless (OpenSSL 3): only clear a queue
  // that holds something.
  static void clear_stale_errors() {
    if (ERR_peek_error() != 0) ERR_clear_error();
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
#if defined(SSL_R_UNEXPECTED_EOF_WHILE_READING)
    // OpenSSL 3 reports a TCP end without close_notify this way; Asio's own
    // ssl::stream calls it stream_truncated, and so does the relay.
    if (ERR_GET_LIB(code) == ERR_LIB_SSL &&
        ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
      return boost::asio::ssl::error::stream_truncated;
#endif
    return error_code(static_cast<int>(code), boost::asio::error::get_ssl_category());
  }

  // Pending operations hold the core: closing the socket ends their waits.
  void close_core() noexcept {
    if (!core_) return;
    error_code ignored;
    core_->socket.close(ignored);
    core_.reset();
  }

  std::shared_ptr<Core> core_;
};

}  // namespace wsgate::proxy
