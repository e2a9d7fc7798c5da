#pragma once
// Fetches one backend stage trace over HTTP, asynchronously on the
// io_context (its own strand): never blocks the relay or an I/O thread.
// A trace that is not there yet (404) or a backend that refuses the
// connection is asked again after short delays; a timeout is not retried.
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/incidents/incident.hpp"

namespace wsgate::proxy::incidents {

struct FetchOptions {
  std::chrono::milliseconds timeout{2000};  // per attempt: resolve, connect, request, response
  std::vector<std::chrono::milliseconds> retry_delays{std::chrono::milliseconds(100),
                                                      std::chrono::milliseconds(300)};
  std::size_t max_body_bytes = 1 << 20;
  std::string authorization;  // the Authorization header's value; none when empty
};

// `{correlation_id}` replaced by the (percent-encoded) ID, every occurrence.
std::string expand_trace_url(std::string_view url_template, std::string_view correlation_id);

// Placeholders of a trace URL template (every occurrence replaced).
inline constexpr std::string_view kTracePlaceholders[] = {"{correlation_id}", "{upstream_host}",
                                                          "{upstream_port}"};

// Also `{upstream_host}` and `{upstream_port}`: the upstream endpoint the
// session used, "host:port" with an IPv6 host in brackets (kept in them:
// the host goes into a URL).
std::string expand_trace_url(std::string_view url_template, std::string_view correlation_id,
                             std::string_view upstream_endpoint);

// Empty when fetch_trace can fetch `url` (http://HOST[:PORT][/PATH]), else why not.
std::string http_url_error(std::string_view url);

// Calls `done` exactly once, on an executor of `ioc`, unless the io_context
// is stopped first.
void fetch_trace(boost::asio::io_context& ioc, std::string url, FetchOptions options,
                 std::function<void(TraceFetchResult)> done);

}  // namespace wsgate::proxy::incidents
