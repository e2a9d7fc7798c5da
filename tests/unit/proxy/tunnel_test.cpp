// A Tunnel between two loopback TCP pairs: the test plays client and
// upstream on the far ends and drives the proxy's io_context on this thread,
// so the pump state it reads is never raced.
#include "proxy/tunnel.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "proxy/gateway.hpp"
#include "proxy/session_summary.hpp"

namespace wsgate::proxy {

// Failures print the state's name (gtest finds these by argument lookup).
void PrintTo(PumpState::Read r, std::ostream* os) {
  static constexpr const char* kNames[] = {"idle", "waiting", "reading", "yielded", "ended"};
  *os << "Read::" << kNames[static_cast<int>(r)];
}
void PrintTo(PumpState::Write w, std::ostream* os) {
  static constexpr const char* kNames[] = {"idle", "writing", "writing_then_end", "idle_then_end",
                                           "ended"};
  *os << "Write::" << kNames[static_cast<int>(w)];
}
void PrintTo(PumpState::OwnClose c, std::ostream* os) {
  static constexpr const char* kNames[] = {"none", "queued", "sent"};
  *os << "OwnClose::" << kNames[static_cast<int>(c)];
}
void PrintTo(PumpState::Cut c, std::ostream* os) {
  static constexpr const char* kNames[] = {"none", "cutting", "cut"};
  *os << "Cut::" << kNames[static_cast<int>(c)];
}

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Bytes = std::vector<std::uint8_t>;
using tap::Direction;
using Read = PumpState::Read;
using Write = PumpState::Write;
using OwnClose = PumpState::OwnClose;
using Cut = PumpState::Cut;

// sizeof(Tunnel) on x86-64 with libstdc++ and Boost 1.81: 3376 bytes with
// the pump state held as thirteen bools, 3344 with the enums, 3104 with the
// taps' close reasons kept in their control buffers, 2976 with 32-bit flush
// baselines, 2704 with per-kind violation counts made on a tap's first
// violation; 3392 with slots for its three pending operations, which used to
// hold 865 heap bytes (Asio's recycled blocks, measured with massif); 2896
// with the worker's executor named by type in its sockets, timer and
// operations instead of any_io_executor. Sessions must not grow back.
constexpr std::size_t kTunnelBytes = 2896;

Bytes frame(std::uint8_t opcode, const Bytes& payload, bool masked) {
  Bytes f{static_cast<std::uint8_t>(0x80 | opcode)};
  const std::uint8_t mask_bit = masked ? 0x80 : 0;
  if (payload.size() < 126) {
    f.push_back(static_cast<std::uint8_t>(mask_bit | payload.size()));
  } else if (payload.size() < 65536) {
    f.push_back(mask_bit | 126);
    f.push_back(static_cast<std::uint8_t>(payload.size() >> 8));
    f.push_back(static_cast<std::uint8_t>(payload.size()));
  } else {
    f.push_back(mask_bit | 127);
    for (int shift = 56; shift >= 0; shift -= 8)
      f.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(payload.size()) >> shift));
  }
  const std::uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
  if (masked) f.insert(f.end(), key, key + 4);
  for (std::size_t i = 0; i < payload.size(); ++i)
    f.push_back(masked ? static_cast<std::uint8_t>(payload[i] ^ key[i % 4]) : payload[i]);
  return f;
}

Bytes text(const std::string& s, bool masked) {
  return frame(0x1, Bytes(s.begin(), s.end()), masked);
}

Bytes close_frame(std::uint16_t code, bool masked) {
  return frame(0x8, Bytes{static_cast<std::uint8_t>(code >> 8), static_cast<std::uint8_t>(code)},
               masked);
}

Bytes pattern(std::size_t n) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 7 + i / 251);
  return b;
}

// The close frame at the start of `b`: its code, or nullopt if `b` does not
// start with one.
std::optional<std::uint16_t> close_code(const Bytes& b) {
  if (b.size() < 4 || b[0] != 0x88) return std::nullopt;
  const bool masked = b[1] & 0x80;
  const std::size_t at = masked ? 6 : 2;
  if ((b[1] & 0x7f) < 2 || b.size() < at + 2) return std::nullopt;
  std::uint16_t code = static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
  if (masked) code ^= static_cast<std::uint16_t>((b[2] << 8) | b[3]);
  return code;
}

