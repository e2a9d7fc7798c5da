#include "proxy/edge_poller.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cerrno>
#include <cstring>

// The set's own wait: on Boost 1.81's epoll reactor it can stay queued
// (below); elsewhere each turn re-arms it through async_wait.
#if BOOST_VERSION == 108100 && defined(__linux__) && !defined(BOOST_ASIO_DISABLE_EPOLL) && \
    !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#define WSGATE_QUEUED_SET_WAIT 1
#include <boost/asio/detail/concurrency_hint.hpp>
#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/scheduler.hpp>
#endif

namespace wsgate::proxy {

namespace net = boost::asio;

namespace {

// The batch being delivered on this thread. An on_edge() may end another
// session whose socket has an event later in the same batch; its Watch then
// blanks that entry (forget) before it goes away.
struct Batch {
  epoll_event* events = nullptr;
  int next = 0;
  int size = 0;
};
thread_local Batch* t_batch = nullptr;

// The set's descriptor is held as a tcp::socket: Asio only registers and
// polls it, and a socket's reactor registration is reachable (below) where
// a posix::stream_descriptor's is private.
using SetHandle = net::ip::tcp::socket;

}  // namespace

struct EdgePoller::Impl {
  explicit Impl(net::io_context& ctx) : ioc(ctx), set(ctx) {}
  net::io_context& ioc;
  SetHandle set;
  bool harvest_queued = false;
  void* spare_op = nullptr;  // a finished SetWaitOp, reused for the next turn
  void (*delete_op)(void*) = nullptr;
  ~Impl() {
    if (spare_op) delete_op(spare_op);
  }
};

#ifdef WSGATE_QUEUED_SET_WAIT
namespace {

namespace detail = net::detail;

struct SocketInternals : SetHandle {
  static auto& implementation(SetHandle& s) {
    return (s.*(&SocketInternals::impl_)).get_implementation();
  }
};

// Sits in the set descriptor's read queue for the life of the set, so the
// reactor never re-arms it (EPOLL_CTL_MOD, a syscall per turn through
// async_wait). On an edge it queues its successor behind itself before it
// finishes, so the queue never empties, and its completion drains the set,
// like any Asio completion.
class SetWaitOp : public detail::reactor_op {
 public:
  SetWaitOp(EdgePoller* poller, EdgePoller::Impl* impl)
      : reactor_op(boost::system::error_code(), &SetWaitOp::perform, &SetWaitOp::complete),
        poller_(poller),
        impl_(impl) {}

  static void queue(EdgePoller* poller, EdgePoller::Impl* impl) {
    SetWaitOp* op;
    if (impl->spare_op) {
      op = static_cast<SetWaitOp*>(std::exchange(impl->spare_op, nullptr));
      op->ec_ = {};
    } else {
      op = new SetWaitOp(poller, impl);
      impl->delete_op = [](void* p) { delete static_cast<SetWaitOp*>(p); };
    }
    auto& s = SocketInternals::implementation(impl->set);
    net::use_service<detail::epoll_reactor>(impl->ioc).start_op(
        detail::epoll_reactor::read_op, s.socket_, s.reactor_data_, op, false, false);
  }

 private:
  static status perform(reactor_op* base) {
    auto* self = static_cast<SetWaitOp*>(base);
    // The successor is asked at once, in the same pass: it stays queued.
    if (self->impl_->harvest_queued) return not_done;
    self->impl_->harvest_queued = true;
    queue(self->poller_, self->impl_);  // no descriptor lock to re-take: see start()
    return done;
  }

  static void complete(void* owner, detail::scheduler_operation* base,
                       const boost::system::error_code&, std::size_t) {
    auto* self = static_cast<SetWaitOp*>(base);
    if (owner == nullptr || self->ec_) {
      // The set closed (its poller is gone) or the io_context is going.
      delete self;
      return;
    }
    EdgePoller::Impl* impl = self->impl_;
    EdgePoller* poller = self->poller_;
    impl->harvest_queued = false;
    impl->spare_op = self;
    poller->drain_set();
  }

