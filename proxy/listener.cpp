#include "proxy/listener.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>

#include "proxy/client_session.hpp"

namespace wsgate::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;

Listener::Listener(Workers& workers, Gateway& gateway, const tcp::endpoint& ep)
    : workers_(workers),
      gateway_(gateway),
      protocol_(ep.protocol()),
      acceptor_(workers.context(0)),
      backoff_timer_(workers.context(0)) {
  acceptor_.open(ep.protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(net::socket_base::max_listen_connections);
  acceptor_.non_blocking(true);
}

void Listener::run() { do_accept(); }

void Listener::stop() {
  net::post(acceptor_.get_executor(), [self = shared_from_this()] {
    boost::system::error_code ignored;
    self->acceptor_.close(ignored);
    self->backoff_timer_.cancel();
  });
}

void Listener::do_accept() {
  acceptor_.async_wait(
      tcp::acceptor::wait_read,
      [self = shared_from_this()](boost::system::error_code ec) { self->on_readable(ec); });
}

// accept4() itself rather than Asio's accept: the new socket is made
// non-blocking in the same call and is registered with no reactor until the
// worker that will own it adopts it, on its own thread.
void Listener::on_readable(boost::system::error_code ec) {
  if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec) return back_off(ec);
  for (int i = 0; i < kAcceptsPerTurn; ++i) {
    int fd = ::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      backoff_ = std::chrono::milliseconds{0};
      hand_off(fd);
      continue;
    }
    const int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) return do_accept();
    // The connection died in the queue, or a signal came: the next one may
    // be fine.
    if (err == EINTR || err == ECONNABORTED || err == EPROTO || err == EPERM) continue;
    return back_off(boost::system::error_code(err, boost::system::system_category()));
  }
  // More may be queued: take them after the worker's other handlers.
  net::post(acceptor_.get_executor(), [self = shared_from_this()] {
    self->on_readable(self->acceptor_.is_open() ? boost::system::error_code{}
                                                : net::error::operation_aborted);
  });
}

void Listener::hand_off(int fd) {
  const unsigned worker = workers_.pick();
  auto& ioc = workers_.context(worker);
  // Closes the descriptor if the worker never adopts it (stopped first).
  struct PendingFd {
    int fd;
    explicit PendingFd(int f) : fd(f) {}
    PendingFd(PendingFd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
    ~PendingFd() {
      if (fd >= 0) ::close(fd);
    }
  };
  net::post(ioc, [&gateway = gateway_, &ioc, pending = PendingFd(fd), protocol = protocol_,
                  load = workers_.count_session(worker)]() mutable {
    WorkerSocket socket(ioc);
    boost::system::error_code ec;
    socket.assign(protocol, pending.fd, ec);
    if (ec) {
      gateway.metrics().accept_error(classify_accept_error(ec)).Increment();
      spdlog::warn("cannot adopt an accepted connection: {}", ec.message());
      return;
    }
    pending.fd = -1;  // the socket owns it now
    std::make_shared<ClientSession>(gateway, std::move(socket), gateway.server_tls(),
                                    std::move(load))
        ->run();
  });
}

void Listener::back_off(const boost::system::error_code& ec) {
  gateway_.metrics().accept_error(classify_accept_error(ec)).Increment();
  backoff_ = std::clamp(backoff_ * 2, kMinAcceptBackoff, kMaxAcceptBackoff);
  ++errors_since_log_;
  auto now = std::chrono::steady_clock::now();
  if (now - last_error_log_ >= std::chrono::seconds(1)) {
    spdlog::warn(
        "accept failed: {} ({} failures since the last message); pausing accepts for {} ms",
        ec.message(), errors_since_log_, backoff_.count());
    last_error_log_ = now;
    errors_since_log_ = 0;
  }
  backoff_timer_.expires_after(backoff_);
  backoff_timer_.async_wait([self = shared_from_this()](boost::system::error_code wec) {
    if (wec || !self->acceptor_.is_open()) return;
    self->do_accept();
  });
}

std::uint32_t fit_connections_to_fd_limit(std::uint32_t wanted) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return wanted;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  if (lim.rlim_cur == RLIM_INFINITY) return wanted;
  // Reserve: fds of the process itself, the admin port's clients, trace
  // fetches and the incident log; a sixteenth of the limit, at least 16.
  const rlim_t reserve = std::max<rlim_t>(16, std::min<rlim_t>(lim.rlim_cur / 16, 1024));
  const rlim_t usable = lim.rlim_cur > reserve ? lim.rlim_cur - reserve : 0;
  const auto fit = static_cast<std::uint32_t>(std::min<rlim_t>(usable / 2, wanted));
  if (fit < wanted)
    spdlog::warn(
        "--max-connections {} needs about {} file descriptors but the limit is {}; "
        "serving at most {} connections (raise LimitNOFILE / ulimit -n)",
        wanted, static_cast<std::uint64_t>(wanted) * 2 + reserve,
        static_cast<std::uint64_t>(lim.rlim_cur), std::max<std::uint32_t>(fit, 1));
  return std::max<std::uint32_t>(fit, 1);
}

}  // namespace wsgate::proxy
