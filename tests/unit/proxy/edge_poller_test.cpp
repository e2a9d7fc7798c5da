#include "proxy/edge_poller.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>

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
  void park() { watch.park(nullptr); }
};

class EdgePollerTest : public ::testing::Test {
 protected:
  // The io_context of a worker: one thread, reactor I/O unlocked.
  EdgePollerTest() : ioc_(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO) {
    poller_.emplace(ioc_);
    poller_->start();
  }

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
  void watch(Connection& c) { ASSERT_TRUE(poller_->add(c.watched.native_handle(), c.watch)); }

  net::io_context ioc_;
  std::optional<EdgePoller> poller_;  // after the io_context: goes first
};

TEST_F(EdgePollerTest, ParkedWatchWakesOnNewData) {
  ASSERT_TRUE(poller_->ok()) << poller_->error().message();
  Connection c(ioc_);
  watch(c);
  EXPECT_TRUE(c.watch.attached());
  EXPECT_TRUE(c.watch.edge()) << "a new watch must let the first read go ahead";
  c.watch.clear_edge();
  c.park();
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

// Edge-triggered: each arrival after a drain wakes once, and a drained
// socket with nothing new never wakes. The set's wait is re-armed each turn.
TEST_F(EdgePollerTest, EachNewArrivalWakesAgain) {
  Connection c(ioc_);
  watch(c);
  for (int round = 1; round <= 3; ++round) {
    c.drain();
    c.watch.clear_edge();
    c.park();
    c.send("ping");
    ASSERT_TRUE(run_until([&] { return c.edges == round; })) << "round " << round;
  }
  EXPECT_GE(poller_->turns(), 3u);
  c.drain();
  c.watch.clear_edge();
  c.park();
  run_for(100ms);
  EXPECT_EQ(c.edges, 3);
  EXPECT_TRUE(c.watch.parked());
}

// The case a plain edge cannot show: the FIN comes with the last data, so
// no edge follows the read that takes the data. Only end_pending tells the
// pump to read once more and find the end.
TEST_F(EdgePollerTest, FinWithTheLastDataSetsEndPending) {
  Connection c(ioc_);
  watch(c);
  c.watch.clear_edge();
  c.park();
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
  c.park();
  c.watch.detach();
  EXPECT_FALSE(c.watch.attached());
  EXPECT_EQ(poller_->watched(), 0u);
  c.send("late");
  run_for(100ms);
  EXPECT_EQ(c.edges, 0);
}

// Two sessions become readable in one batch and the first one woken ends
// the other (its Watch and socket go away). The second entry of the batch
// must not reach the freed Watch: under ASan a miss is a use-after-free, and
// without ASan its on_edge would count.
TEST_F(EdgePollerTest, SessionEndedEarlierInTheBatchIsSkipped) {
  auto a = std::make_unique<Connection>(ioc_);
  auto b = std::make_unique<Connection>(ioc_);
  watch(*a);
  watch(*b);
  int total = 0;
  for (auto* c : {a.get(), b.get()}) {
    c->watch.edges = &total;
    c->watch.clear_edge();
    c->park();
  }
  a->watch.then = [&] { b.reset(); };
  b->watch.then = [&] { a.reset(); };
  a->send("1");
  b->send("2");
  // Both edges queue before the set is drained once.
  run_until([&] { return total > 0; });
  run_for(100ms);
  EXPECT_EQ(total, 1);
  EXPECT_NE(a == nullptr, b == nullptr);
}

// A parked session has no Asio operation holding it: the watch does, until
// its edge, its detach, or the poller's end (a worker stopping with sessions
// parked). Without the last, every parked session would leak at exit.
TEST_F(EdgePollerTest, ParkedOwnerHeldUntilWokenDetachedOrPollerGone) {
  Connection woken(ioc_), detached(ioc_), left(ioc_);
  std::weak_ptr<int> held[3];
  int i = 0;
  for (Connection* c : {&woken, &detached, &left}) {
    watch(*c);
    c->watch.clear_edge();
    auto owner = std::make_shared<int>(i);
    held[i++] = owner;
    c->watch.park(std::move(owner));
  }
  for (auto& h : held) EXPECT_FALSE(h.expired());

  bool alive_in_edge = false;
  woken.watch.then = [&] { alive_in_edge = !held[0].expired(); };
  woken.send("x");
  ASSERT_TRUE(run_until([&] { return woken.edges > 0; }));
  EXPECT_TRUE(alive_in_edge) << "released before its wake-up ran";
  EXPECT_TRUE(held[0].expired());

  detached.watch.detach();
  EXPECT_TRUE(held[1].expired());

  EXPECT_FALSE(held[2].expired());
  poller_.reset();
  EXPECT_TRUE(held[2].expired());
  EXPECT_FALSE(left.watch.attached());
}

TEST_F(EdgePollerTest, AddFailsForANonSocketAndTwice) {
  CountingWatch w;
  int edges = 0;
  w.edges = &edges;
  EXPECT_FALSE(poller_->add(-1, w));
  EXPECT_FALSE(w.attached());
  Connection c(ioc_);
  watch(c);
  EXPECT_FALSE(poller_->add(c.watched.native_handle(), c.watch)) << "added twice";
  EXPECT_EQ(poller_->watched(), 1u);
}

}  // namespace
