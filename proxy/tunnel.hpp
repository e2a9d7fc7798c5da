#pragma once
// After the 101: bytes flow both ways unchanged through two pumps, each with
// its own frame tap, bounded buffer and at most one write in flight. The
// tunnel owns the close bookkeeping: who closed, with what, and whether the
// close handshake completed.
#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "proxy/close_frame.hpp"
#include "proxy/flight_recorder.hpp"
#include "proxy/gateway.hpp"
#include "proxy/handler_slot.hpp"
#include "proxy/ping_tracker.hpp"
#include "proxy/session_summary.hpp"
#include "proxy/stream.hpp"
#include "proxy/tap/frame_tap.hpp"
#include "proxy/upstream_endpoints.hpp"
#include "proxy/worker_socket.hpp"
#include "proxy/workers.hpp"

namespace wsgate::proxy {

struct TunnelParams {
  AnyStream client;
  AnyStream upstream;
  SessionSummary summary;        // identity fields filled by the handshake
  bool deflate = false;          // permessage-deflate negotiated
  std::string client_early;      // bytes read past the client's request
  std::string upstream_early;    // bytes read past the upstream's 101
  std::string client_ip;         // for the admission count
  Workers::Load load;            // counts the session on its worker
  EndpointLease upstream_lease;  // counts the session on its endpoint until it ends
};

// Where one direction of a tunnel stands, one enum per concern: each names
// the exclusive states of its concern, so no impossible mix can be held.
struct PumpState {
  // Reading from the sender.
  enum class Read : std::uint8_t {
    idle,     // no read in flight: the next do_read starts one
    waiting,  // waiting for readability, no buffer held
    reading,  // an asynchronous read into the buffer is in flight
    yielded,  // the read loop gave up the thread and resumes from a post
    ended,    // EOF or error from the sender, or its receiver failed: no more reads
  };
  // Writing to the receiver: at most one write in flight.
  enum class Write : std::uint8_t {
    idle,
    writing,           // relayed bytes or our close frame in flight
    writing_then_end,  // ...and the write side ends once it and a queued close are out
    idle_then_end,     // the write side ends once a queued close is out (it waits for a
                       // frame boundary), or at once if none is
    ended,             // write side shut (FIN) or a write failed: nothing more goes
  };
  // A close frame of the proxy's own towards the receiver.
  enum class OwnClose : std::uint8_t {
    none,
    queued,  // waits for the write in flight or for a frame boundary
    sent,    // written or being written: what the sender sends next is dropped
  };
  // Enforce mode stopped this direction at a protocol violation.
  enum class Cut : std::uint8_t {
    none,
    cutting,  // the bytes before the offending frame are being written
    cut,      // ...written and the verdict given: what is read is dropped untapped
  };
  Read read = Read::idle;
  Write write = Write::idle;
  OwnClose own_close = OwnClose::none;
  Cut cut = Cut::none;
};
// One byte per concern.
static_assert(sizeof(PumpState) == 4);

class Tunnel : public LiveSession, public std::enable_shared_from_this<Tunnel> {
 public:
  // Sized for the operations Asio builds for a pump's readability wait
  // (112 bytes) and the timer's wait (88) with Boost 1.81 on x86-64;
  // TunnelTest checks an idle session's waits fit.
  static constexpr std::size_t kOpSlotBytes = 112;
  static constexpr std::size_t kTimerSlotBytes = 88;

  Tunnel(Gateway& gateway, TunnelParams params);
  ~Tunnel() override;

  void start();
  nlohmann::json snapshot() const override;
  nlohmann::json detail() const override;
  std::string_view correlation_id() const override { return summary_.correlation_id; }
  void drain() override;
  boost::asio::any_io_executor executor() const override { return executor_; }
  // Read-only view for tests and diagnostics.
  PumpState pump_state(tap::Direction d) const {
    return d == tap::Direction::client_to_upstream ? c2u_.state : u2c_.state;
  }
  // Whether the pump holds a relay buffer (for tests).
  bool holds_buffer(tap::Direction d) const {
    return (d == tap::Direction::client_to_upstream ? c2u_ : u2c_).buffer != nullptr;
  }
  // Whether the pending waits of both pumps and of the timer live in the
  // session's own slots (for tests: they fit).
  bool waits_in_slots() const {
    return c2u_.op_slot.in_use() && u2c_.op_slot.in_use() && timer_slot_.in_use();
  }

