// TlsSocketStream as an Asio stream: a real TLS session over a loopback TCP
// pair, the server side ours, the client side asio::ssl::stream.
#include "proxy/tls_socket_stream.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <atomic>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/stream_traits.hpp>
#if defined(BOOST_ASIO_HAS_CO_AWAIT)
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#endif
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/tls.hpp"

// Heap allocations made through operator new on this thread: the steady
// state of a read/write loop must make none (Asio recycles its operation
// memory per thread).
namespace {
thread_local std::size_t t_news = 0;
}
void* operator new(std::size_t n) {
  ++t_news;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using boost::system::error_code;
using wsgate::proxy::TlsSocketStream;
using namespace std::chrono_literals;

// A self-signed P-256 certificate written as PEM files once per run, so the
// server uses the listener's own context (tls::make_server_context).
struct CertFiles {
  std::string cert, key;
  CertFiles() {
    auto dir = std::filesystem::path(::testing::TempDir()) /
               ("tls_socket_stream_test." + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    cert = (dir / "cert.pem").string();
    key = (dir / "key.pem").string();
    EVP_PKEY* pkey = EVP_EC_gen("P-256");
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_sign(x, pkey, EVP_sha256());
    FILE* f = std::fopen(cert.c_str(), "w");
    PEM_write_X509(f, x);
    std::fclose(f);
    f = std::fopen(key.c_str(), "w");
    PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
  }
  ~CertFiles() { std::filesystem::remove_all(std::filesystem::path(cert).parent_path()); }
};

const CertFiles& cert_files() {
  static CertFiles files;
  return files;
}

// Counts what goes through it; shared counts survive rebinding.
struct Counts {
  std::atomic<int> allocs{0}, deallocs{0};
};
template <class T>
struct CountingAllocator {
  using value_type = T;
  Counts* counts;
  explicit CountingAllocator(Counts* c) : counts(c) {}
  template <class U>
  CountingAllocator(const CountingAllocator<U>& o) : counts(o.counts) {}
  T* allocate(std::size_t n) {
    ++counts->allocs;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) {
    ++counts->deallocs;
    std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const CountingAllocator<U>& o) const {
    return counts == o.counts;
  }
  template <class U>
  bool operator!=(const CountingAllocator<U>& o) const {
    return counts != o.counts;
  }
};

class TlsSocketStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ctx_ = wsgate::tls::make_server_context({cert_files().cert, cert_files().key});
    client_ctx_.set_verify_mode(ssl::verify_none);
    tcp::acceptor acceptor(ioc_, {net::ip::address_v4::loopback(), 0});
    tcp::socket c(ioc_);
    c.connect(acceptor.local_endpoint());
    wsgate::proxy::WorkerSocket s(ioc_);
    acceptor.accept(s);
    client_.emplace(std::move(c), client_ctx_);
    server_.emplace(std::move(s), server_ctx_->native_handle());
  }

  // Runs ioc_ until `done` holds, for at most 10 s.
  template <class Pred>
  bool run_until(Pred done) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      ioc_.restart();
      ioc_.run_one_for(50ms);
    }
    return true;
  }

  void handshake() {
    std::optional<error_code> cec, sec;
    client_->async_handshake(ssl::stream_base::client, [&](error_code ec) { cec = ec; });
    server_->async_handshake([&](error_code ec) { sec = ec; });
    ASSERT_TRUE(run_until([&] { return cec && sec; }));
    ASSERT_FALSE(*cec) << cec->message();
    ASSERT_FALSE(*sec) << sec->message();
  }

  void client_write(const std::string& s) {
    bool done = false;
    net::async_write(*client_, net::buffer(s), [&](error_code ec, std::size_t) {
      EXPECT_FALSE(ec) << ec.message();
      done = true;
    });
    ASSERT_TRUE(run_until([&] { return done; }));
  }

  std::string client_read(std::size_t n) {
    std::string got(n, '\0');
    bool done = false;
    net::async_read(*client_, net::buffer(got), [&](error_code ec, std::size_t) {
      EXPECT_FALSE(ec) << ec.message();
      done = true;
    });
    EXPECT_TRUE(run_until([&] { return done; }));
    return got;
  }

  // Reads `want` bytes the way the relay does: try_read_some, and on
  // would_block wait for readability. Notes whether OpenSSL still held
  // bytes after a read that did not finish.
  std::string read_with_try(TlsSocketStream& s, std::size_t want, std::size_t chunk,
                            bool* saw_pending) {
    std::vector<char> buf(chunk);
    std::string out;
    while (out.size() < want) {
      error_code ec;
      std::size_t n = s.try_read_some(net::buffer(buf), ec);
      if (ec == net::error::would_block) {
        bool ready = false;
        s.socket().async_wait(tcp::socket::wait_read, [&](error_code) { ready = true; });
        if (!run_until([&] { return ready; })) break;
        continue;
      }
      if (ec) {
        ADD_FAILURE() << ec.message();
        break;
      }
      out.append(buf.data(), n);
      if (out.size() < want && s.has_pending()) *saw_pending = true;
    }
    return out;
  }

  net::io_context ioc_;
  std::shared_ptr<ssl::context> server_ctx_;
  ssl::context client_ctx_{ssl::context::tls_client};
  std::optional<ssl::stream<tcp::socket>> client_;
  std::optional<TlsSocketStream> server_;
};

