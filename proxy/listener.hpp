#pragma once
// Accepts client connections, each on its own strand (with more than one I/O
// thread), and starts a ClientSession for it.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "proxy/gateway.hpp"

namespace wsgate::proxy {

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(boost::asio::io_context& ioc, Gateway& gateway,
           const boost::asio::ip::tcp::endpoint& ep);
  void run();
  void stop();  // stop accepting; live sessions are untouched
  boost::asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

 private:
  boost::asio::any_io_executor session_executor();
  void do_accept();
  void on_accept(boost::system::error_code ec, boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& ioc_;
  Gateway& gateway_;
  boost::asio::ip::tcp::acceptor acceptor_;
};

}  // namespace wsgate::proxy