  EdgePoller* poller_;
  EdgePoller::Impl* impl_;
};

// Queueing the successor from inside the reactor is safe only when the
// reactor takes no per-descriptor locks: the io_context of one thread made
// with BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO (main.cpp).
bool can_queue_set_wait(net::io_context& ioc) {
  const int hint = net::use_service<detail::scheduler>(ioc).concurrency_hint();
  return !BOOST_ASIO_CONCURRENCY_HINT_IS_LOCKING(REACTOR_IO, hint);
}

}  // namespace
#endif

void EdgePoller::Watch::detach() {
  if (!attached_) return;
  attached_ = false;
  parked_ = false;
  forget(this);
}

EdgePoller::EdgePoller(net::io_context& ioc) : impl_(std::make_unique<Impl>(ioc)) {
  int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) {
    spdlog::warn("epoll_create1 failed ({}): tunnels wait through Asio", std::strerror(errno));
    return;
  }
  boost::system::error_code ec;
  impl_->set.assign(net::ip::tcp::v4(), fd, ec);
  if (ec) {
    spdlog::warn("cannot watch the tunnel epoll set ({}): tunnels wait through Asio", ec.message());
    ::close(fd);
  }
}

EdgePoller::~EdgePoller() = default;

bool EdgePoller::ok() const { return impl_->set.is_open(); }

void EdgePoller::start() {
  if (!ok()) return;
#ifdef WSGATE_QUEUED_SET_WAIT
  if (can_queue_set_wait(impl_->ioc)) {
    queued_wait_ = true;
    return SetWaitOp::queue(this, impl_.get());
  }
#endif
  do_wait();
}

bool EdgePoller::add(int fd, Watch& w) {
  if (!ok()) return false;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = &w;
  if (::epoll_ctl(impl_->set.native_handle(), EPOLL_CTL_ADD, fd, &ev) != 0) return false;
  w.attached_ = true;
  return true;
}

void EdgePoller::do_wait() {
  // The set's descriptor is readable while any watched socket has an edge
  // queued; this re-arm is the one Asio syscall per turn.
  impl_->set.async_wait(SetHandle::wait_read, [this](boost::system::error_code ec) {
    if (ec == net::error::operation_aborted) return;  // shutting down
    on_ready(ec);
  });
}

void EdgePoller::on_ready(boost::system::error_code ec) {
  if (ec) {
    // Nothing is known to produce this; if it persists, tunnels stall, so
    // say so loudly.
    spdlog::error("waiting on the tunnel epoll set failed: {}", ec.message());
    return do_wait();
  }
  drain_set();
  do_wait();
}

void EdgePoller::drain_set() {
  const int fd = impl_->set.native_handle();
  for (;;) {
    int n = ::epoll_wait(fd, events_.data(), kBatch, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("epoll_wait on the tunnel set failed: {}", std::strerror(errno));
      break;
    }
    Batch batch{events_.data(), 0, n};
    t_batch = &batch;
    while (batch.next < batch.size) {
      epoll_event& e = events_[static_cast<std::size_t>(batch.next++)];
      auto* w = static_cast<Watch*>(e.data.ptr);
      if (!w) continue;  // its session ended earlier in this batch
      w->edge_ = true;
      if (e.events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) w->end_pending_ = true;
      if (w->parked_) {
        w->parked_ = false;
        w->on_edge();
      }
    }
    t_batch = nullptr;
    if (n < kBatch) break;  // the set is empty; a full batch may have left more
  }
}

void EdgePoller::forget(Watch* w) {
  Batch* b = t_batch;
  if (!b) return;
  for (int i = b->next; i < b->size; ++i)
    if (b->events[i].data.ptr == w) b->events[i].data.ptr = nullptr;
}

}  // namespace wsgate::proxy
