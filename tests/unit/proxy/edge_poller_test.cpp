#include "proxy/edge_poller.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

using wsgate::proxy::EdgePoller;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

struct CountingWatch : EdgePoller::Watch {
  int* edges = nullptr;
  std::function<void()> then;
  void on_edge() override {
    ++*edges;
    if (then) then();
  }
};

// One accepted TCP connection on 127.0.0.1: `watched` is the proxy's end,
// `peer` the remote that writes to it.
struct Connection {
  tcp::socket watched;
  tcp::socket peer;
  int edges = 0;
  CountingWatch watch;  // destroyed before the sockets close, as in a tunnel

  explicit Connection(net::io_context& ioc) : watched(ioc), peer(ioc) {
    tcp::acceptor acceptor(ioc, {net::ip::make_address("127.0.0.1"), 0});
    peer.connect(acceptor.local_endpoint());
    acceptor.accept(watched);
    watched.non_blocking(true);
    watch.edges = &edges;
  }
  void send(std::string_view s) { net::write(peer, net::buffer(s)); }
  // Reads everything there is now, as a pump does before it parks.
  std::size_t drain() {
    char buf[4096];
    std::size_t total = 0;
    boost::system::error_code ec;
    while (std::size_t n = watched.read_some(net::buffer(buf), ec)) total += n;
    return total;
  }
};

// Watches need the unlocked single-thread io_context main() makes for
// --threads 1.
class EdgePollerTest : public ::testing::Test {
 protected:
  EdgePollerTest() : ioc_(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO), poller_(ioc_) {}

  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 3s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      ioc_.restart();
      ioc_.run_one_for(10ms);
    }
    return done();
  }
  void run_for(std::chrono::milliseconds d) {
    ioc_.restart();
    ioc_.run_for(d);
  }
  void watch(Connection& c) { ASSERT_TRUE(poller_.add(c.watched, c.watch)); }

  net::io_context ioc_;
  EdgePoller poller_;
};

TEST(EdgePollerAvailability, OnlyTheUnlockedOneThreadIoContext) {
  net::io_context unlocked(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO);
  net::io_context one(1);
  net::io_context two(2);
  EXPECT_TRUE(EdgePoller::available(unlocked));
  EXPECT_FALSE(EdgePoller::available(one));
  EXPECT_FALSE(EdgePoller::available(two));
  Connection c(two);
  EdgePoller locked(two);
  EXPECT_FALSE(locked.add(c.watched, c.watch));
  EXPECT_FALSE(c.watch.attached());
}

TEST_F(EdgePollerTest, ParkedWatchWakesOnNewData) {
  Connection c(ioc_);
  watch(c);
  EXPECT_TRUE(c.watch.attached());
  c.watch.clear_edge();
  c.watch.park();
  run_for(50ms);
  EXPECT_EQ(c.edges, 0) << "woken with nothing sent";
  c.send("hello");
  ASSERT_TRUE(run_until([&] { return c.edges > 0; }));
  EXPECT_EQ(c.edges, 1);
  EXPECT_TRUE(c.watch.edge());
  EXPECT_FALSE(c.watch.parked());
  EXPECT_FALSE(c.watch.end_pending());
  EXPECT_EQ(c.drain(), 5u);
}

TEST_F(EdgePollerTest, UnparkedWatchOnlyRecordsTheEdge) {
  Connection c(ioc_);
  watch(c);
  c.watch.clear_edge();
  c.send("x");
  ASSERT_TRUE(run_until([&] { return c.watch.edge(); }));
  EXPECT_EQ(c.edges, 0);
}

TEST_F(EdgePollerTest, EachNewArrivalWakesAgain) {
  Connection c(ioc_);
  watch(c);
  for (int round = 1; round <= 3; ++round) {
    c.drain();
    c.watch.clear_edge();
    c.watch.park();
    c.send("ping");
    ASSERT_TRUE(run_until([&] { return c.edges == round; })) << "round " << round;
  }
  // Everything read, nothing new: parked stays parked.
  c.drain();
  c.watch.clear_edge();
  c.watch.park();
  run_for(100ms);
  EXPECT_EQ(c.edges, 3);
  EXPECT_TRUE(c.watch.parked());
}

// The case Asio's own registration cannot see: the FIN comes with the last
// data, so no edge follows the read that takes the data. Only end_pending
// tells the pump to read once more and find the end.
TEST_F(EdgePollerTest, FinWithTheLastDataSetsEndPending) {
  Connection c(ioc_);
  watch(c);
  c.watch.clear_edge();
  c.watch.park();
  c.send("bye");
  c.peer.shutdown(tcp::socket::shutdown_send);
  ASSERT_TRUE(run_until([&] { return c.watch.end_pending(); }));
  EXPECT_GE(c.edges, 1);
  EXPECT_EQ(c.drain(), 3u);
  boost::system::error_code ec;
  char b[8];
  c.watched.read_some(net::buffer(b), ec);
  EXPECT_EQ(ec, net::error::eof);
}

