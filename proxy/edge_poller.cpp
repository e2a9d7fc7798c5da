#include "proxy/edge_poller.hpp"

#include <sys/epoll.h>

#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <cstdint>
#include <utility>

// The watch operation reaches into Boost 1.81's epoll reactor; any other
// build waits through Asio (available() is false).
#if BOOST_VERSION == 108100 && defined(__linux__) && !defined(BOOST_ASIO_DISABLE_EPOLL) && \
    !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#define WSGATE_REACTOR_WATCH 1
#include <boost/asio/detail/concurrency_hint.hpp>
#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/scheduler.hpp>
#endif

namespace wsgate::proxy {

namespace net = boost::asio;

#ifdef WSGATE_REACTOR_WATCH
namespace detail = net::detail;
using DescriptorState = detail::epoll_reactor::descriptor_state;

// Two private members of the reactor a watch needs: the socket's registered
// event mask (to add EPOLLRDHUP so that Asio's own later re-registrations
// keep it) and the events of the current wake-up. Naming a private member
// is allowed in an explicit instantiation; the friend hands it out.
template <class Tag, typename Tag::type Member>
struct Expose {
  friend typename Tag::type member(Tag) { return Member; }
};
struct RegisteredEvents {
  using type = std::uint32_t DescriptorState::*;
  friend type member(RegisteredEvents);
};
template struct Expose<RegisteredEvents, &DescriptorState::registered_events_>;
struct ReadyEvents {
  using type = unsigned int detail::scheduler_operation::*;
  friend type member(ReadyEvents);
};
template struct Expose<ReadyEvents, &detail::scheduler_operation::task_result_>;

namespace {

struct SocketInternals : net::ip::tcp::socket {
  static auto& implementation(net::ip::tcp::socket& s) {
    return (s.*(&SocketInternals::impl_)).get_implementation();
  }
};

// What the reactor reported for `state` in the wake-up being performed
// (descriptor_state derives privately from the operation that carries it;
// a C-style cast may name an inaccessible base).
std::uint32_t ready_events(DescriptorState* state) {
  return ((detail::scheduler_operation*)state)->*member(ReadyEvents{});
}

}  // namespace

// Sits in a watched socket's read queue. On every event it records the edge,
// queues its successor behind itself (so the queue never empties and the
// reactor never re-arms the socket) and completes; the completion wakes a
// parked pump.
class WatchOp : public detail::reactor_op {
 public:
  WatchOp(EdgePoller::Watch* w, detail::epoll_reactor* r, int fd, DescriptorState* s)
      : reactor_op(boost::system::error_code(), &WatchOp::perform, &WatchOp::complete),
        watch(w),
        reactor(r),
        descriptor(fd),
        state(s) {}

  EdgePoller::Watch* watch;  // null once the watch is detached
  detail::epoll_reactor* reactor;
  int descriptor;
  DescriptorState* state;

  // Queues `w`'s next operation (the spare one if it has one). Inside
  // perform() the queue holds the current operation, so this only appends;
  // on an empty queue (add) the reactor registers the socket's mask anew.
  static void queue(EdgePoller::Watch& w, detail::epoll_reactor* r, int fd, DescriptorState* s);

 private:
  static status perform(reactor_op* base);
  static void complete(void* owner, detail::scheduler_operation* base,
                       const boost::system::error_code&, std::size_t);
};

struct WatchAccess {
  static void link_queued(EdgePoller::Watch& w, WatchOp* op) { w.queued_op_ = op; }
  static WatchOp* take_spare(EdgePoller::Watch& w) {
    return static_cast<WatchOp*>(std::exchange(w.spare_op_, nullptr));
  }
  static bool performed(EdgePoller::Watch& w, std::uint32_t events, WatchOp* op) {
    w.edge_ = true;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) w.end_pending_ = true;
    // The successor, run in the same pass: the completion already on its
    // way wakes the pump.
    if (w.completing_op_) return false;
    w.completing_op_ = op;
    return true;
  }
  // The completion of `op`: it becomes the spare; a parked pump is woken
  // (last, since the pump may end its session and so the watch).
  static void completed(EdgePoller::Watch& w, WatchOp* op) {
    w.completing_op_ = nullptr;
    delete static_cast<WatchOp*>(w.spare_op_);
    w.spare_op_ = op;
    if (!w.parked_) return;
    w.parked_ = false;
    w.on_edge();
  }
  // `op` leaves without completing normally (socket closed, io_context
  // destroyed): the watch must not point at it any more.
  static void lost(EdgePoller::Watch& w, WatchOp* op) {
    if (w.queued_op_ == op) w.queued_op_ = nullptr;
    if (w.completing_op_ == op) w.completing_op_ = nullptr;
  }
  static void detach(EdgePoller::Watch& w) {
    for (void* p : {w.queued_op_, w.completing_op_})
      if (p) static_cast<WatchOp*>(p)->watch = nullptr;  // it frees itself when it runs
    w.queued_op_ = w.completing_op_ = nullptr;
    delete static_cast<WatchOp*>(std::exchange(w.spare_op_, nullptr));
  }
};

