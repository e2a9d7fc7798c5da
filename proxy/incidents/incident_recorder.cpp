#include "proxy/incidents/incident_recorder.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "common/logging.hpp"
#include "common/openmetrics.hpp"
#include "proxy/incidents/incidents_api.hpp"

namespace wsgate::proxy::incidents {
namespace {

bool is_stage_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
  });
}

}  // namespace

StoreOptions store_options_from(const ProxyConfig& c) {
  StoreOptions o;
  o.capacity = c.incident_capacity;
  o.log_path = c.incident_log;
  o.max_log_bytes = c.incident_log_max_bytes;
  o.fsync = parse_fsync_policy(c.incident_fsync).value_or(FsyncPolicy::interval);
  o.queue_max = c.incident_queue_max;
  o.queue_max_bytes = c.incident_queue_max_bytes;
  o.max_line_bytes = c.incident_log_max_line_bytes;
  return o;
}

IncidentRecorder::IncidentRecorder(boost::asio::io_context& ioc, Gateway& gateway,
                                   AdminServer& admin)
    : IncidentRecorder(ioc, gateway, store_options_from(gateway.config()), [&] {
        FetchOptions f;
        f.timeout = gateway.config().trace_fetch_timeout;
        if (!gateway.config().trace_fetch_token.empty())
          f.authorization = "Bearer " + gateway.config().trace_fetch_token;
        return f;
      }()) {
  register_incident_routes(admin, store_);
}

IncidentRecorder::IncidentRecorder(boost::asio::io_context& ioc, Gateway& gateway,
                                   StoreOptions store, FetchOptions fetch)
    : ioc_(ioc),
      gateway_(gateway),
      fetch_options_(std::move(fetch)),
      codes_(gateway.config().incident_codes.begin(), gateway.config().incident_codes.end()),
      store_([&] {
        if (!store.metrics) store.metrics = &gateway.metrics().incident_path;
        return std::move(store);
      }()) {}

IncidentRecorder::~IncidentRecorder() {
  std::map<std::uint64_t, Pending> left;
  {
    std::lock_guard lock(mutex_);
    left.swap(pending_);
  }
  for (auto& [id, p] : left) {
    TraceFetchResult r;
    r.outcome = FetchOutcome::error;
    r.error = "proxy stopped before the trace fetch finished";
    record(p, r);
  }
}

std::size_t IncidentRecorder::pending() const {
  std::lock_guard lock(mutex_);
  return pending_.size();
}

void IncidentRecorder::on_session_end(const SessionSummary& s) {
  if (!codes_.count(s.code)) return;
  const std::size_t max_fetches =
      std::max<std::size_t>(gateway_.config().trace_fetch_concurrency, 1);
  std::uint64_t id;
  // The URL the backend announced (and the proxy allowed) names its own
  // replica; the route's template is the fallback.
  const std::string url =
      !s.trace_location.empty() ? s.trace_location
      : s.trace_url_template.empty()
          ? std::string()
          : expand_trace_url(s.trace_url_template, s.correlation_id, s.upstream_endpoint);
  bool fetch = !url.empty();
  std::size_t in_flight = 0;
  {
    std::lock_guard lock(mutex_);
    id = next_id_++;
    pending_.emplace(id, Pending{s, std::chrono::system_clock::now()});
    in_flight = fetches_in_flight_;
    if (fetch && fetches_in_flight_ >= max_fetches)
      fetch = false;
    else if (fetch)
      ++fetches_in_flight_;
  }
  if (!fetch) {
    TraceFetchResult r;
    if (url.empty()) {
      r.outcome = FetchOutcome::no_url;
      r.error =
          "no trace URL configured for route " + (s.route.empty() ? std::string("/") : s.route);
    } else {
      r.outcome = FetchOutcome::overloaded;
      r.error = "trace fetch skipped: " + std::to_string(in_flight) +
                " fetches in flight (--trace-fetch-concurrency " + std::to_string(max_fetches) +
                ")";
    }
    // Posted, so the relay's finish() never waits on the record being built.
    boost::asio::post(ioc_, [this, id, r = std::move(r)]() mutable { complete(id, std::move(r)); });
    return;
  }
  gateway_.metrics().incident_path.trace_fetches_in_flight.Increment();
  fetch_trace(ioc_, url, fetch_options_, [this, id](TraceFetchResult r) {
    {
      std::lock_guard lock(mutex_);
      --fetches_in_flight_;
    }
    gateway_.metrics().incident_path.trace_fetches_in_flight.Decrement();
    complete(id, std::move(r));
  });
}

void IncidentRecorder::complete(std::uint64_t id, TraceFetchResult result) {
  Pending p;
  {
    std::lock_guard lock(mutex_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    p = std::move(it->second);
    pending_.erase(it);
  }
  record(p, result);
}

std::string IncidentRecorder::stage_label(const std::string& stage) {
  if (!is_stage_name(stage)) return "other";
  std::lock_guard lock(mutex_);
  if (stage_labels_.count(stage)) return stage;
  if (stage_labels_.size() >= kMaxStageLabels) return "other";
  stage_labels_.insert(stage);
  return stage;
}

void IncidentRecorder::record(const Pending& p, const TraceFetchResult& result) {
  const auto& s = p.summary;
  nlohmann::json incident =
      build_incident(s, p.ended, result, gateway_.config().last_message_capture_bytes,
                     gateway_.config().incident_trace_max_bytes);
  const std::string stage = incident["failing_stage"].get<std::string>();
  store_.add(incident);

  auto& metrics = gateway_.metrics();
  if (incident.contains("backend_trace_truncated"))
    metrics.incident_path.trace_truncated.Increment();
  metrics.trace_fetch(to_string(result.outcome)).Increment();
  const std::string label = stage_label(stage);
  metrics.incident(s.code, label).Increment();
  if (auto m = incident.find("missing_attributes"); m != incident.end() && m->is_array())
    for (const auto& a : *m)
      if (a.is_string())
        metrics.incident_missing_attribute(s.code, label, a.get<std::string>()).Increment();
  gateway_.exemplars().record("wsgate_incidents_total",
                              {{"code", metrics.close_label(s.code)}, {"stage", label}},
                              Exemplar{{{"trace_id", s.correlation_id}}, 1, p.ended});

  WSG_LOG(spdlog::level::err, s.correlation_id, "incident: {} (failing_stage={} trace={})",
          incident["summary"].get<std::string>(), stage,
          result.outcome == FetchOutcome::ok ? std::string("ok")
                                             : incident["backend_trace_error"].get<std::string>());
}

}  // namespace wsgate::proxy::incidents
