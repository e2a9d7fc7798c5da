#include "proxy/listener.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include "proxy/client_session.hpp"

namespace wsgate::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;

Listener::Listener(net::io_context& ioc, Gateway& gateway, const tcp::endpoint& ep)
    : ioc_(ioc), gateway_(gateway), acceptor_(net::make_strand(ioc)) {
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
  if (ec) {
    // EMFILE and friends: log, count on, keep accepting after a pause-free
    // retry; the kernel backlog holds the rest.
    spdlog::warn("accept failed: {}", ec.message());
  } else {
    std::make_shared<ClientSession>(gateway_, std::move(socket), gateway_.server_tls())->run();
  }
  do_accept();
}

}  // namespace wsgate::proxy
