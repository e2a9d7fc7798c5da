#pragma once
// Readability of the tunnel's sockets, tracked the way nginx tracks it: each
// socket is registered once, edge-triggered and with EPOLLRDHUP, and a flag
// per socket remembers whether data came since the last read that emptied
// it. A pump that finds its socket empty parks on that flag at no cost; it
// is woken by the next edge.
//
// Why: through Asio every wait for readability costs a syscall, an
// EPOLL_CTL_MOD re-arm for async_wait or an EAGAIN recv for async_read_some
// (Boost 1.81 skips that recv only after EOF). That was one syscall in three
// per small-message round trip.
//
// How: the registration is Asio's own (its epoll set is edge-triggered
// already). A watch puts an operation of ours in the socket's read queue and
// keeps one there for the socket's life, so the reactor never re-arms it;
// every event runs that operation, which records the edge and wakes a
// parked pump. The fourth session kept a second epoll set of our own
// instead, nested in Asio's: two epoll_waits per turn, and every event
// delivered to both sets.
//
// Why EPOLLRDHUP: a FIN that arrives with the last data makes no edge of its
// own, so after a short read only the RDHUP bit says the next read would
// find the end rather than EAGAIN. The watch adds it to the socket's
// registration (Asio's own mask lacks it) and reads it off the event.
//
// The operation reaches into Boost 1.81's epoll reactor, and queueing one
// from inside the reactor is safe only without per-descriptor locks: the
// one-thread io_context made with BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO
// (--threads 1). Anywhere else available() is false and tunnels wait through
// Asio.
//
// Rule for users: while a socket is watched, nothing may wait in its read
// queue for readiness the socket already has (no async_read_some on it; an
// async_wait only for more than is there, e.g. the rest of a TLS record),
// since the queue is never empty and so never re-armed.
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

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
    virtual ~Watch();

    bool attached() const { return attached_; }
    // Data, an end or an error arrived since the last clear_edge().
    bool edge() const { return edge_; }
    // The peer's FIN, a hangup or an error is known: from here on every read
    // must go to the socket, since no further edge will come.
    bool end_pending() const { return end_pending_; }
    // Call right after a read that left the socket empty (short, or EAGAIN):
    // only edges from then on say there is more.
    void clear_edge() { edge_ = false; }
    // A read found EAGAIN although an end was pending: it was a transient
    // error (EPOLLERR, reported once); edges come again.
    void clear_end_pending() { end_pending_ = false; }
    // on_edge() runs once, on the next edge.
    void park() { parked_ = true; }
    bool parked() const { return parked_; }
    // Stop delivering edges (before the socket closes; the close takes the
    // watch's operation out of the reactor).
    void detach();

   protected:
    virtual void on_edge() = 0;

   private:
    friend class EdgePoller;
    friend struct WatchAccess;
    bool attached_ = false;
    bool edge_ = true;  // nothing read yet: the first read goes ahead
    bool end_pending_ = false;
    bool parked_ = false;
    void* queued_op_ = nullptr;      // ours, in the socket's read queue
    void* completing_op_ = nullptr;  // performed, its completion still to run
    void* spare_op_ = nullptr;       // completed, reused for the next event
  };

  explicit EdgePoller(boost::asio::io_context& ioc);
  EdgePoller(const EdgePoller&) = delete;
  EdgePoller& operator=(const EdgePoller&) = delete;

  // This build and this io_context allow watches (Boost 1.81's epoll
  // reactor, one thread, unlocked reactor I/O).
  static bool available(boost::asio::io_context& ioc);
  bool ok() const { return ok_; }
  // Watches `socket` (open, registered with Asio) until it closes. False
  // (errno set): the caller waits through Asio instead.
  bool add(boost::asio::ip::tcp::socket& socket, Watch& w);

 private:
  boost::asio::io_context& ioc_;
  bool ok_;
};

}  // namespace wsgate::proxy
