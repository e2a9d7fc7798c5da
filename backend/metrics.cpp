#include "backend/metrics.hpp"

namespace wsgate::backend {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;

// The close codes the backend sends or commonly receives.
constexpr std::uint16_t kKnownCloseCodes[] = {1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008,
                                              1009, 1010, 1011, 1012, 1013, 1014, 1015};

prometheus::Gauge& gauge(prometheus::Registry& r, const char* name, const char* help) {
  return BuildGauge().Name(name).Help(help).Register(r).Add({});
}

prometheus::Counter& counter(prometheus::Registry& r, const char* name, const char* help) {
  return BuildCounter().Name(name).Help(help).Register(r).Add({});
}

}  // namespace

BackendMetrics::BackendMetrics(std::shared_ptr<prometheus::Registry> registry)
    : connections_active(gauge(*registry, "wsgate_backend_connections_active",
                               "WebSocket sessions currently open")),
      managers_active(gauge(*registry, "wsgate_backend_managers_active",
                            "Per-user managers currently alive (users connected)")),
      agent_runs(counter(*registry, "wsgate_backend_agent_runs_total", "Agent runs started")),
      connections_total(
          counter(*registry, "wsgate_backend_connections_total", "WebSocket upgrades accepted")),
      registry_(std::move(registry)) {
  auto& fallbacks = BuildCounter()
                        .Name("wsgate_backend_context_fallbacks_total")
                        .Help("Context attributes filled by the fallback policy")
                        .Register(*registry_);
  for (Attribute a : kAllAttributes)
    if (a != Attribute::user_id)  // identity is never filled
      fallbacks_[index(a)] = &fallbacks.Add({{"attribute", std::string(attribute_name(a))}});
  // user_id has no series; keep a valid pointer that nothing exports.
  static prometheus::Counter unexported;
  fallbacks_[index(Attribute::user_id)] = &unexported;

  auto& stages = BuildCounter()
                     .Name("wsgate_backend_stage_failures_total")
                     .Help("Connection stages that ended with outcome error, by stage")
                     .Register(*registry_);
  for (Stage s : kAllStages)
    stage_failures_[index(s)] = &stages.Add({{"stage", std::string(stage_name(s))}});

  auto& auth = BuildCounter()
                   .Name("wsgate_backend_auth_failures_total")
                   .Help("Upgrade requests refused with 401, by reason")
                   .Register(*registry_);
  for (AuthFailure f : kAllAuthFailures)
    auth_failures_[index(f)] = &auth.Add({{"reason", std::string(auth_failure_name(f))}});

  auto& messages = BuildCounter()
                       .Name("wsgate_backend_messages_total")
                       .Help(
                           "Client messages received, by type (unknown: unknown type, "
                           "invalid: not a JSON object with a string type)")
                       .Register(*registry_);
  const char* kinds[] = {"user_message", "ping", "unknown", "invalid"};
  for (std::size_t i = 0; i < messages_.size(); ++i)
    messages_[i] = &messages.Add({{"type", kinds[i]}});

  auto& closes = BuildCounter()
                     .Name("wsgate_backend_closes_total")
                     .Help("WebSocket sessions ended, by close code (1006: no close frame)")
                     .Register(*registry_);
  for (auto code : kKnownCloseCodes)
    closes_.emplace_back(code, &closes.Add({{"code", std::to_string(code)}}));
  close_other_ = &closes.Add({{"code", "other"}});

  auto& admin_errors = BuildCounter()
                           .Name("wsgate_backend_admin_errors_total")
                           .Help("Admin requests refused or failed, by reason")
                           .Register(*registry_);
  for (std::size_t i = 0; i < admin_errors_.size(); ++i)
    admin_errors_[i] =
        &admin_errors.Add({{"reason", std::string(to_string(static_cast<AdminError>(i)))}});
}

prometheus::Counter& BackendMetrics::close(std::uint16_t code) {
  for (auto& [known, c] : closes_)
    if (known == code) return *c;
  return *close_other_;
}

}  // namespace wsgate::backend