 private:
  // One direction: read from `from`, tap, write to `to`.
  struct Pump final : tap::TapSink {
    Pump(Tunnel& t, tap::Direction d, AnyStream& src, AnyStream& dst, const tap::TapConfig& cfg,
         std::size_t buffer_bytes);
    void on_frame(const tap::FrameHeader& h) override;
    void on_text_prefix(std::span<const uint8_t> bytes, bool cut) override;
    void on_close(uint16_t code, std::string_view reason) override;
    void on_ping(std::span<const uint8_t> payload) override;
    void on_pong(std::span<const uint8_t> payload) override;

    Tunnel& tunnel;
    tap::Direction dir;
    AnyStream& from;
    AnyStream& to;
    tap::FrameTap tap;
    std::unique_ptr<std::uint8_t[]> buffer;  // null while idle (plain TCP)
    std::size_t buffer_size;
    std::string early;  // bytes that arrived with the handshake

    // The state, one enum per concern (see PumpState), plus two facts that
    // are not states: `drained`, a hint for the next read, and `at_boundary`,
    // the tap's word on the bytes delivered so far.
    PumpState state;
    // do_read's guard against recursing through a write that completes at
    // once: a fact about the call stack, not about the pump.
    enum class ReadLoop : std::uint8_t { off, running, again } loop = ReadLoop::off;
    // The last read emptied the socket of a small message (plain TCP: it
    // came back short, under kStreamingRead; the listener's TLS: likewise
    // OpenSSL's last read(), and nothing is pending in SSL). Its sender is
    // now waiting for a reply, so the next read waits for readability first
    // (async_wait, whose EPOLL_CTL_MOD re-arm reports data that came in
    // meanwhile); the read that would only have returned EAGAIN is skipped. A short read of a
    // large chunk is a sender mid-stream: more has usually arrived by the
    // time the chunk is written, and reading it at once saves the re-arm
    // and an epoll_wait.
    bool drained = false;
    // The bytes delivered to the receiver end at a frame boundary, so a
    // close frame may follow them (always false with the tap off: it cannot tell).
    bool at_boundary = true;
    std::uint8_t inject_len = 0;  // of `inject`, at most kMaxCloseFrame

    // Read side.
    bool can_read() const { return state.read == PumpState::Read::idle; }
    void read_started(PumpState::Read op) { state.read = op; }  // waiting or reading
    void read_yielded() {
      if (state.read == PumpState::Read::idle) state.read = PumpState::Read::yielded;
    }
    void read_returned() {  // a wait, a read or a yield completed
      if (state.read != PumpState::Read::ended) state.read = PumpState::Read::idle;
    }
    void read_ended() { state.read = PumpState::Read::ended; }
    bool read_over() const { return state.read == PumpState::Read::ended; }

    // Write side.
    bool writing() const {
      return state.write == PumpState::Write::writing ||
             state.write == PumpState::Write::writing_then_end;
    }
    // From `ended` too: bytes read after the write side was shut are still
    // sent, and that send fails (and is handled) as on a lost receiver.
    void write_started() {
      state.write = state.write == PumpState::Write::idle_then_end
                        ? PumpState::Write::writing_then_end
                        : PumpState::Write::writing;
    }
    void write_returned() {
      state.write = state.write == PumpState::Write::writing_then_end
                        ? PumpState::Write::idle_then_end
                        : PumpState::Write::idle;
    }
    // End `to` once the write in flight and a queued close are out.
    void end_after_writes() {
      if (state.write == PumpState::Write::idle)
        state.write = PumpState::Write::idle_then_end;
      else if (state.write == PumpState::Write::writing)
        state.write = PumpState::Write::writing_then_end;
    }
    bool end_due() const { return state.write == PumpState::Write::idle_then_end; }
    // `to`'s write side is shut or failed: a close still queued never goes.
    void output_ended() {
      state.write = PumpState::Write::ended;
      if (state.own_close == PumpState::OwnClose::queued)
        state.own_close = PumpState::OwnClose::none;
    }
    bool output_over() const { return state.write == PumpState::Write::ended; }

