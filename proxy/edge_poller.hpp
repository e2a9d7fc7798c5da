#pragma once
// Readability of a worker's tunnel sockets, tracked the way nginx tracks it:
// each socket sits once, edge-triggered and with EPOLLRDHUP, in an epoll set
// of the worker's own, and a flag per socket remembers whether data came
// since the last read that emptied it. A pump that finds its socket empty
// parks on that flag at no syscall cost and is woken by the next edge.
//
// Why: through Asio every wait for readability on a drained socket costs a
// syscall of its own, the EPOLL_CTL_MOD re-arm of async_wait, or the EAGAIN
// recv that async_read_some always tries first (Boost 1.81). At small
// messages that is one syscall in three. Here a wait costs a share of one
// turn of the set: its epoll_wait and the re-arm of the set's own descriptor
// in Asio's reactor, shared by every socket that became ready in that turn.
//
// Only public interfaces: epoll(7), and Asio's async_wait on a
// posix::stream_descriptor holding the set.
//
// Why EPOLLRDHUP: a FIN that arrives with the last data makes no edge of its
// own, so after a short read only the RDHUP bit says the next read would
// find the end rather than EAGAIN.
//
// One thread: the poller and every socket it watches belong to one worker,
// whose io_context runs the set's wait. The set is drained inside a handler
// on that thread, so no edge is delivered between a read and the flag
// update that follows it.
#include <sys/epoll.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstddef>
#include <memory>

namespace wsgate::proxy {

class EdgePoller {
 public:
  class Watch {
   public:
    Watch() = default;
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;
    virtual ~Watch() { detach(); }

    bool attached() const { return next_ != nullptr; }
    // Data, an end or an error arrived since the last clear_edge().
    bool edge() const { return edge_; }
    // The peer's FIN, a hangup or an error is known: from here on every read
    // must go to the socket, since no further edge will come.
    bool end_pending() const { return end_pending_; }
    // Call right after a read that left the socket empty (short, or EAGAIN):
    // only edges from then on say there is more.
    void clear_edge() { edge_ = false; }
    // A read found EAGAIN although an end was pending: it was an error
    // reported once (EPOLLERR); edges come again.
    void clear_end_pending() { end_pending_ = false; }
    // on_edge() runs once, on the next edge. `owner` is held until then (or
    // until detach, or the poller goes): a parked session has no pending
    // Asio operation that would keep it alive.
    void park(std::shared_ptr<void> owner) {
      owner_ = std::move(owner);
      parked_ = true;
    }
    bool parked() const { return parked_; }
    // Stop delivering edges and release the owner. The socket's close takes
    // it out of the kernel's set; until then its edges reach no one.
    void detach();

   protected:
    virtual void on_edge() = 0;

   private:
    friend class EdgePoller;
    void unlink();
    // The poller's list of watches (circular, through its sentinel), so that
    // a poller that goes first can release every parked owner.
    Watch* prev_ = nullptr;
    Watch* next_ = nullptr;
    std::shared_ptr<void> owner_;
    bool edge_ = true;  // nothing read yet: the first read goes ahead
    bool end_pending_ = false;
    bool parked_ = false;
  };

  explicit EdgePoller(boost::asio::io_context& ioc);
  ~EdgePoller();  // detaches every watch and releases their owners
  EdgePoller(const EdgePoller&) = delete;
  EdgePoller& operator=(const EdgePoller&) = delete;

  // False when the set could not be made; then add() always fails.
  bool ok() const { return set_.is_open(); }
  // Why not ok(): the error of epoll_create1 or of registering the set.
  const boost::system::error_code& error() const { return error_; }
  // Starts waiting on the set (once, before the io_context runs).
  void start();
  // Watches `fd` until it closes. False (errno kept): the caller waits
  // through Asio instead.
  bool add(int fd, Watch& w);
  // Watches attached now (walks them: for tests and diagnostics).
  std::size_t watched() const;
  // Turns of the set so far: the re-arms it cost.
  std::size_t turns() const { return turns_; }

 private:
  static constexpr int kBatch = 64;
  struct Sentinel final : Watch {
    void on_edge() override {}
  };
  void do_wait();
  void on_ready(boost::system::error_code ec);
  void drain_set();
  void forget(const Watch* w);

  boost::asio::posix::stream_descriptor set_;
  boost::system::error_code error_;
  Sentinel list_;
  std::size_t turns_ = 0;
  // The batch being delivered: an on_edge() may end another session whose
  // socket has an event later in it; that Watch blanks its entry (forget).
  int batch_next_ = 0;
  int batch_size_ = 0;
  std::array<epoll_event, kBatch> events_{};
};

}  // namespace wsgate::proxy
