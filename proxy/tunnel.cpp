#include "proxy/tunnel.hpp"

#include <algorithm>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/logging.hpp"
#include "common/redact.hpp"
#include "proxy/buffer_pool.hpp"

namespace wsgate::proxy {

namespace net = boost::asio;
using Clock = std::chrono::steady_clock;
using tap::Direction;

namespace {

tap::TapConfig tap_config(const ProxyConfig& cfg, Direction d, bool deflate) {
  tap::TapConfig t;
  t.direction = d;
  t.deflate_negotiated = deflate;
  t.max_message_bytes = cfg.max_message_bytes;
  t.max_fragments_per_message = cfg.max_fragments_per_message;
  t.capture_text_bytes = d == Direction::upstream_to_client ? cfg.last_message_capture_bytes : 0;
  t.report_frames = cfg.flight_recorder_frames > 0;
  // At most FlightLog::kMaxTextPrefix (124): the option's range.
  t.text_prefix_bytes = static_cast<std::uint8_t>(
      cfg.flight_recorder_frames > 0 ? cfg.flight_recorder_text_bytes : 0);
  return t;
}

// Counters in /metrics and /connections are at most this old at a scrape.
constexpr std::chrono::seconds kStatsFreshness{1};

// A short read below this many bytes means the sender has finished a
// message and waits for the reply (see Pump::drained).
constexpr std::size_t kStreamingRead = 2048;

constexpr std::size_t kUpstreamTlsBuffer = 16 * 1024;

// Reads one pump makes in a row while its writes complete at once, before
// it yields the thread (a fast sender could otherwise hold it).
constexpr int kReadsPerTurn = 16;

bool is_normal_end(const boost::system::error_code& ec) {
  return ec == net::error::eof || ec == net::ssl::error::stream_truncated;
}

}  // namespace

// ---------------------------------------------------------------- Pump

Tunnel::Pump::Pump(Tunnel& t, Direction d, AnyStream& src, AnyStream& dst,
                   const tap::TapConfig& cfg, std::size_t buffer_bytes)
    : tunnel(t),
      dir(d),
      from(src),
      to(dst),
      tap(cfg, this),
      // An upstream TLS stream holds its buffer for the whole session;
      // 16 KiB holds a full TLS record.
      buffer_size(src.is_upstream_tls() ? std::min(buffer_bytes, kUpstreamTlsBuffer)
                                        : buffer_bytes),
      pings(t.gateway_.config().ping_rtt_window) {}

void Tunnel::Pump::on_frame(const tap::FrameHeader& h) {
  // last_activity_ was stamped by the read that brought this header.
  tunnel.recorder_.record(dir, h,
                          std::chrono::duration_cast<std::chrono::milliseconds>(
                              tunnel.last_activity_ - tunnel.started_));
}

void Tunnel::Pump::on_text_prefix(std::span<const uint8_t> bytes, bool cut) {
  tunnel.recorder_.record_text(dir, bytes, cut);
}

void Tunnel::Pump::on_close(uint16_t code, std::string_view reason) {
  tunnel.recorder_.record_close(dir, code, reason);
  tunnel.record_close(
      code, reason, dir == Direction::client_to_upstream ? Initiator::client : Initiator::upstream);
}

void Tunnel::Pump::on_ping(std::span<const uint8_t> payload) {
  if (pings.on_ping(payload, Clock::now())) tunnel.gateway_.metrics().ping_rtt_evicted.Increment();
}

void Tunnel::Pump::on_pong(std::span<const uint8_t> payload) {
  // Unsolicited pongs (heartbeats) and stale ones give no sample.
  if (auto rtt = tunnel.other(*this).pings.on_pong(payload, Clock::now()))
    tunnel.gateway_.metrics().ping_rtt_seconds.Observe(std::chrono::duration<double>(*rtt).count());
}

// ---------------------------------------------------------------- Tunnel

Tunnel::Tunnel(Gateway& gateway, TunnelParams params)
    : gateway_(gateway),
      client_(std::move(params.client)),
      upstream_(std::move(params.upstream)),
      summary_(std::move(params.summary)),
      client_ip_(std::move(params.client_ip)),
      load_(std::move(params.load)),
      upstream_lease_(std::move(params.upstream_lease)),
      c2u_(*this, Direction::client_to_upstream, client_, upstream_,
           tap_config(gateway.config(), Direction::client_to_upstream, params.deflate),
           gateway.config().relay_buffer_bytes),
      u2c_(*this, Direction::upstream_to_client, upstream_, client_,
           tap_config(gateway.config(), Direction::upstream_to_client, params.deflate),
           gateway.config().relay_buffer_bytes),
      timer_(client_.get_executor()),
      executor_(client_.get_executor()),
      recorder_(gateway.config().flight_recorder_frames,
                static_cast<std::uint8_t>(gateway.config().flight_recorder_text_bytes)) {
  c2u_.early = std::move(params.client_early);
  u2c_.early = std::move(params.upstream_early);
}

Tunnel::~Tunnel() {
  if (!finished_) gateway_.release(client_ip_);
}

void Tunnel::start() {
  started_ = last_activity_ = last_log_ = Clock::now();
  registry_id_ = gateway_.add_session(weak_from_this());
  gateway_.metrics().connections_active.Increment();
  WSG_LOG(spdlog::level::info, summary_.correlation_id,
          "session open client={} upstream={} upstream_endpoint={} target={} deflate={}",
          summary_.client, summary_.upstream, summary_.upstream_endpoint, summary_.target,
          c2u_.tap.config().deflate_negotiated);
  if (gateway_.config().tap_mode == TapMode::off) c2u_.at_boundary = u2c_.at_boundary = false;
  for (AnyStream* s : {&client_, &upstream_}) {
    boost::system::error_code ignored;
    if (!s->is_tls()) s->socket().non_blocking(true, ignored);
  }
  for (Pump* p : {&c2u_, &u2c_}) {
    if (p->early.empty())
      do_read(*p);
    else
      forward(*p, reinterpret_cast<const std::uint8_t*>(p->early.data()), p->early.size());
  }
  arm_timer();
  // Its handshake raced a SIGTERM: it goes the way of every other session.
  if (gateway_.draining()) drain();
}

void Tunnel::do_read(Pump& p) {
  // A write that completes at once (do_write) calls back here from inside
  // the read below: loop instead of recursing, and after kReadsPerTurn
  // rounds let the other sessions have the thread.
  using Loop = Pump::ReadLoop;
  if (p.loop != Loop::off) {
    p.loop = Loop::again;
    return;
  }
  for (int round = 1;; ++round) {
    p.loop = Loop::running;
    read_step(p);
    if (p.loop != Loop::again || finished_) break;
    if (round == kReadsPerTurn) {
      p.read_yielded();  // no other read starts meanwhile
      net::post(timer_.get_executor(), [self = shared_from_this(), &p] {
        p.read_returned();
        self->do_read(p);
      });
      break;
    }
  }
  p.loop = Loop::off;
}

void Tunnel::read_step(Pump& p) {
  if (finished_ || !p.can_read()) return;
  if (p.from.is_upstream_tls()) {
    // asio::ssl::stream may hold ciphertext the socket no longer shows, so
    // the upstream TLS side reads into a buffer it keeps.
    if (!p.buffer) p.buffer = BufferPool::take(p.buffer_size);
    return read_into_buffer(p);
  }
  // Plain TCP and the listener's TLS: read what is there now; if nothing
  // is, give the buffer back and wait for readability without one.
  if (p.buffer) {
    boost::system::error_code ec = net::error::would_block;  // when `drained`
    std::size_t n = 0;
    bool error_after_batch = false;  // read again at once: the next read reports it
    if (p.drained) {
      // The last read emptied the socket: wait (see `drained`).
    } else if (p.from.is_server_tls()) {
      auto& tls = p.from.server_tls();
      n = tls.try_read_some(net::buffer(p.buffer.get(), p.buffer_size), ec);
      // OpenSSL needs to write first, or holds a partial record: let the
      // asynchronous read drive it.
      if (ec == net::error::in_progress || (ec == net::error::would_block && tls.has_pending()))
        return read_into_buffer(p);
      // SSL_read returns one record at a time. Take the further records
      // read ahead too, so a client writing small records (Beast: 4 KiB)
      // costs one send per buffer, not one per record. An error stops the
      // batch and shows again on the next read (OpenSSL's errors stick;
      // a close_notify read here is the usual one).
      while (!ec && n < p.buffer_size && tls.has_pending()) {
        boost::system::error_code more_ec;
        std::size_t more =
            tls.try_read_some(net::buffer(p.buffer.get() + n, p.buffer_size - n), more_ec);
        if (more_ec) {
          error_after_batch = more_ec != net::error::would_block;
          break;
        }
        n += more;
      }
    } else {
      n = p.from.socket().read_some(net::buffer(p.buffer.get(), p.buffer_size), ec);
    }
    if (ec != net::error::would_block) {
      if (!ec) {
        if (p.from.is_server_tls()) {
          auto& tls = p.from.server_tls();
          p.drained = !error_after_batch && !tls.has_pending() && tls.socket_drained() &&
                      tls.last_socket_read() < kStreamingRead;
        } else {
          p.drained = n < p.buffer_size && n < kStreamingRead;
        }
      }
      return on_read(p, ec, n);
    }
    BufferPool::give(std::move(p.buffer), p.buffer_size);
  } else if (p.from.is_server_tls() && p.from.server_tls().has_pending()) {
    p.buffer = BufferPool::take(p.buffer_size);
    return read_into_buffer(p);
  }
  wait_readable(p);
}

void Tunnel::wait_readable(Pump& p) {
  p.read_started(PumpState::Read::waiting);
  p.from.socket().async_wait(
      net::socket_base::wait_read,
      net::bind_allocator(OpSlotAllocator(p.op_slot),
                          [self = shared_from_this(), &p](boost::system::error_code ec) {
                            self->on_readable(p, ec);
                          }));
}

void Tunnel::read_into_buffer(Pump& p) {
  p.read_started(PumpState::Read::reading);
  p.from.async_read_some(net::buffer(p.buffer.get(), p.buffer_size),
                         net::bind_allocator(OpSlotAllocator(p.op_slot),
                                             [self = shared_from_this(), &p](
                                                 boost::system::error_code ec, std::size_t n) {
                                               self->on_read(p, ec, n);
                                             }));
}

void Tunnel::on_readable(Pump& p, boost::system::error_code ec) {
  p.read_returned();
  if (finished_) return;
  if (ec) return on_read_end(p, ec);
  p.buffer = BufferPool::take(p.buffer_size);
  p.drained = false;  // readable now
  do_read(p);
}

void Tunnel::on_read(Pump& p, boost::system::error_code ec, std::size_t n) {
  p.read_returned();
  if (finished_) return;
  if (ec) return on_read_end(p, ec);
  last_activity_ = Clock::now();
  if (p.state.own_close == PumpState::OwnClose::sent || p.state.cut != PumpState::Cut::none) {
    // We already closed this direction towards the receiver: nothing more
    // may reach it. Keep watching for the sender's close, drop the bytes.
    if (p.state.cut == PumpState::Cut::none && gateway_.config().tap_mode != TapMode::off)
      p.tap.feed(p.buffer.get(), n);
    return do_read(p);
  }
  forward(p, p.buffer.get(), n);
}

void Tunnel::forward(Pump& p, const std::uint8_t* data, std::size_t n) {
  std::size_t send = n;
  p.raw_bytes += n;
  const TapMode mode = gateway_.config().tap_mode;
  if (mode != TapMode::off) {
    tap::Violation v = p.tap.feed(data, n);
    if (v != tap::Violation::none && mode == TapMode::enforce) {
      // Relay up to the first byte of the offending frame, which is a frame
      // boundary, so the close frames we inject next are well-formed.
      std::uint64_t chunk_start = p.tap.stats().bytes - n;
      std::uint64_t cut = p.tap.first_violation_offset() - chunk_start;
      send = static_cast<std::size_t>(std::min<std::uint64_t>(cut, n));
      p.state.cut = PumpState::Cut::cutting;
    }
  }
  if (send > 0) return do_write(p, data, send);
  on_write(p, {});
}

void Tunnel::do_write(Pump& p, const std::uint8_t* data, std::size_t n) {
  p.write_started();
  // Most messages fit the socket's send buffer: send now and skip Asio's
  // write operation and its posted completion (a fifth of the relay's
  // user-space instructions). Whatever the socket does not take goes the
  // asynchronous way.
  boost::system::error_code now_ec;
  std::size_t sent = p.to.try_write_some(net::buffer(data, n), now_ec);
  if (sent == n) return on_write(p, {});
  if (now_ec && now_ec != net::error::would_block && now_ec != net::error::in_progress)
    return on_write(p, now_ec);
  net::async_write(p.to, net::buffer(data + sent, n - sent),
                   [self = shared_from_this(), &p](boost::system::error_code ec, std::size_t) {
                     self->on_write(p, ec);
                   });
}

void Tunnel::on_write(Pump& p, boost::system::error_code ec) {
  p.write_returned();
  if (finished_) return;
  if (ec) {
    // The receiver is gone. Tell the surviving side, as if its peer's read
    // had ended, and stop this direction.
    p.output_ended();
    p.read_ended();
    Initiator lost =
        p.dir == Direction::client_to_upstream ? Initiator::upstream : Initiator::client;
    summary_.end_detail =
        std::string("write to ") + std::string(to_string(lost)) + " failed: " + ec.message();
    record_close(kCloseAbnormal, "", lost);
    Pump& back = other(p);
    inject_close(back, lost == Initiator::upstream ? kCloseBadGateway : kCloseGoingAway,
                 lost == Initiator::upstream ? "upstream went away" : "client went away", true);
    return maybe_finish();
  }
  if (!p.early.empty()) std::string().swap(p.early);  // the handshake leftovers are out
  if (gateway_.config().tap_mode != TapMode::off)
    p.at_boundary = p.state.cut != PumpState::Cut::none || p.tap.at_frame_boundary();
  flush_stats_if_due(p);
  if (p.state.cut == PumpState::Cut::cutting) {
    p.state.cut = PumpState::Cut::cut;
    // Frames after a relayed close are dropped but need no close of ours:
    // the close handshake is already under way.
    if (p.tap.first_violation() != tap::Violation::frame_after_close)
      on_violation(p, p.tap.first_violation());
  } else if (p.state.own_close == PumpState::OwnClose::queued) {
    flush_inject(p);
    if (p.writing()) return;
  }
  if (p.end_due()) end_output(p);
  do_read(p);
  maybe_finish();
}

void Tunnel::on_read_end(Pump& p, boost::system::error_code ec) {
  p.read_ended();
  // Nothing reads into the buffer again, and no write uses it (a pump reads
  // only between its writes). Give it back now rather than at finish(),
  // which may be a close timeout away: in a close storm every session would
  // hold one until then.
  BufferPool::give(std::move(p.buffer), p.buffer_size);
  Initiator side = p.dir == Direction::client_to_upstream ? Initiator::client : Initiator::upstream;
  if (p.tap.close_seen() || p.state.own_close == PumpState::OwnClose::sent) {
    // Orderly: the sender closed (or we closed towards it) and then ended
    // TCP. Pass the end on.
    end_output(p);
  } else {
    if (summary_.end_detail.empty())
      summary_.end_detail =
          std::string(to_string(side)) + (is_normal_end(ec) ? " ended TCP without a close frame"
                                                            : " connection error: " + ec.message());
    record_close(kCloseAbnormal, "", side);
    if (side == Initiator::upstream)
      inject_close(p, kCloseBadGateway, "upstream went away", true);
    else
      inject_close(p, kCloseGoingAway, "client went away", true);
  }
  begin_closing();
  maybe_finish();
}

void Tunnel::inject_close(Pump& p, std::uint16_t code, std::string_view reason,
                          bool then_shutdown) {
  if (p.output_over()) return;
  if (p.state.own_close != PumpState::OwnClose::none || close_relayed(p) ||
      gateway_.config().tap_mode == TapMode::off) {
    // A close already went this way (or we cannot find frame boundaries).
    if (then_shutdown) end_output(p);
    return;
  }
  if (!p.inject) p.inject = std::make_unique<std::uint8_t[]>(kMaxCloseFrame);
  static_assert(kMaxCloseFrame <= 255, "inject_len is one byte");
  p.inject_len = static_cast<std::uint8_t>(
      build_close_frame(p.inject.get(), code, reason, p.dir == Direction::client_to_upstream));
  p.state.own_close = PumpState::OwnClose::queued;
  if (then_shutdown) p.end_after_writes();
  if (!p.writing()) flush_inject(p);
}

bool Tunnel::close_relayed(const Pump& p) const {
  // A close the tap saw went on to the receiver unless enforce mode cut it:
  // only a violation after the close (frame_after_close) leaves it relayed.
  return p.tap.close_seen() && (p.state.cut == PumpState::Cut::none ||
                                p.tap.first_violation() == tap::Violation::frame_after_close);
}

void Tunnel::flush_inject(Pump& p) {
  if (p.state.own_close != PumpState::OwnClose::queued || p.writing()) return;
  if (!p.at_boundary) {
    // Mid-frame. A live sender will reach a boundary; a dead one never will,
    // and then a bare TCP end is all that is left.
    if (p.read_over()) {
      p.state.own_close = PumpState::OwnClose::none;
      end_output(p);
    }
    return;
  }
  p.state.own_close = PumpState::OwnClose::sent;
  p.write_started();
  net::async_write(p.to, net::buffer(p.inject.get(), p.inject_len),
                   [self = shared_from_this(), &p](boost::system::error_code ec, std::size_t) {
                     p.write_returned();
                     if (self->finished_) return;
                     if (ec) p.output_ended();
                     self->note_proxy_close(p, ec);
                     if (p.end_due()) self->end_output(p);
                     self->do_read(p);
                     self->maybe_finish();
                   });
}

void Tunnel::note_proxy_close(const Pump& p, boost::system::error_code ec) {
  // The client got our close in place of the upstream's missing one: that
  // is the code it saw (the frame is unmasked: code in bytes 2-3).
  if (ec || p.dir != Direction::upstream_to_client || p.inject_len < 4 ||
      summary_.code != kCloseAbnormal || summary_.initiator != Initiator::upstream)
    return;
  summary_.proxy_close_to_client = static_cast<std::uint16_t>((p.inject[2] << 8) | p.inject[3]);
}

void Tunnel::end_output(Pump& p) {
  if (p.output_over()) return;
  if (p.writing() || p.state.own_close == PumpState::OwnClose::queued) {
    p.end_after_writes();
    return;
  }
  p.output_ended();
  p.to.shutdown_send();
}

void Tunnel::record_close(std::uint16_t code, std::string_view reason, Initiator who,
                          Precedence precedence) {
  if (close_recorded_ && precedence == Precedence::first_wins) return;
  close_recorded_ = true;
  summary_.code = code;
  summary_.reason = std::string(reason);
  summary_.initiator = who;
  begin_closing();
}

void Tunnel::begin_closing() {
  if (closing_) return;
  closing_ = true;
  close_deadline_ = Clock::now() + gateway_.config().close_timeout;
  arm_timer();
}

void Tunnel::on_violation(Pump& p, tap::Violation v) {
  const bool size = v == tap::Violation::message_too_big || v == tap::Violation::too_many_fragments;
  const std::uint16_t code = size ? kCloseTooBig : kCloseProtocolError;
  Initiator sender =
      p.dir == Direction::client_to_upstream ? Initiator::client : Initiator::upstream;
  summary_.end_detail = "protocol violation " + std::string(tap::to_string(v)) + " by " +
                        std::string(to_string(sender));
  WSG_LOG(spdlog::level::warn, summary_.correlation_id, "{}; closing with {}", summary_.end_detail,
          code);
  // The offending frame may itself have been a close (bad code, one-byte
  // payload, ...): it was cut, so the proxy's close is the one that counts.
  record_close(code, tap::to_string(v), Initiator::proxy, Precedence::verdict);
  inject_close(other(p), code, tap::to_string(v), false);
  inject_close(p, kCloseGoingAway, "peer violated the protocol", false);
}

void Tunnel::drain() {
  net::post(timer_.get_executor(), [self = shared_from_this()] {
    if (self->finished_ || self->closing_) return;
    self->draining_ = true;
    self->summary_.end_detail = "proxy shutting down";
    self->record_close(kCloseGoingAway, "going away", Initiator::proxy);
    self->inject_close(self->c2u_, kCloseGoingAway, "going away", false);
    self->inject_close(self->u2c_, kCloseGoingAway, "going away", false);
  });
}

void Tunnel::arm_timer() {
  if (finished_) return;
  const auto& cfg = gateway_.config();
  auto next = last_log_ + cfg.long_session_log_interval;
  if (closing_)
    next = std::min(next, close_deadline_);
  else if (cfg.idle_timeout.count() > 0)
    next = std::min(next, last_activity_ + cfg.idle_timeout);
  for (const Pump* p : {&c2u_, &u2c_})
    if (stats_unflushed(*p)) next = std::min(next, p->last_flush + kStatsFreshness);
  timer_.expires_at(next);
  timer_.async_wait(net::bind_allocator(
      TimerSlotAllocator(timer_slot_),
      [self = shared_from_this()](boost::system::error_code ec) { self->on_timer(ec); }));
}

void Tunnel::on_timer(boost::system::error_code ec) {
  if (ec || finished_) return;
  const auto& cfg = gateway_.config();
  auto now = Clock::now();
  if (closing_ && now >= close_deadline_) {
    gateway_.metrics().timeout(TimeoutKind::close_handshake).Increment();
    if (summary_.end_detail.empty()) summary_.end_detail = "close handshake timed out";
    WSG_LOG(spdlog::level::info, summary_.correlation_id, "close handshake timed out after {} ms",
            cfg.close_timeout.count());
    return finish();
  }
  if (!closing_ && cfg.idle_timeout.count() > 0 && now - last_activity_ >= cfg.idle_timeout) {
    gateway_.metrics().timeout(TimeoutKind::idle).Increment();
    summary_.end_detail = "idle timeout";
    WSG_LOG(spdlog::level::info, summary_.correlation_id, "idle timeout after {} ms",
            cfg.idle_timeout.count());
    record_close(kCloseGoingAway, "idle timeout", Initiator::proxy);
    inject_close(c2u_, kCloseGoingAway, "idle timeout", false);
    inject_close(u2c_, kCloseGoingAway, "idle timeout", false);
  }
  for (Pump* p : {&c2u_, &u2c_})
    if (stats_unflushed(*p) && now - p->last_flush >= kStatsFreshness) flush_stats(*p, now);
  if (now - last_log_ >= cfg.long_session_log_interval) {
    last_log_ = now;
    flush_stats(c2u_);
    flush_stats(u2c_);
    WSG_LOG(spdlog::level::info, summary_.correlation_id,
            "session alive client={} upstream={} age_s={} c2u_frames={} c2u_bytes={} "
            "u2c_frames={} u2c_bytes={}",
            summary_.client, summary_.upstream,
            std::chrono::duration_cast<std::chrono::seconds>(now - started_).count(),
            c2u_.published_frames.load(), c2u_.published_bytes.load(), u2c_.published_frames.load(),
            u2c_.published_bytes.load());
  }
  arm_timer();
}

void Tunnel::maybe_finish() {
  if (finished_) return;
  bool c2u_done = c2u_.read_over() && !c2u_.writing();
  bool u2c_done = u2c_.read_over() && !u2c_.writing();
  if (c2u_done && u2c_done) finish();
}

void Tunnel::flush_stats(Pump& p) { flush_stats(p, Clock::now()); }

void Tunnel::flush_stats_if_due(Pump& p) {
  // last_activity_ was stamped by the read this write relays: no second
  // clock read per message.
  if (last_activity_ - p.last_flush >= kStatsFreshness)
    flush_stats(p, last_activity_);
  else if (timer_.expiry() > p.last_flush + kStatsFreshness)
    arm_timer();  // the rest is flushed by the timer if no write comes: once a second at most
}

bool Tunnel::stats_unflushed(const Pump& p) const {
  return (gateway_.config().tap_mode == TapMode::off ? p.raw_bytes : p.tap.stats().bytes) !=
         p.flushed_bytes;
}

void Tunnel::flush_stats(Pump& p, Clock::time_point now) {
  p.last_flush = now;
  auto& m = gateway_.metrics();
  const tap::TapStats& s = p.tap.stats();
  std::uint64_t frames = 0;
  for (unsigned op = 0; op < 16; ++op) {
    frames += s.frames[op];
    const auto low = static_cast<std::uint32_t>(s.frames[op]);
    if (const std::uint32_t d = low - p.flushed_frames[op])
      m.frames(p.dir, op).Increment(static_cast<double>(d));
    p.flushed_frames[op] = low;
  }
  // With the tap off, bytes are all we know; count them from the pump.
  std::uint64_t bytes = gateway_.config().tap_mode == TapMode::off ? p.raw_bytes : s.bytes;
  if (auto d = bytes - p.flushed_bytes) m.bytes(p.dir).Increment(static_cast<double>(d));
  if (s.violations != p.flushed_violations) {
    if (!p.flushed_violation_kinds)
      p.flushed_violation_kinds = std::make_unique<std::uint64_t[]>(tap::kViolationKinds);
    for (std::size_t k = 1; k < tap::kViolationKinds; ++k) {
      const std::uint64_t count = p.tap.violations_of(static_cast<tap::Violation>(k));
      if (auto d = count - p.flushed_violation_kinds[k])
        m.violation(p.dir, static_cast<tap::Violation>(k)).Increment(static_cast<double>(d));
      p.flushed_violation_kinds[k] = count;
    }
    p.flushed_violations = s.violations;
  }
  p.flushed_bytes = bytes;
  p.published_frames.store(frames, std::memory_order_relaxed);
  p.published_bytes.store(bytes, std::memory_order_relaxed);
}

void Tunnel::finish() {
  if (finished_) return;
  finished_ = true;
  timer_.cancel();
  flush_stats(c2u_);
  flush_stats(u2c_);
  client_.close();
  upstream_.close();
  for (Pump* p : {&c2u_, &u2c_}) BufferPool::give(std::move(p->buffer), p->buffer_size);

  summary_.duration =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_);
  summary_.close_handshake_complete = c2u_.tap.close_seen() && u2c_.tap.close_seen();
  for (Pump* p : {&c2u_, &u2c_}) {
    auto& d = p->dir == Direction::client_to_upstream ? summary_.client_to_upstream
                                                      : summary_.upstream_to_client;
    d.frames = p->published_frames.load();
    d.bytes = p->published_bytes.load();
    d.messages = p->tap.stats().messages;
    d.violations = p->tap.stats().violations;
  }
  summary_.last_upstream_message = std::string(u2c_.tap.last_text());
  summary_.last_upstream_message_truncated = u2c_.tap.last_text_truncated();
  summary_.last_upstream_message_compressed = u2c_.tap.last_text_compressed();
  summary_.flight = recorder_.release();

  gateway_.metrics().connections_active.Decrement();
  gateway_.remove_session(registry_id_);
  gateway_.release(client_ip_);
  upstream_lease_.reset();
  gateway_.report_session_end(summary_);
}

nlohmann::json Tunnel::detail() const {
  auto j = snapshot();
  bool complete = true;
  j["frames"] = recorder_.to_json(&complete);
  if (!complete) {
    j["frames_incomplete"] = true;
    gateway_.metrics().flight_recorder_busy_reads.Increment();
  }
  return j;
}

nlohmann::json Tunnel::snapshot() const {
  auto age = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_);
  return {{"correlation_id", summary_.correlation_id},
          {"client", summary_.client},
          {"route", summary_.route},
          {"upstream", summary_.upstream},
          {"upstream_endpoint", summary_.upstream_endpoint},
          {"target", redact_target(summary_.target)},  // queries carry tokens
          {"age_ms", age.count()},
          {"client_to_upstream",
           {{"frames", c2u_.published_frames.load()}, {"bytes", c2u_.published_bytes.load()}}},
          {"upstream_to_client",
           {{"frames", u2c_.published_frames.load()}, {"bytes", u2c_.published_bytes.load()}}}};
}

}  // namespace wsgate::proxy