TEST_F(EdgePollerTest, DetachedWatchIsNotWoken) {
  Connection c(ioc_);
  watch(c);
  c.watch.clear_edge();
  c.watch.park();
  c.watch.detach();
  EXPECT_FALSE(c.watch.attached());
  c.send("late");
  run_for(100ms);
  EXPECT_EQ(c.edges, 0);
}

// Two sessions become readable in one reactor pass and the first one woken
// ends the other (its Watch and socket go away). The second socket's
// operation must not reach the freed Watch: under ASan a miss is a use-after-free, and
// without ASan its on_edge would count.
TEST_F(EdgePollerTest, SessionEndedByAnEarlierWakeIsNotReached) {
  auto a = std::make_unique<Connection>(ioc_);
  auto b = std::make_unique<Connection>(ioc_);
  watch(*a);
  watch(*b);
  int total = 0;
  for (auto* c : {a.get(), b.get()}) {
    c->watch.edges = &total;
    c->watch.clear_edge();
    c->watch.park();
  }
  a->watch.then = [&] { b.reset(); };
  b->watch.then = [&] { a.reset(); };
  a->send("1");
  b->send("2");
  // Both sockets become readable in one reactor pass.
  run_until([&] { return total > 0; });
  run_for(100ms);
  EXPECT_EQ(total, 1);
  EXPECT_NE(a == nullptr, b == nullptr);
}

TEST_F(EdgePollerTest, AddFailsForAClosedSocket) {
  CountingWatch w;
  int edges = 0;
  w.edges = &edges;
  tcp::socket closed(ioc_);
  EXPECT_FALSE(poller_.add(closed, w));
  EXPECT_FALSE(w.attached());
}

// The watch keeps its operation in the socket's read queue; an Asio wait
// queued behind it (the listener's TLS waits so for the rest of a record)
// must still complete when data comes.
TEST_F(EdgePollerTest, AsioReadWaitBehindTheWatchCompletes) {
  Connection c(ioc_);
  watch(c);
  c.drain();
  c.watch.clear_edge();
  bool waited = false;
  c.watched.async_wait(tcp::socket::wait_read, [&](boost::system::error_code ec) {
    EXPECT_FALSE(ec);
    waited = true;
  });
  run_for(50ms);
  EXPECT_FALSE(waited);
  c.send("more");
  ASSERT_TRUE(run_until([&] { return waited; }));
  EXPECT_TRUE(c.watch.edge());
}

// Asio re-registers the socket when a write has to wait for EPOLLOUT; the
// watch's EPOLLRDHUP must survive that, or a FIN with the last data goes
// unseen again.
TEST_F(EdgePollerTest, RdhupSurvivesAsiosEpolloutRegistration) {
  Connection c(ioc_);
  watch(c);
  // Fixed buffers far smaller than the write (loopback autotunes to MiBs).
  c.peer.set_option(net::socket_base::receive_buffer_size(64 * 1024));
  c.watched.set_option(net::socket_base::send_buffer_size(64 * 1024));
  std::string big(4 << 20, 'x');
  bool written = false;
  net::async_write(c.watched, net::buffer(big), [&](boost::system::error_code ec, std::size_t) {
    EXPECT_FALSE(ec);
    written = true;
  });
  run_for(50ms);
  ASSERT_FALSE(written) << "the write never had to wait";
  std::vector<char> sink(1 << 20);
  c.peer.non_blocking(true);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!written && std::chrono::steady_clock::now() < deadline) {
    boost::system::error_code ec;
    c.peer.read_some(net::buffer(sink), ec);
    run_for(1ms);
  }
  ASSERT_TRUE(written);
  c.peer.non_blocking(false);
  c.drain();
  c.watch.clear_edge();
  c.watch.park();
  c.send("bye");
  c.peer.shutdown(tcp::socket::shutdown_send);
  ASSERT_TRUE(run_until([&] { return c.watch.end_pending(); }));
}

// A socket closed under a watch that was never detached, and an io_context
// destroyed before its watches: the watch must not reach its freed
// operation afterwards (ASan).
TEST_F(EdgePollerTest, SocketClosedBeforeDetach) {
  Connection c(ioc_);
  watch(c);
  c.watched.close();
  run_for(20ms);
  c.watch.detach();
  EXPECT_FALSE(c.watch.attached());
}

TEST(EdgePollerLifetime, IoContextGoesFirst) {
  CountingWatch w;
  int edges = 0;
  w.edges = &edges;
  {
    net::io_context ioc(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO);
    EdgePoller poller(ioc);
    Connection c(ioc);
    ASSERT_TRUE(poller.add(c.watched, w));
  }
  w.detach();
  EXPECT_EQ(edges, 0);
}

}  // namespace