TEST_F(TlsSocketStreamTest, MeetsAsioStreamRequirements) {
  static_assert(boost::beast::is_async_stream<TlsSocketStream>::value);
  using wsgate::proxy::WorkerSocket;
  static_assert(std::is_same_v<TlsSocketStream::executor_type, net::io_context::executor_type>);
  static_assert(std::is_same_v<TlsSocketStream::next_layer_type, WorkerSocket>);
  static_assert(
      std::is_same_v<decltype(server_->lowest_layer()), WorkerSocket::lowest_layer_type&>);
  EXPECT_TRUE(server_->get_executor() == ioc_.get_executor());
  EXPECT_EQ(&server_->next_layer(), &server_->socket());
  EXPECT_EQ(server_->lowest_layer().native_handle(), server_->socket().native_handle());
}

TEST_F(TlsSocketStreamTest, HandshakeAndRoundTripWithCallbacks) {
  handshake();
  client_write("hello");
  char buf[64];
  std::optional<std::size_t> got;
  server_->async_read_some(net::buffer(buf), [&](error_code ec, std::size_t n) {
    EXPECT_FALSE(ec) << ec.message();
    got = n;
  });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  EXPECT_EQ(std::string(buf, *got), "hello");

  std::optional<std::size_t> wrote;
  server_->async_write_some(net::buffer(std::string_view("world")),
                            [&](error_code ec, std::size_t n) {
                              EXPECT_FALSE(ec) << ec.message();
                              wrote = n;
                            });
  ASSERT_TRUE(run_until([&] { return wrote.has_value(); }));
  EXPECT_EQ(*wrote, 5u);
  EXPECT_EQ(client_read(5), "world");
}

TEST_F(TlsSocketStreamTest, WorksWithAsioComposedOperations) {
  handshake();
  const std::string big(100000, 'x');
  std::optional<std::size_t> wrote;
  net::async_write(*server_, net::buffer(big), [&](error_code ec, std::size_t n) {
    EXPECT_FALSE(ec) << ec.message();
    wrote = n;
  });
  EXPECT_EQ(client_read(big.size()), big);
  ASSERT_TRUE(run_until([&] { return wrote.has_value(); }));
  EXPECT_EQ(*wrote, big.size());

  client_write(big);
  std::string back(big.size(), '\0');
  std::optional<std::size_t> read;
  net::async_read(*server_, net::buffer(back), [&](error_code ec, std::size_t n) {
    EXPECT_FALSE(ec) << ec.message();
    read = n;
  });
  ASSERT_TRUE(run_until([&] { return read.has_value(); }));
  EXPECT_EQ(back, big);
}

