#pragma once
// Readability of the tunnel's sockets, tracked the way nginx tracks it: each
// socket sits once, edge-triggered and with EPOLLRDHUP, in an epoll set of
// our own, and a flag per socket remembers whether data came since the last
// read that emptied it. A pump that finds its socket empty parks on that flag
// at no cost; it is woken by the next edge.
//
// Why: through Asio every wait for readability costs a syscall, an
// EPOLL_CTL_MOD re-arm for async_wait or an EAGAIN recv for async_read_some
// (Boost 1.81 skips that recv only after EOF). That was one syscall in three
// per small-message round trip. Here the cost per wait is a share of one
// epoll_wait on our set plus the re-arm of the set's own descriptor in Asio's
// reactor, shared by every socket that became ready in the same turn.
//
// Why EPOLLRDHUP: a FIN that arrives with the last data makes no edge of its
// own, so after a short read only the RDHUP bit says the next read would
// find the end rather than EAGAIN (Asio registers without it, which is why
// this cannot live in Asio's own epoll set).
//
// Single-threaded: the poller and every socket it watches belong to one I/O
// thread (--threads 1). The set is drained inside a handler on that thread,
// so no edge is processed between a read and the flag update that follows.
#include <sys/epoll.h>

#include <array>
#include <boost/system/error_code.hpp>
#include <memory>

namespace boost::asio {
class io_context;
}

namespace wsgate::proxy {

class EdgePoller {
 public:
  class Watch {
   public:
    Watch() = default;
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;
    virtual ~Watch() { detach(); }

    bool attached() const { return attached_; }
    // Data, an end or an error arrived since the last clear_edge().
    bool edge() const { return edge_; }
    // The peer's FIN, a hangup or an error is known: from here on every read
    // must go to the socket, since no further edge will come.
    bool end_pending() const { return end_pending_; }
    // Call right after a read that left the socket empty (short, or EAGAIN):
    // only edges from then on say there is more.
    void clear_edge() { edge_ = false; }
    // on_edge() runs once, on the next edge.
    void park() { parked_ = true; }
    bool parked() const { return parked_; }
    // Stop delivering edges (before the socket closes; the close itself
    // takes the socket out of the set).
    void detach();

   protected:
    virtual void on_edge() = 0;

   private:
    friend class EdgePoller;
    bool attached_ = false;
    bool edge_ = true;  // nothing read yet: the first read goes ahead
    bool end_pending_ = false;
    bool parked_ = false;
  };

  explicit EdgePoller(boost::asio::io_context& ioc);
  ~EdgePoller();
  EdgePoller(const EdgePoller&) = delete;
  EdgePoller& operator=(const EdgePoller&) = delete;

  // False when the set could not be created; then add() always fails.
  bool ok() const;
  // Starts draining the set (call once, before run()).
  void start();
  // Watches `fd` until it closes. False (errno kept): the caller waits
  // through Asio instead.
  bool add(int fd, Watch& w);
  // True when the set's wait stays queued in Asio's reactor (no re-arm per
  // turn); false when each turn re-arms it through async_wait.
  bool queued_wait() const { return queued_wait_; }

  // Delivers every queued edge (runs on the I/O thread, from the set's wait).
  void drain_set();

  struct Impl;

 private:
  static constexpr int kBatch = 64;
  void do_wait();
  void on_ready(boost::system::error_code ec);
  static void forget(Watch* w);

  std::unique_ptr<Impl> impl_;
  bool queued_wait_ = false;
  std::array<epoll_event, kBatch> events_{};
};

}  // namespace wsgate::proxy
