#pragma once
// Accepts client connections on the first worker and hands each to the
// worker with the fewest sessions, where a ClientSession runs it for the
// rest of its life.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>

#include "proxy/gateway.hpp"
#include "proxy/workers.hpp"

namespace wsgate::proxy {

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(Workers& workers, Gateway& gateway, const boost::asio::ip::tcp::endpoint& ep);
  void run();
  void stop();  // any thread: stop accepting; live sessions are untouched
  boost::asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

 private:
  void do_accept();
  void on_readable(boost::system::error_code ec);
  void hand_off(int fd);
  // accept() failed (out of fds or memory): retrying at once would spin a
  // core and flood the log while nothing frees up, so pause, doubling the
  // pause up to kMaxAcceptBackoff while failures continue.
  void back_off(const boost::system::error_code& ec);

  static constexpr std::chrono::milliseconds kMinAcceptBackoff{10};
  static constexpr std::chrono::milliseconds kMaxAcceptBackoff{1000};
  // Connections taken per wake-up before the accepting worker serves its
  // own sessions again.
  static constexpr int kAcceptsPerTurn = 64;

  Workers& workers_;
  Gateway& gateway_;
  boost::asio::ip::tcp protocol_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer backoff_timer_;
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point last_error_log_{};
  std::uint64_t errors_since_log_ = 0;
};

// Raises the soft fd limit to the hard one and returns how many sessions the
// result can carry (two fds each) with a reserve kept for the admin port,
// trace fetches and the incident log; logs when `wanted` does not fit.
std::uint32_t fit_connections_to_fd_limit(std::uint32_t wanted);

}  // namespace wsgate::proxy
