#pragma once
// The record of one finished (or refused) session: what the close log line,
// the metrics and an incident are made from.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "proxy/close_codes.hpp"
#include "proxy/tap/frame_tap.hpp"

namespace wsgate::proxy {

class FlightLog;

struct DirectionSummary {
  std::uint64_t frames = 0;
  std::uint64_t bytes = 0;
  std::uint64_t messages = 0;
  std::uint64_t violations = 0;
};

struct SessionSummary {
  std::string correlation_id;
  std::string traceparent;
  std::string client;      // ip:port
  std::string route;       // route prefix
  std::string upstream;    // upstream URL
  std::string upstream_endpoint;  // host:port connected to ("[v6]:port")
  std::string trace_url_template;
  // The trace URL the upstream announced in its 101 (Wsgate-Trace-Location)
  // and the proxy honoured; it wins over trace_url_template.
  std::string trace_location;
  std::string target;      // request target (path and query)
  std::chrono::system_clock::time_point started;
  std::chrono::milliseconds duration{0};

  std::uint16_t code = kCloseAbnormal;
  std::string reason;
  Initiator initiator = Initiator::proxy;
  bool close_handshake_complete = false;
  std::string end_detail;  // how the TCP side ended: "eof from upstream", "idle timeout", ...
  // The close the proxy wrote to the client itself when the recorded close is
  // a peer's abnormal end (1014 after the upstream died); 0 when none went.
  std::uint16_t proxy_close_to_client = 0;

  DirectionSummary client_to_upstream;
  DirectionSummary upstream_to_client;

  // Last text message from the upstream (unmasked, capped), for incidents.
  std::string last_upstream_message;
  bool last_upstream_message_truncated = false;
  bool last_upstream_message_compressed = false;

  // The flight recorder's frames (null when it is off or saw none).
  std::shared_ptr<const FlightLog> flight;
};

}  // namespace wsgate::proxy
