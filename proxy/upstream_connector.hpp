#pragma once
// The upstream half of the handshake: take an endpoint from the route's set,
// connect, TLS with SNI and certificate verification for wss://, send the
// upgrade request, read the answer. A failed TCP or TLS connect ejects the
// endpoint and moves on to another (--upstream-connect-attempts, all within
// --handshake-timeout-ms); nothing was sent yet, so that is always safe. One
// connector per client session; it calls back exactly once.
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "proxy/gateway.hpp"
#include "proxy/metrics.hpp"
#include "proxy/stream.hpp"
#include "proxy/upstream_endpoints.hpp"
#include "proxy/upstream_url.hpp"
#include "proxy/worker_socket.hpp"

namespace wsgate::proxy {

struct UpstreamResult {
  // On failure: the handshake outcome to count, and why.
  std::optional<HandshakeOutcome> failure;
  std::string error;
  std::optional<AnyStream> stream;
  boost::beast::http::response<boost::beast::http::string_body> response;
  std::string early;  // bytes after the response (frames already sent)
  // The endpoint answering (on failure: the last one tried, if any); the
  // lease counts the session against it until released.
  EndpointLease lease;
  std::string endpoint;
};

// Whether an upstream's answer to the upgrade ejects its endpoint: only the
// statuses that speak for the replica itself (502, 503, 504: overloaded,
// draining, its own upstream gone), and answers from something that is not
// a WebSocket server (1xx/2xx/3xx other than 101). 4xx is the backend's
// verdict on this request (401/403 auth, 404, 400) and 500/501/505+ may be
// caused by this one request: ejecting on those would let one bad client
// take a healthy replica out of rotation for everyone.
bool upgrade_status_ejects(unsigned status);

class UpstreamConnector : public std::enable_shared_from_this<UpstreamConnector> {
 public:
  using Callback = std::function<void(UpstreamResult)>;

  UpstreamConnector(WorkerExecutor executor, Gateway& gateway, UpstreamUrl url,
                    std::shared_ptr<EndpointSet> endpoints,
                    boost::beast::http::request<boost::beast::http::empty_body> request,
                    Callback done);
  void run();
  void cancel();  // the client went away

 private:
  using tcp = boost::asio::ip::tcp;
  void attempt();
  // A TCP or TLS connect failed: eject, then try another endpoint if any
  // attempt and time is left.
  void connect_failed(std::string error);
  void on_connect(boost::system::error_code ec);
  void on_tls_handshake(boost::system::error_code ec);
  void do_write();
  void on_write(boost::system::error_code ec);
  void on_read(boost::system::error_code ec);
  void arm(std::chrono::milliseconds timeout, TimeoutKind kind);
  void fail(HandshakeOutcome outcome, std::string error, bool eject = true);

  Gateway& gateway_;
  UpstreamUrl url_;
  boost::beast::http::request<boost::beast::http::empty_body> request_;
  Callback done_;
  std::shared_ptr<EndpointSet> endpoints_;
  EndpointLease lease_;
  std::vector<tcp::endpoint> tried_;
  std::chrono::steady_clock::time_point deadline_;  // for all connect attempts
  unsigned attempt_ = 0;  // bumped per attempt: a stale timer wakes nothing
  std::optional<AnyStream> stream_;
  WorkerTimer timer_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::response_parser<boost::beast::http::string_body>> parser_;
  std::optional<TimeoutKind> timed_out_;
  bool finished_ = false;
};

}  // namespace wsgate::proxy