// The test's end of one TCP pair: non-blocking, polled between turns of the
// proxy's io_context.
struct Peer {
  tcp::socket socket;
  Bytes out;  // not yet sent
  std::size_t sent = 0;
  Bytes in;  // received
  bool eof = false;
  bool reading = true;  // a slow reader stops taking bytes
  bool fin = false;     // end the write side once `out` is sent
  bool fin_sent = false;

  explicit Peer(tcp::socket s) : socket(std::move(s)) { socket.non_blocking(true); }

  void send(const Bytes& b) { out.insert(out.end(), b.begin(), b.end()); }
  std::size_t unsent() const { return out.size() - sent; }

  void step() {
    boost::system::error_code ec;
    while (sent < out.size()) {
      std::size_t n = socket.write_some(net::buffer(out.data() + sent, out.size() - sent), ec);
      if (ec) break;
      sent += n;
    }
    if (fin && !fin_sent && sent == out.size()) {
      fin_sent = true;
      socket.shutdown(tcp::socket::shutdown_send, ec);
    }
    while (reading && !eof && socket.is_open()) {
      std::uint8_t buf[64 * 1024];
      std::size_t n = socket.read_some(net::buffer(buf), ec);
      if (ec == net::error::would_block) break;
      if (ec) {
        eof = true;
        break;
      }
      in.insert(in.end(), buf, buf + n);
    }
  }
  void shutdown_send() { fin = true; }
  void close() {
    boost::system::error_code ignored;
    socket.close(ignored);
  }
};

class TunnelTest : public ::testing::Test {
 protected:
  static ProxyConfig config() {
    ProxyConfig c;
    c.relay_buffer_bytes = 16 * 1024;
    c.close_timeout = std::chrono::milliseconds(3000);
    return c;
  }

  TunnelTest() : gateway_(config()) {
    gateway_.set_session_end_hook([this](const SessionSummary& s) { summary_ = s; });
  }

  ~TunnelTest() override {
    if (tunnel_) {
      // Whatever a test left open ends here, within the close timeout.
      client_->close();
      upstream_->close();
      run_until([&] { return summary_.has_value(); });
    }
    tunnel_.reset();
  }

  // Two connected loopback sockets: {far end for the test, end for the proxy}.
  std::pair<tcp::socket, WorkerSocket> pair() {
    tcp::acceptor acceptor(ioc_, tcp::endpoint(net::ip::address_v4::loopback(), 0));
    tcp::socket far(ioc_);
    far.connect(acceptor.local_endpoint());
    WorkerSocket near(ioc_);
    acceptor.accept(near);
    return {std::move(far), std::move(near)};
  }

  // Small socket buffers, to make a receiver that does not read back up.
  template <class Socket>
  static void small_buffers(Socket& s) {
    s.set_option(net::socket_base::send_buffer_size(64 * 1024));
    s.set_option(net::socket_base::receive_buffer_size(64 * 1024));
  }

  void open(bool small = false) {
    auto [client_far, client_near] = pair();
    auto [upstream_far, upstream_near] = pair();
    if (small) {
      for (tcp::socket* s : {&client_far, &upstream_far}) small_buffers(*s);
      for (WorkerSocket* s : {&client_near, &upstream_near}) small_buffers(*s);
    }
    client_.emplace(std::move(client_far));
    upstream_.emplace(std::move(upstream_far));
    ASSERT_EQ(gateway_.try_admit("127.0.0.1"), Gateway::Admission::ok);  // as the listener does
    SessionSummary summary;
    summary.correlation_id = "tunnel-test";
    TunnelParams params{.client = AnyStream(std::move(client_near)),
                        .upstream = AnyStream(std::move(upstream_near)),
                        .summary = std::move(summary),
                        .deflate = false,
                        .client_early = {},
                        .upstream_early = {},
                        .client_ip = "127.0.0.1",
                        .load = {},
                        .upstream_lease = {}};
    tunnel_ = std::make_shared<Tunnel>(gateway_, std::move(params));
    tunnel_->start();
  }

