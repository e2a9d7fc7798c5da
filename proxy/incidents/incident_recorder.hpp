#pragma once
// Opens an incident for every session that ends with one of the configured
// close codes (1011 by default, whoever sent it): fetches the backend's stage
// trace through the route's trace URL template, builds the record, keeps it
// (IncidentStore), logs its summary at error level, counts it in
// wsgate_incidents_total{code,stage} and makes its correlation ID the
// exemplar of that series. Plugs into Gateway::set_session_end_hook().
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "common/admin_server.hpp"
#include "proxy/gateway.hpp"
#include "proxy/incidents/incident_store.hpp"
#include "proxy/incidents/trace_fetcher.hpp"
#include "proxy/session_summary.hpp"

namespace wsgate::proxy::incidents {

// Distinct `stage` label values of wsgate_incidents_total before "other".
inline constexpr std::size_t kMaxStageLabels = 32;

class IncidentRecorder {
 public:
  // Registers /incidents and /incidents/{id} on `admin`; loads the log back.
  IncidentRecorder(boost::asio::io_context& ioc, Gateway& gateway, AdminServer& admin);
  // Testing seam: explicit store options and fetch options.
  IncidentRecorder(boost::asio::io_context& ioc, Gateway& gateway, StoreOptions store,
                   FetchOptions fetch);
  // Incidents whose trace fetch is still running (the io_context stopped)
  // are stored with a backend_trace_error, not dropped.
  ~IncidentRecorder();

  // The session-end hook. Cheap: copies the summary and starts the fetch.
  void on_session_end(const SessionSummary& summary);

  IncidentStore& store() { return store_; }
  std::size_t pending() const;

 private:
  struct Pending {
    SessionSummary summary;
    std::chrono::system_clock::time_point ended;
  };
  void complete(std::uint64_t id, TraceFetchResult result);
  void record(const Pending& p, const TraceFetchResult& result);
  std::string stage_label(const std::string& stage);

  boost::asio::io_context& ioc_;
  Gateway& gateway_;
  FetchOptions fetch_options_;
  std::set<std::uint16_t> codes_;
  IncidentStore store_;

  mutable std::mutex mutex_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, Pending> pending_;
  std::set<std::string> stage_labels_;
  // Each fetch holds a socket: a storm of incidents must not take every fd.
  std::size_t fetches_in_flight_ = 0;  // under mutex_
};

StoreOptions store_options_from(const ProxyConfig& config);

}  // namespace wsgate::proxy::incidents
