#include "proxy/listener.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include "proxy/client_session.hpp"

namespace wsgate::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;

Listener::Listener(net::io_context& ioc, Gateway& gateway, const tcp::endpoint& ep)
    : ioc_(ioc),
      gateway_(gateway),
      acceptor_(net::make_strand(ioc)),
      backoff_timer_(acceptor_.get_executor()) {
  acceptor_.open(ep.protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(net::socket_base::max_listen_connections);
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
  acceptor_.async_accept(session_executor(),
                         [self = shared_from_this()](boost::system::error_code ec, tcp::socket s) {
                           self->on_accept(ec, std::move(s));
                         });
}

net::any_io_executor Listener::session_executor() {
  // One I/O thread runs every handler in turn already: a strand would only
  // add a lock and a second trip through the scheduler to each completion.
  if (gateway_.config().threads == 1) return ioc_.get_executor();
  return net::make_strand(ioc_);
}

void Listener::on_accept(boost::system::error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec) return back_off(ec);
  backoff_ = std::chrono::milliseconds{0};
  std::make_shared<ClientSession>(gateway_, std::move(socket), gateway_.server_tls())->run();
  do_accept();
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