  // Turns the proxy's io_context and both peers until `done`, at most 10 s.
  bool run_until(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      client_->step();
      upstream_->step();
      if (done()) return true;
      if (ioc_.stopped()) ioc_.restart();
      // Block briefly only when nothing was ready.
      if (ioc_.poll() == 0) ioc_.run_for(std::chrono::milliseconds(1));
    }
    return done();
  }

  // Turns everything for a while without a goal.
  void settle(std::chrono::milliseconds d = std::chrono::milliseconds(100)) {
    const auto until = std::chrono::steady_clock::now() + d;
    run_until([&] { return std::chrono::steady_clock::now() >= until; });
  }

  PumpState c2u() const { return tunnel_->pump_state(Direction::client_to_upstream); }
  PumpState u2c() const { return tunnel_->pump_state(Direction::upstream_to_client); }

  Gateway gateway_;
  net::io_context ioc_;
  std::optional<Peer> client_;
  std::optional<Peer> upstream_;
  std::shared_ptr<Tunnel> tunnel_;
  std::optional<SessionSummary> summary_;
};

TEST_F(TunnelTest, SizeDoesNotGrow) {
#if defined(__x86_64__) && defined(__GLIBCXX__)
  EXPECT_LE(sizeof(Tunnel), kTunnelBytes);
#endif
  EXPECT_EQ(sizeof(PumpState), 4u);
}

TEST_F(TunnelTest, TextRelayedByteExactEachWay) {
  open();
  EXPECT_EQ(c2u().read, Read::waiting);
  EXPECT_EQ(u2c().read, Read::waiting);

  const Bytes up = text("hello upstream", true);
  client_->send(up);
  ASSERT_TRUE(run_until([&] { return upstream_->in.size() >= up.size(); }));
  EXPECT_EQ(upstream_->in, up);

  const Bytes down = text("hello client", false);
  upstream_->send(down);
  ASSERT_TRUE(run_until([&] { return client_->in.size() >= down.size(); }));
  EXPECT_EQ(client_->in, down);

  settle(std::chrono::milliseconds(20));
  for (const PumpState& s : {c2u(), u2c()}) {
    // A short message drained the socket: the pump waits for readability.
    EXPECT_EQ(s.read, Read::waiting);
    EXPECT_EQ(s.write, Write::idle);
    EXPECT_EQ(s.own_close, OwnClose::none);
    EXPECT_EQ(s.cut, Cut::none);
  }
  // An idle session's three pending operations are held in the session.
  EXPECT_TRUE(tunnel_->waits_in_slots());
  EXPECT_FALSE(summary_);
}

TEST_F(TunnelTest, MessageLargerThanTheBufferRelayedExactly) {
  open();
  const Bytes payload = pattern(100 * 1024 + 3);  // six 16 KiB buffers and a bit
  const Bytes up = frame(0x2, payload, true);
  const Bytes down = frame(0x2, payload, false);
  client_->send(up);
  upstream_->send(down);
  ASSERT_TRUE(run_until(
      [&] { return upstream_->in.size() >= up.size() && client_->in.size() >= down.size(); }));
  EXPECT_EQ(upstream_->in, up);
  EXPECT_EQ(client_->in, down);
  EXPECT_NE(c2u().read, Read::ended);
  EXPECT_NE(u2c().read, Read::ended);
}

