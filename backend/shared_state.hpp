#pragma once
// What all connections share: settings, the JWT verifier, faults, metrics,
// the trace store, the manager factory, the agent and the registry of open
// sessions (for shutdown). Everything here is safe to use from any thread;
// per-connection state lives in the sessions.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "backend/agent.hpp"
#include "backend/faults.hpp"
#include "backend/jwt_verifier.hpp"
#include "backend/manager_factory.hpp"
#include "backend/metrics.hpp"
#include "backend/options.hpp"
#include "backend/trace_store.hpp"
#include "common/session_registry.hpp"

namespace wsgate::backend {

class WebSocketSession;

class SharedState {
 public:
  SharedState(BackendConfig config, std::shared_ptr<prometheus::Registry> registry,
              std::unique_ptr<Agent> agent);

  const BackendConfig& config() const { return config_; }
  const JwtVerifier& verifier() const { return verifier_; }
  Faults& faults() { return faults_; }
  BackendMetrics& metrics() { return metrics_; }
  TraceStore& traces() { return traces_; }
  ManagerFactory& factory() { return factory_; }
  Agent& agent() { return *agent_; }

  // Appends a stage to `trace`; an error outcome also counts
  // wsgate_backend_stage_failures_total{stage}.
  void record(Trace& trace, Stage stage, Outcome outcome, std::string detail,
              std::vector<MissingAttribute> missing = {});

  std::uint64_t register_session(std::weak_ptr<WebSocketSession> session) {
    return sessions_.add(std::move(session));
  }
  void unregister_session(std::uint64_t id) { sessions_.remove(id); }
  std::vector<std::shared_ptr<WebSocketSession>> sessions() const { return sessions_.live(); }
  std::size_t session_count() const { return sessions_.size(); }

  // Set once at start, before the listener accepts (the admin port is known
  // only once bound); read by every upgrade.
  void set_trace_location_template(std::string t) { trace_location_template_ = std::move(t); }
  const std::string& trace_location_template() const { return trace_location_template_; }

  bool draining() const { return draining_.load(std::memory_order_acquire); }
  void set_draining() { draining_.store(true, std::memory_order_release); }

 private:
  BackendConfig config_;
  std::string trace_location_template_;
  JwtVerifier verifier_;
  Faults faults_;
  BackendMetrics metrics_;
  TraceStore traces_;
  ManagerFactory factory_;
  std::unique_ptr<Agent> agent_;

  SessionRegistry<WebSocketSession> sessions_;
  std::atomic<bool> draining_{false};
};

}  // namespace wsgate::backend