TEST_F(TlsSocketStreamTest, UseFutureWithIoContextOnAnotherThread) {
  auto work = net::make_work_guard(ioc_);
  std::thread io([&] { ioc_.run(); });
  std::future<void> server_hs = server_->async_handshake(net::use_future);
  std::future<void> client_hs = client_->async_handshake(ssl::stream_base::client, net::use_future);
  ASSERT_EQ(server_hs.wait_for(10s), std::future_status::ready);
  ASSERT_EQ(client_hs.wait_for(10s), std::future_status::ready);
  EXPECT_NO_THROW(server_hs.get());
  EXPECT_NO_THROW(client_hs.get());

  char buf[64];
  std::future<std::size_t> read = server_->async_read_some(net::buffer(buf), net::use_future);
  std::future<std::size_t> wrote =
      net::async_write(*client_, net::buffer(std::string_view("ping")), net::use_future);
  ASSERT_EQ(read.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(std::string(buf, read.get()), "ping");
  EXPECT_EQ(wrote.get(), 4u);

  std::future<std::size_t> echo =
      server_->async_write_some(net::buffer(std::string_view("pong")), net::use_future);
  ASSERT_EQ(echo.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(echo.get(), 4u);
  // use_future completes on the system executor; run() returns once those
  // threads have let go of the operations' work on ioc_.
  work.reset();
  io.join();
}

TEST_F(TlsSocketStreamTest, DeferredStartsOnlyWhenLaunched) {
  auto hs = server_->async_handshake(net::deferred);
  std::optional<error_code> cec, sec;
  client_->async_handshake(ssl::stream_base::client, [&](error_code ec) { cec = ec; });
  // Not launched: the client's hello gets no answer.
  ioc_.restart();
  ioc_.run_for(100ms);
  EXPECT_FALSE(cec.has_value());
  std::move(hs)([&](error_code ec) { sec = ec; });
  ASSERT_TRUE(run_until([&] { return cec && sec; }));
  EXPECT_FALSE(*sec);
  EXPECT_FALSE(*cec);

  char buf[16];
  auto read = server_->async_read_some(net::buffer(buf), net::deferred);
  client_write("deferred");
  std::optional<std::size_t> got;
  std::move(read)([&](error_code ec, std::size_t n) {
    EXPECT_FALSE(ec);
    got = n;
  });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  EXPECT_EQ(std::string(buf, *got), "deferred");
}

#if defined(BOOST_ASIO_HAS_CO_AWAIT)
TEST_F(TlsSocketStreamTest, UseAwaitable) {
  std::string got;
  bool done = false;
  net::co_spawn(
      ioc_,
      [&]() -> net::awaitable<void> {
        co_await server_->async_handshake(net::use_awaitable);
        char buf[16];
        std::size_t n = co_await server_->async_read_some(net::buffer(buf), net::use_awaitable);
        got.assign(buf, n);
        co_await server_->async_write_some(net::buffer(buf, n), net::use_awaitable);
        done = true;
      },
      net::detached);
  std::optional<error_code> cec;
  client_->async_handshake(ssl::stream_base::client, [&](error_code ec) { cec = ec; });
  ASSERT_TRUE(run_until([&] { return cec.has_value(); }));
  client_write("coro");
  EXPECT_EQ(client_read(4), "coro");
  ASSERT_TRUE(run_until([&] { return done; }));
  EXPECT_EQ(got, "coro");
}
#endif

TEST_F(TlsSocketStreamTest, HandlerBoundToStrandCompletesOnIt) {
  auto strand = net::make_strand(ioc_);
  std::optional<bool> hs_on_strand, read_on_strand, write_on_strand;
  std::optional<error_code> cec;
  client_->async_handshake(ssl::stream_base::client, [&](error_code ec) { cec = ec; });
  server_->async_handshake(net::bind_executor(
      strand, [&](error_code) { hs_on_strand = strand.running_in_this_thread(); }));
  ASSERT_TRUE(run_until([&] { return cec && hs_on_strand; }));
  EXPECT_TRUE(*hs_on_strand);

  char buf[16];
  server_->async_read_some(net::buffer(buf),
                           net::bind_executor(strand, [&](error_code, std::size_t) {
                             read_on_strand = strand.running_in_this_thread();
                           }));
  client_write("x");
  ASSERT_TRUE(run_until([&] { return read_on_strand.has_value(); }));
  EXPECT_TRUE(*read_on_strand);

  // Completes at its first attempt: the posted completion keeps the strand.
  server_->async_write_some(net::buffer(buf, 1),
                            net::bind_executor(strand, [&](error_code, std::size_t) {
                              write_on_strand = strand.running_in_this_thread();
                            }));
  ASSERT_TRUE(run_until([&] { return write_on_strand.has_value(); }));
  EXPECT_TRUE(*write_on_strand);
}

TEST_F(TlsSocketStreamTest, HandlerBoundToAnotherIoContextCompletesThere) {
  handshake();
  net::io_context other;
  auto work = net::make_work_guard(other);
  std::thread other_thread([&] { other.run(); });
  auto other_ex = other.get_executor();

  char buf[16];
  std::atomic<int> read_there{-1}, write_there{-1};
  server_->async_read_some(net::buffer(buf),
                           net::bind_executor(other_ex, [&](error_code ec, std::size_t) {
                             EXPECT_FALSE(ec);
                             read_there = other_ex.running_in_this_thread() ? 1 : 0;
                           }));
  client_write("y");
  ASSERT_TRUE(run_until([&] { return read_there >= 0; }));
  EXPECT_EQ(read_there, 1);

  server_->async_write_some(net::buffer(buf, 1),
                            net::bind_executor(other_ex, [&](error_code ec, std::size_t) {
                              EXPECT_FALSE(ec);
                              write_there = other_ex.running_in_this_thread() ? 1 : 0;
                            }));
  ASSERT_TRUE(run_until([&] { return write_there >= 0; }));
  EXPECT_EQ(write_there, 1);
  work.reset();
  other_thread.join();
}

TEST_F(TlsSocketStreamTest, HandlerAllocatorHoldsTheOperationState) {
  handshake();
  Counts counts;
  char buf[16];
  std::optional<std::size_t> got;
  // Waits for the socket first.
  server_->async_read_some(net::buffer(buf),
                           net::bind_allocator(CountingAllocator<void>(&counts),
                                               [&](error_code, std::size_t n) { got = n; }));
  client_write("z");
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  EXPECT_GE(counts.allocs, 1);
  EXPECT_EQ(counts.allocs, counts.deallocs);

  // Completes at its first attempt, so its completion is posted.
  const int before = counts.allocs;
  std::optional<std::size_t> wrote;
  server_->async_write_some(net::buffer(buf, 1),
                            net::bind_allocator(CountingAllocator<void>(&counts),
                                                [&](error_code, std::size_t n) { wrote = n; }));
  ASSERT_TRUE(run_until([&] { return wrote.has_value(); }));
  EXPECT_GT(counts.allocs, before);
  EXPECT_EQ(counts.allocs, counts.deallocs);
}

TEST_F(TlsSocketStreamTest, NeverCompletesInsideTheInitiatingCall) {
  handshake();
  char buf[16];
  bool returned = false;
  std::optional<bool> write_saw, empty_saw, pending_saw;
  // A write the socket takes at once.
  server_->async_write_some(net::buffer(std::string_view("abc")),
                            [&](error_code, std::size_t) { write_saw = returned; });
  // An empty read.
  server_->async_read_some(net::mutable_buffer(),
                           [&](error_code, std::size_t) { empty_saw = returned; });
  returned = true;
  ASSERT_TRUE(run_until([&] { return write_saw && empty_saw; }));
  EXPECT_TRUE(*write_saw);
  EXPECT_TRUE(*empty_saw);

  // A read OpenSSL serves from what it holds already.
  client_write(std::string(1000, 'p'));
  std::optional<std::size_t> first;
  server_->async_read_some(net::buffer(buf), [&](error_code, std::size_t n) { first = n; });
  ASSERT_TRUE(run_until([&] { return first.has_value(); }));
  ASSERT_TRUE(server_->has_pending());
  returned = false;
  server_->async_read_some(net::buffer(buf),
                           [&](error_code, std::size_t) { pending_saw = returned; });
  returned = true;
  ASSERT_TRUE(run_until([&] { return pending_saw.has_value(); }));
  EXPECT_TRUE(*pending_saw);
}

TEST_F(TlsSocketStreamTest, EmptyReadAndWriteCompleteWithZero) {
  handshake();
  std::optional<std::pair<error_code, std::size_t>> r, w;
  server_->async_read_some(net::mutable_buffer(),
                           [&](error_code ec, std::size_t n) { r.emplace(ec, n); });
  server_->async_write_some(net::const_buffer(),
                            [&](error_code ec, std::size_t n) { w.emplace(ec, n); });
  ASSERT_TRUE(run_until([&] { return r && w; }));
  EXPECT_FALSE(r->first);
  EXPECT_EQ(r->second, 0u);
  EXPECT_FALSE(w->first);
  EXPECT_EQ(w->second, 0u);
}

TEST_F(TlsSocketStreamTest, CloseNotifyReadsAsEof) {
  handshake();
  client_->async_shutdown([](error_code) {});  // waits for our close_notify, never sent
  char buf[16];
  std::optional<error_code> got;
  server_->async_read_some(net::buffer(buf), [&](error_code ec, std::size_t) { got = ec; });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  EXPECT_EQ(*got, net::error::eof) << got->message();
  error_code again;
  server_->try_read_some(net::buffer(buf), again);
  EXPECT_EQ(again, net::error::eof) << again.message();
}

TEST_F(TlsSocketStreamTest, TcpEndWithoutCloseNotifyIsStreamTruncated) {
  handshake();
  client_->next_layer().shutdown(tcp::socket::shutdown_send);
  char buf[16];
  std::optional<error_code> got;
  server_->async_read_some(net::buffer(buf), [&](error_code ec, std::size_t) { got = ec; });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  EXPECT_EQ(*got, ssl::error::stream_truncated) << got->message();
}

TEST_F(TlsSocketStreamTest, TcpResetIsTheErrno) {
  handshake();
  client_->next_layer().set_option(tcp::socket::linger(true, 0));
  client_->next_layer().close();
  char buf[16];
  std::optional<error_code> got;
  server_->async_read_some(net::buffer(buf), [&](error_code ec, std::size_t) { got = ec; });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  EXPECT_EQ(*got, net::error::connection_reset) << got->message();
}

TEST_F(TlsSocketStreamTest, TryReadOnEmptySocketWouldBlock) {
  handshake();
  char buf[16];
  error_code ec;
  EXPECT_EQ(server_->try_read_some(net::buffer(buf), ec), 0u);
  EXPECT_EQ(ec, net::error::would_block);
  EXPECT_FALSE(server_->has_pending());
  EXPECT_TRUE(server_->socket_drained());
  EXPECT_EQ(server_->last_socket_read(), 0u);
}

TEST_F(TlsSocketStreamTest, LargeRecordIntoSmallBufferLeavesPending) {
  handshake();
  const std::string record(8000, 'r');  // one TLS record
  client_write(record);
  bool saw_pending = false;
  EXPECT_EQ(read_with_try(*server_, record.size(), 100, &saw_pending), record);
  EXPECT_TRUE(saw_pending);
  EXPECT_FALSE(server_->has_pending());
  EXPECT_GT(server_->last_socket_read(), 0u);
}

TEST_F(TlsSocketStreamTest, MovedStreamKeepsWorking) {
  handshake();
  TlsSocketStream moved(std::move(*server_));
  server_.reset();
  client_write("after move");
  bool saw_pending = false;
  EXPECT_EQ(read_with_try(moved, 10, 64, &saw_pending), "after move");
  // The read watch follows the stream.
  EXPECT_GT(moved.last_socket_read(), 0u);
  EXPECT_TRUE(moved.socket_drained());

  // Move assignment too; the stream assigned over is closed.
  wsgate::proxy::WorkerSocket spare(ioc_, tcp::v4());
  TlsSocketStream target(std::move(spare), server_ctx_->native_handle());
  target = std::move(moved);
  std::optional<std::size_t> wrote;
  target.async_write_some(net::buffer(std::string_view("back")), [&](error_code ec, std::size_t n) {
    EXPECT_FALSE(ec);
    wrote = n;
  });
  ASSERT_TRUE(run_until([&] { return wrote.has_value(); }));
  EXPECT_EQ(client_read(4), "back");
}

// An operation pending across a move follows the stream: the state it
// touches lives in the core the stream points to.
TEST_F(TlsSocketStreamTest, PendingReadFollowsAMove) {
  handshake();
  char buf[32];
  std::optional<std::pair<error_code, std::size_t>> got;
  server_->async_read_some(net::buffer(buf),
                           [&](error_code ec, std::size_t n) { got.emplace(ec, n); });
  ioc_.restart();
  ioc_.poll();  // the read now waits for the socket
  ASSERT_FALSE(got.has_value());
  auto moved = std::make_unique<TlsSocketStream>(std::move(*server_));
  server_.reset();
  client_write("pending");
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  EXPECT_FALSE(got->first) << got->first.message();
  EXPECT_EQ(std::string(buf, got->second), "pending");
  EXPECT_GT(moved->last_socket_read(), 0u);
}

TEST_F(TlsSocketStreamTest, DestroyedWithReadPendingAborts) {
  handshake();
  char buf[32];
  std::optional<error_code> got;
  server_->async_read_some(net::buffer(buf), [&](error_code ec, std::size_t) { got = ec; });
  ioc_.restart();
  ioc_.poll();
  server_.reset();
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  EXPECT_EQ(*got, net::error::operation_aborted);
}

// OpenSSL keeps the descriptor's number after the socket is closed; an
// operation started then must not read whichever socket took that number.
TEST_F(TlsSocketStreamTest, DeferredLaunchedAfterDestructionFails) {
  handshake();
  char buf[16];
  auto read = server_->async_read_some(net::buffer(buf), net::deferred);
  const int old_fd = server_->socket().native_handle();
  tcp::acceptor acceptor(ioc_, {net::ip::address_v4::loopback(), 0});
  server_.reset();
  // Open sockets until one takes the freed number (the lowest free one
  // goes first), then give it a peer with bytes waiting.
  std::vector<tcp::socket> opened;
  while (opened.size() < 32 && (opened.empty() || opened.back().native_handle() != old_fd))
    opened.emplace_back(ioc_, tcp::v4());
  ASSERT_EQ(opened.back().native_handle(), old_fd);
  tcp::socket& reused = opened.back();
  reused.connect(acceptor.local_endpoint());
  tcp::socket peer = acceptor.accept();
  net::write(peer, net::buffer(std::string_view("not yours")));
  ASSERT_TRUE(run_until([&] { return reused.available() == 9; }));

  std::optional<error_code> got;
  std::move(read)([&](error_code ec, std::size_t) { got = ec; });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  EXPECT_EQ(*got, net::error::bad_descriptor) << got->message();
  EXPECT_EQ(reused.available(), 9u);
}

// Echo loop with plain callbacks: once warm, reads and writes allocate
// nothing (the core is per stream; Asio recycles the operation memory).
TEST_F(TlsSocketStreamTest, SteadyStateReadWriteAllocatesNothing) {
  // The client runs blocking calls on its own thread, so only the server's
  // work counts on this one.
  std::thread client_thread;
  std::atomic<bool> client_ok{true};
  constexpr int kWarm = 10, kMeasured = 100;
  client_thread = std::thread([&] {
    error_code ec;
    client_->handshake(ssl::stream_base::client, ec);
    if (ec) return void(client_ok = false);
    std::string msg(64, 'm'), back(64, '\0');
    for (int i = 0; i < kWarm + kMeasured; ++i) {
      net::write(*client_, net::buffer(msg), ec);
      if (!ec) net::read(*client_, net::buffer(back), ec);
      if (ec || back != msg) return void(client_ok = false);
    }
  });
  std::optional<error_code> hs;
  server_->async_handshake([&](error_code ec) { hs = ec; });
  ASSERT_TRUE(run_until([&] { return hs.has_value(); }));
  ASSERT_FALSE(*hs);

  struct Echo {
    TlsSocketStream& s;
    char buf[64];
    std::size_t have = 0;
    int rounds = 0;
    std::size_t news_at_warm = 0;
    std::size_t news_at_end = 0;
    bool failed = false;
    void read() {
      s.async_read_some(net::buffer(buf + have, sizeof buf - have),
                        [this](error_code ec, std::size_t n) {
                          if (ec) return void(failed = true);
                          have += n;
                          if (have < sizeof buf) return read();
                          write(0);
                        });
    }
    void write(std::size_t off) {
      s.async_write_some(net::buffer(buf + off, sizeof buf - off),
                         [this, off](error_code ec, std::size_t n) {
                           if (ec) return void(failed = true);
                           if (off + n < sizeof buf) return write(off + n);
                           have = 0;
                           if (++rounds == kWarm) news_at_warm = t_news;
                           if (rounds == kWarm + kMeasured) return void(news_at_end = t_news);
                           read();
                         });
    }
  } echo{*server_, {}};
  echo.read();
  ASSERT_TRUE(run_until([&] { return echo.rounds == kWarm + kMeasured || echo.failed; }));
  client_thread.join();
  ASSERT_FALSE(echo.failed);
  ASSERT_TRUE(client_ok);
  EXPECT_EQ(echo.news_at_end - echo.news_at_warm, 0u);
}

}  // namespace