    // A close frame the proxy writes itself into this direction (rare: the
    // kMaxCloseFrame bytes are taken only when one is built).
    std::unique_ptr<std::uint8_t[]> inject;

    // The pump's pending wait or read (one at a time), kept in the session.
    HandlerSlot<kOpSlotBytes> op_slot;

    // Pings seen in this direction, waiting for their pongs in the other.
    PingTracker pings;

    // Counts already added to Prometheus. Per-kind violation baselines are
    // allocated on the first violation; most sessions never have one.
    // Per opcode, the low 32 bits of the count last flushed: a flush comes
    // at least once a second (kStatsFreshness), and no session carries 2^32
    // frames (8 GiB of the smallest ones) between two, so the difference of
    // the low halves is the whole increment.
    std::array<std::uint32_t, 16> flushed_frames{};
    std::uint64_t flushed_violations = 0;
    std::unique_ptr<std::uint64_t[]> flushed_violation_kinds;
    std::uint64_t raw_bytes = 0;  // every byte read, for --tap-mode off
    std::uint64_t flushed_bytes = 0;
    std::chrono::steady_clock::time_point last_flush{};
    std::atomic<std::uint64_t> published_frames{0};
    std::atomic<std::uint64_t> published_bytes{0};
  };

  using OpSlotAllocator = SlotAllocator<void, kOpSlotBytes>;
  using TimerSlotAllocator = SlotAllocator<void, kTimerSlotBytes>;

  Pump& other(Pump& p) { return &p == &c2u_ ? u2c_ : c2u_; }

  void do_read(Pump& p);
  void read_step(Pump& p);
  void wait_readable(Pump& p);
  void on_readable(Pump& p, boost::system::error_code ec);
  void read_into_buffer(Pump& p);
  void on_read(Pump& p, boost::system::error_code ec, std::size_t n);
  void forward(Pump& p, const std::uint8_t* data, std::size_t n);
  void do_write(Pump& p, const std::uint8_t* data, std::size_t n);
  void on_write(Pump& p, boost::system::error_code ec);
  void on_read_end(Pump& p, boost::system::error_code ec);

  // Queue a close frame into p's output at the next frame boundary; if the
  // stream can never reach one (mid-frame, tap off), end its TCP instead.
  void inject_close(Pump& p, std::uint16_t code, std::string_view reason, bool then_shutdown);
  void flush_inject(Pump& p);
  // After an injected close was written: what the client received.
  void note_proxy_close(const Pump& p, boost::system::error_code ec);
  bool close_relayed(const Pump& p) const;
  void end_output(Pump& p);

  // The first close seen is the session's, except a proxy verdict on a
  // protocol violation, which replaces whatever was recorded.
  enum class Precedence { first_wins, verdict };
  void record_close(std::uint16_t code, std::string_view reason, Initiator who,
                    Precedence precedence = Precedence::first_wins);
  void begin_closing();
  void on_violation(Pump& p, tap::Violation v);
  void arm_timer();
  void on_timer(boost::system::error_code ec);
  void maybe_finish();
  void finish();
  void flush_stats(Pump& p);
  void flush_stats(Pump& p, std::chrono::steady_clock::time_point now);
  void flush_stats_if_due(Pump& p);
  bool stats_unflushed(const Pump& p) const;

  Gateway& gateway_;
  AnyStream client_;
  AnyStream upstream_;
  SessionSummary summary_;
  std::string client_ip_;
  Workers::Load load_;
  EndpointLease upstream_lease_;
  Pump c2u_;
  Pump u2c_;
  WorkerTimer timer_;
  HandlerSlot<kTimerSlotBytes> timer_slot_;
  // The worker's, for executor(). Other threads call that, and the sockets'
  // and the timer's get_executor() are not const, so it keeps a copy.
  WorkerExecutor executor_;
  std::uint64_t registry_id_ = 0;
  FlightRecorder recorder_;

  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point last_activity_;
  std::chrono::steady_clock::time_point last_log_;
  std::chrono::steady_clock::time_point close_deadline_;
  bool close_recorded_ = false;
  bool closing_ = false;
  bool finished_ = false;
  bool draining_ = false;
};

}  // namespace wsgate::proxy
