#pragma once
// Where a session's backend trace lives when a load balancer stands between
// the proxy and the backends: the backend that took the session names it in
// its 101 (Wsgate-Trace-Location: URL). The proxy removes the header before
// the client sees it and uses it only from upstream addresses the operator
// allows (--trace-location-allow), since whoever answers the upgrade would
// otherwise choose where the proxy sends its trace fetches.
#include <boost/asio/ip/tcp.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/cidr.hpp"
#include "proxy/config.hpp"
#include "proxy/handshake.hpp"
#include "proxy/metrics.hpp"
#include "proxy/session_summary.hpp"

namespace wsgate::proxy {

// "host:port", an IPv6 host in brackets (as it stands in a URL).
std::string endpoint_string(const boost::asio::ip::tcp::endpoint& endpoint);

struct TraceLocationVerdict {
  std::string url;  // the honoured URL; empty when none was announced or it was ignored
  std::optional<TraceLocationRejection> rejected;
  std::string why;  // when rejected
};

// The decision on an upstream 101's Wsgate-Trace-Location, alone: none
// announced (empty verdict), honoured, or ignored (not allowed, bad URL,
// longer than `max_bytes`).
TraceLocationVerdict judge_trace_location(const ResponseHeader& response,
                                          const boost::asio::ip::address& peer,
                                          const std::vector<Cidr>& allow, std::size_t max_bytes);

// After a valid 101: records the connected upstream endpoint in the summary
// and adopts an allowed announced trace URL; an ignored one is counted
// (wsgate_trace_location_rejected_total{reason}) and logged at warn, at most
// once per 10 s.
// (--trace-location-allow, --trace-location-max-bytes from `config`).
void note_upstream(const ResponseHeader& response, const boost::asio::ip::tcp::endpoint& peer,
                   const ProxyConfig& config, TraceLocationMetrics& metrics,
                   SessionSummary& summary);

}  // namespace wsgate::proxy
