#pragma once
// The client half of a connection up to the 101: TLS handshake, reading and
// validating the upgrade request, admission, route and correlation ID, then
// the upstream handshake (UpstreamConnector) and the answer to the client.
// On success it hands both streams to a Tunnel and is gone.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>
#include <optional>
#include <string>

#include "proxy/gateway.hpp"
#include "proxy/handshake.hpp"
#include "proxy/session_summary.hpp"
#include "proxy/stream.hpp"
#include "proxy/upstream_connector.hpp"
#include "proxy/workers.hpp"

namespace wsgate::proxy {

class ClientSession : public PendingHandshake, public std::enable_shared_from_this<ClientSession> {
 public:
  // `socket` belongs to the worker that runs this session, on whose thread
  // every call below is made. `tls` is null for plaintext.
  ClientSession(Gateway& gateway, WorkerSocket socket,
                std::shared_ptr<boost::asio::ssl::context> tls, Workers::Load load = {});
  ~ClientSession() override;
  // Admission (rate, handshakes in flight, connection caps) happens here, at
  // accept, so an idle TCP connection counts against every limit.
  void run();
  void abort_for_drain() override;

 private:
  void on_tls_handshake(boost::system::error_code ec);
  void do_read_request();
  void on_read_request(boost::system::error_code ec);
  void on_upstream(UpstreamResult result);
  void on_client_response_written(boost::system::error_code ec, UpstreamResult& upstream);

  // Answers with `status` (JSON body naming the reason) and closes.
  void refuse(HandshakeOutcome outcome, unsigned status, const std::string& reason);
  // Passes the upstream's non-101 answer through as it is, then closes.
  void pass_through(boost::beast::http::response<boost::beast::http::string_body> response);
  void write_and_close();
  void discard_until_eof();
  // Refused at accept: plaintext gets a 503, TLS is closed before any
  // handshake work.
  void refuse_at_accept(Limit limit, const std::string& reason);
  // Ends the handshake now: the timer is cancelled too, so nothing (TLS
  // state, buffers) outlives the connection.
  void finish();
  bool ended_early() const { return timed_out_.has_value() || aborted_for_drain_; }
  void arm(std::chrono::milliseconds timeout, TimeoutKind kind);
  void count_timeout_or(HandshakeOutcome outcome);

  Gateway& gateway_;
  Workers::Load load_;
  std::shared_ptr<boost::asio::ssl::context> tls_ctx_;  // keeps a reloaded-away context alive
  AnyStream stream_;
  WorkerTimer timer_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::empty_body>> parser_;
  boost::beast::http::response<boost::beast::http::string_body> response_;
  std::shared_ptr<UpstreamConnector> connector_;
  std::optional<TimeoutKind> timed_out_;

  std::string client_ip_;
  std::string client_addr_;  // ip:port
  std::uint64_t registration_ = 0;
  bool registered_ = false;
  bool admitted_ = false;
  bool handed_off_ = false;
  bool answering_ = false;  // a refusal or the 101 is being written
  bool aborted_for_drain_ = false;
  SessionSummary summary_;
  const Route* route_ = nullptr;
  bool deflate_ = false;
};

}  // namespace wsgate::proxy
