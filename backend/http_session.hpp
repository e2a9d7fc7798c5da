#pragma once
// The HTTP side of one accepted socket: reads the upgrade request under size
// and time limits, routes /ws (anything else: 404, no upgrade: 426), chooses
// the correlation ID, verifies the JWT (401 with a JSON reason) and hands the
// socket to a WebSocket session.
#include <boost/asio/ip/tcp.hpp>
#include <memory>

namespace wsgate::backend {

class SharedState;

void start_http_session(boost::asio::ip::tcp::socket socket, std::shared_ptr<SharedState> state);

}  // namespace wsgate::backend