TEST_F(TunnelTest, ClientCloseEchoedEndsBothSides) {
  open();
  const Bytes c = close_frame(1000, true);
  client_->send(c);
  ASSERT_TRUE(run_until([&] { return upstream_->in.size() >= c.size(); }));
  EXPECT_EQ(upstream_->in, c);

  const Bytes echo = close_frame(1000, false);
  upstream_->send(echo);
  ASSERT_TRUE(run_until([&] { return client_->in.size() >= echo.size(); }));
  EXPECT_EQ(client_->in, echo);

  // The server ends TCP first; the proxy passes the end on, the client
  // follows.
  upstream_->shutdown_send();
  ASSERT_TRUE(run_until([&] { return client_->eof; }));
  EXPECT_EQ(u2c().read, Read::ended);
  EXPECT_EQ(u2c().write, Write::ended);
  client_->shutdown_send();
  ASSERT_TRUE(run_until([&] { return upstream_->eof && summary_.has_value(); }));

  EXPECT_EQ(summary_->code, 1000);
  EXPECT_EQ(summary_->initiator, Initiator::client);
  EXPECT_TRUE(summary_->close_handshake_complete);
  EXPECT_EQ(summary_->proxy_close_to_client, 0);
  for (const PumpState& s : {c2u(), u2c()}) {
    EXPECT_EQ(s.read, Read::ended);
    EXPECT_EQ(s.write, Write::ended);
    EXPECT_EQ(s.own_close, OwnClose::none);
    EXPECT_EQ(s.cut, Cut::none);
  }
}

TEST_F(TunnelTest, UpstreamEofWithoutCloseGivesClient1014) {
  open();
  upstream_->shutdown_send();
  ASSERT_TRUE(run_until([&] { return client_->eof; }));
  EXPECT_EQ(close_code(client_->in), kCloseBadGateway);
  EXPECT_EQ(client_->in.size(), 4u + std::string_view("upstream went away").size());
  EXPECT_EQ(u2c().read, Read::ended);
  EXPECT_EQ(u2c().write, Write::ended);
  EXPECT_EQ(u2c().own_close, OwnClose::sent);
  // The ended direction gave its relay buffer back before the session ends.
  EXPECT_FALSE(tunnel_->holds_buffer(Direction::upstream_to_client));
  EXPECT_FALSE(summary_);

  client_->close();
  ASSERT_TRUE(run_until([&] { return summary_.has_value(); }));
  EXPECT_EQ(summary_->code, kCloseAbnormal);
  EXPECT_EQ(summary_->initiator, Initiator::upstream);
  EXPECT_EQ(summary_->proxy_close_to_client, kCloseBadGateway);
  EXPECT_FALSE(summary_->close_handshake_complete);
  EXPECT_EQ(c2u().read, Read::ended);
  EXPECT_EQ(u2c().read, Read::ended);
}

TEST_F(TunnelTest, UpstreamEofMidFrameEndsClientTcpBare) {
  open();
  // A frame header announcing 1000 bytes, then 10 of them, then FIN.
  Bytes partial = frame(0x2, pattern(1000), false);
  partial.resize(4 + 10);
  upstream_->send(partial);
  upstream_->shutdown_send();
  ASSERT_TRUE(run_until([&] { return client_->eof; }));
  // No close frame can follow half a frame: the client gets the bytes and
  // a bare TCP end.
  EXPECT_EQ(client_->in, partial);
  EXPECT_EQ(u2c().read, Read::ended);
  EXPECT_EQ(u2c().write, Write::ended);
  EXPECT_EQ(u2c().own_close, OwnClose::none);

  client_->close();
  ASSERT_TRUE(run_until([&] { return summary_.has_value(); }));
  EXPECT_EQ(summary_->code, kCloseAbnormal);
  EXPECT_EQ(summary_->initiator, Initiator::upstream);
  EXPECT_EQ(summary_->proxy_close_to_client, 0);
}