void WatchOp::queue(EdgePoller::Watch& w, detail::epoll_reactor* r, int fd, DescriptorState* s) {
  WatchOp* op = WatchAccess::take_spare(w);
  if (op)
    op->ec_ = {};
  else
    op = new WatchOp(&w, r, fd, s);
  WatchAccess::link_queued(w, op);
  detail::epoll_reactor::per_descriptor_data data = s;
  r->start_op(detail::epoll_reactor::read_op, fd, data, op, false, false);
}

detail::reactor_op::status WatchOp::perform(reactor_op* base) {
  auto* op = static_cast<WatchOp*>(base);
  if (!op->watch) return done;  // detached: complete, and so be freed
  EdgePoller::Watch& w = *op->watch;
  if (!WatchAccess::performed(w, ready_events(op->state), op)) return not_done;
  queue(w, op->reactor, op->descriptor, op->state);  // no descriptor lock held: see available()
  return done;
}

void WatchOp::complete(void* owner, detail::scheduler_operation* base,
                       const boost::system::error_code&, std::size_t) {
  auto* op = static_cast<WatchOp*>(base);
  if (!op->watch) {
    delete op;
    return;
  }
  if (owner == nullptr || op->ec_) {
    // The io_context is being destroyed, or the socket closed under a watch
    // that was never detached.
    WatchAccess::lost(*op->watch, op);
    delete op;
    return;
  }
  WatchAccess::completed(*op->watch, op);
}
#endif

EdgePoller::Watch::~Watch() { detach(); }

void EdgePoller::Watch::detach() {
  if (!attached_) return;
  attached_ = false;
  parked_ = false;
#ifdef WSGATE_REACTOR_WATCH
  WatchAccess::detach(*this);
#endif
}

EdgePoller::EdgePoller(net::io_context& ioc) : ioc_(ioc), ok_(available(ioc)) {}

bool EdgePoller::available([[maybe_unused]] net::io_context& ioc) {
#ifdef WSGATE_REACTOR_WATCH
  // Queueing the successor from inside the reactor is safe only when it
  // takes no per-descriptor locks, and only one thread may run it.
  const int hint = net::use_service<detail::scheduler>(ioc).concurrency_hint();
  return !BOOST_ASIO_CONCURRENCY_HINT_IS_LOCKING(REACTOR_IO, hint);
#else
  return false;
#endif
}

bool EdgePoller::add([[maybe_unused]] net::ip::tcp::socket& socket, [[maybe_unused]] Watch& w) {
#ifdef WSGATE_REACTOR_WATCH
  if (!ok_) {
    errno = ENOTSUP;
    return false;
  }
  auto& impl = SocketInternals::implementation(socket);
  DescriptorState* state = impl.reactor_data_;
  if (!socket.is_open() || !state || state->*member(RegisteredEvents{}) == 0 || w.attached_) {
    errno = EBADF;
    return false;
  }
  // The next start_op on the empty read queue re-registers the socket with
  // this mask (EPOLL_CTL_MOD), and Asio's own later re-registrations (for
  // EPOLLOUT) keep the bit.
  state->*member(RegisteredEvents{}) |= EPOLLRDHUP;
  w.attached_ = true;
  WatchOp::queue(w, &net::use_service<detail::epoll_reactor>(ioc_), impl.socket_, state);
  return true;
#else
  errno = ENOTSUP;
  return false;
#endif
}

}  // namespace wsgate::proxy
