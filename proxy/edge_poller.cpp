#include "proxy/edge_poller.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace wsgate::proxy {

namespace net = boost::asio;

namespace {
// The poller delivering a batch on this thread, for a Watch detached
// meanwhile to blank its later entries.
thread_local EdgePoller* t_delivering = nullptr;
}  // namespace

void EdgePoller::Watch::unlink() {
  prev_->next_ = next_;
  next_->prev_ = prev_;
  prev_ = next_ = nullptr;
}

void EdgePoller::Watch::detach() {
  if (!attached()) return;
  unlink();
  parked_ = false;
  if (t_delivering) t_delivering->forget(this);
  // Last: the owner may be all that keeps this watch alive.
  auto owner = std::move(owner_);
}

EdgePoller::EdgePoller(net::io_context& ioc) : set_(ioc) {
  list_.prev_ = list_.next_ = &list_;
  const int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) {
    error_ = {errno, boost::system::system_category()};
    return;
  }
  set_.assign(fd, error_);
  if (error_) ::close(fd);
}

EdgePoller::~EdgePoller() {
  // Each owner released may end a session, which detaches its other
  // watches: take them from the front one at a time.
  while (list_.next_ != &list_) list_.next_->detach();
  list_.unlink();
}

void EdgePoller::start() {
  if (ok()) do_wait();
}

bool EdgePoller::add(int fd, Watch& w) {
  if (!ok() || w.attached()) {
    errno = ok() ? EEXIST : EBADF;
    return false;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = &w;
  if (::epoll_ctl(set_.native_handle(), EPOLL_CTL_ADD, fd, &ev) != 0) return false;
  w.prev_ = &list_;
  w.next_ = list_.next_;
  list_.next_->prev_ = &w;
  list_.next_ = &w;
  return true;
}

std::size_t EdgePoller::watched() const {
  std::size_t n = 0;
  for (const Watch* w = list_.next_; w != &list_; w = w->next_) ++n;
  return n;
}

void EdgePoller::do_wait() {
  // The set's descriptor is readable while any watched socket has an edge
  // queued. This wait's re-arm is the one syscall a turn costs.
  set_.async_wait(net::posix::stream_descriptor::wait_read,
                  [this](boost::system::error_code ec) { on_ready(ec); });
}

void EdgePoller::on_ready(boost::system::error_code ec) {
  if (ec == net::error::operation_aborted) return;  // the set closed
  if (ec) {
    // Nothing is known to produce this; tunnels would stall, so say so.
    spdlog::error("waiting on the tunnel epoll set failed: {}", ec.message());
  } else {
    ++turns_;
    drain_set();
  }
  do_wait();
}

void EdgePoller::drain_set() {
  const int fd = set_.native_handle();
  for (;;) {
    const int n = ::epoll_wait(fd, events_.data(), kBatch, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("epoll_wait on the tunnel set failed: {}", std::strerror(errno));
      return;
    }
    batch_next_ = 0;
    batch_size_ = n;
    t_delivering = this;
    while (batch_next_ < batch_size_) {
      const epoll_event& e = events_[static_cast<std::size_t>(batch_next_++)];
      auto* w = static_cast<Watch*>(e.data.ptr);
      if (!w || !w->attached()) continue;  // its session ended meanwhile
      w->edge_ = true;
      if (e.events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) w->end_pending_ = true;
      if (w->parked_) {
        w->parked_ = false;
        auto owner = std::move(w->owner_);  // keeps the session through its wake-up
        w->on_edge();
      }
    }
    t_delivering = nullptr;
    batch_size_ = 0;
    if (n < kBatch) return;  // the set is empty; a full batch may have left more
  }
}

void EdgePoller::forget(const Watch* w) {
  for (int i = batch_next_; i < batch_size_; ++i)
    if (events_[static_cast<std::size_t>(i)].data.ptr == w)
      events_[static_cast<std::size_t>(i)].data.ptr = nullptr;
}

}  // namespace wsgate::proxy