TEST_F(TunnelTest, UnmaskedClientFrameCutWith1002) {
  open();
  const Bytes ok = text("fine", true);
  client_->send(ok);
  ASSERT_TRUE(run_until([&] { return upstream_->in.size() >= ok.size(); }));

  client_->send(text("unmasked", false));
  ASSERT_TRUE(run_until([&] { return !client_->in.empty(); }));
  EXPECT_EQ(close_code(client_->in), kCloseProtocolError);
  ASSERT_TRUE(run_until([&] { return upstream_->in.size() > ok.size(); }));
  // The offending frame never reached the upstream: our 1001 follows the
  // good frame directly.
  EXPECT_TRUE(std::equal(ok.begin(), ok.end(), upstream_->in.begin()));
  EXPECT_EQ(close_code(Bytes(upstream_->in.begin() + static_cast<std::ptrdiff_t>(ok.size()),
                             upstream_->in.end())),
            kCloseGoingAway);
  EXPECT_EQ(c2u().cut, Cut::cut);
  EXPECT_EQ(c2u().own_close, OwnClose::sent);
  EXPECT_EQ(u2c().cut, Cut::none);
  EXPECT_EQ(u2c().own_close, OwnClose::sent);

  // Whatever else the client sends is dropped.
  client_->send(text("more", true));
  settle(std::chrono::milliseconds(50));
  EXPECT_EQ(upstream_->in.size(), ok.size() + close_frame(kCloseGoingAway, true).size() +
                                      std::string_view("peer violated the protocol").size());

  upstream_->close();
  client_->close();
  ASSERT_TRUE(run_until([&] { return summary_.has_value(); }));
  EXPECT_EQ(summary_->code, kCloseProtocolError);
  EXPECT_EQ(summary_->initiator, Initiator::proxy);
  EXPECT_EQ(c2u().read, Read::ended);
  EXPECT_EQ(c2u().cut, Cut::cut);
}

TEST_F(TunnelTest, DrainSends1001BothWays) {
  open();
  tunnel_->drain();
  ASSERT_TRUE(run_until([&] { return !client_->in.empty() && !upstream_->in.empty(); }));
  EXPECT_EQ(close_code(client_->in), kCloseGoingAway);
  EXPECT_EQ(close_code(upstream_->in), kCloseGoingAway);
  EXPECT_EQ(client_->in[1] & 0x80, 0);       // to the client: unmasked
  EXPECT_EQ(upstream_->in[1] & 0x80, 0x80);  // to the upstream: masked
  EXPECT_EQ(c2u().own_close, OwnClose::sent);
  EXPECT_EQ(u2c().own_close, OwnClose::sent);
  EXPECT_EQ(c2u().write, Write::idle);
  EXPECT_EQ(u2c().write, Write::idle);

  // Both peers answer and end TCP: a complete handshake, the proxy's close.
  client_->send(close_frame(kCloseGoingAway, true));
  upstream_->send(close_frame(kCloseGoingAway, false));
  client_->shutdown_send();
  upstream_->shutdown_send();
  ASSERT_TRUE(run_until([&] { return summary_.has_value(); }));
  EXPECT_EQ(summary_->code, kCloseGoingAway);
  EXPECT_EQ(summary_->initiator, Initiator::proxy);
  EXPECT_TRUE(summary_->close_handshake_complete);
  for (const PumpState& s : {c2u(), u2c()}) {
    EXPECT_EQ(s.read, Read::ended);
    EXPECT_EQ(s.write, Write::ended);
  }
}

TEST_F(TunnelTest, SlowReaderHoldsTheOtherPumpInItsWrite) {
  open(/*small=*/true);
  client_->reading = false;
  const Bytes payload = pattern(2 * 1024 * 1024);  // several times what the buffers hold
  const Bytes down = frame(0x2, payload, false);
  upstream_->send(down);
  settle(std::chrono::milliseconds(300));

  // The client's buffers are full: the pump has a write in flight and reads
  // nothing more, so the upstream is held back too.
  EXPECT_EQ(u2c().write, Write::writing);
  EXPECT_EQ(u2c().read, Read::idle);
  EXPECT_GT(upstream_->unsent(), 0u);
  const std::size_t unsent = upstream_->unsent();
  settle(std::chrono::milliseconds(100));
  EXPECT_EQ(upstream_->unsent(), unsent);
  // The other direction is untouched.
  EXPECT_EQ(c2u().read, Read::waiting);
  EXPECT_EQ(c2u().write, Write::idle);

  client_->reading = true;
  ASSERT_TRUE(run_until([&] { return client_->in.size() >= down.size(); }));
  EXPECT_EQ(client_->in, down);
  settle(std::chrono::milliseconds(20));
  EXPECT_EQ(u2c().write, Write::idle);
  EXPECT_NE(u2c().read, Read::ended);
}

}  // namespace
}  // namespace wsgate::proxy
