#pragma once
// One upgraded connection: builds and validates the user execution context,
// joins the user's manager, then reads JSON messages and writes events with
// one write in flight and a bounded queue. Everything runs on the
// connection's strand; other threads reach it only through posted calls.
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "backend/jwt_verifier.hpp"
#include "backend/manager_factory.hpp"
#include "backend/trace_store.hpp"

namespace wsgate::backend {

class SharedState;

// What the HTTP upgrade learnt, handed to the WebSocket session.
struct HandshakeInfo {
  std::string correlation_id;
  std::shared_ptr<Trace> trace;
  VerifiedClaims claims;
  bool select_jwt_auth = false;
  std::optional<std::string> header_thread_id;
  std::optional<std::string> query_thread_id;
};

class WebSocketSession : public Connection {
 public:
  // Closes the session with `code` (e.g. 1001 on shutdown). Any thread.
  virtual void shutdown(std::uint16_t code, std::string reason) = 0;
};

using UpgradeRequest = boost::beast::http::request<boost::beast::http::empty_body>;

void start_websocket_session(boost::asio::ip::tcp::socket socket,
                             std::shared_ptr<SharedState> state, HandshakeInfo info,
                             UpgradeRequest request);

}  // namespace wsgate::backend
