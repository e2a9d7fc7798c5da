#include "backend/shared_state.hpp"

namespace wsgate::backend {

SharedState::SharedState(BackendConfig config, std::shared_ptr<prometheus::Registry> registry,
                         std::unique_ptr<Agent> agent)
    : config_(std::move(config)),
      verifier_(config_.jwt),
      faults_(config_.faults),
      metrics_(std::move(registry)),
      traces_(config_.trace_limits),
      factory_(config_.max_connections_per_user,
               [this](int delta) {
                 if (delta > 0)
                   metrics_.managers_active.Increment();
                 else
                   metrics_.managers_active.Decrement();
               }),
      agent_(std::move(agent)) {}

void SharedState::record(Trace& trace, Stage stage, Outcome outcome, std::string detail) {
  if (outcome == Outcome::error) metrics_.stage_failure(stage).Increment();
  traces_.add(trace, stage, outcome, std::move(detail));
}

std::uint64_t SharedState::register_session(std::weak_ptr<WebSocketSession> session) {
  std::lock_guard lock(sessions_mutex_);
  auto id = next_session_id_++;
  sessions_.emplace(id, std::move(session));
  return id;
}

void SharedState::unregister_session(std::uint64_t id) {
  std::lock_guard lock(sessions_mutex_);
  sessions_.erase(id);
}

std::vector<std::shared_ptr<WebSocketSession>> SharedState::sessions() const {
  std::vector<std::shared_ptr<WebSocketSession>> out;
  std::lock_guard lock(sessions_mutex_);
  for (const auto& [id, weak] : sessions_)
    if (auto s = weak.lock()) out.push_back(std::move(s));
  return out;
}

std::size_t SharedState::session_count() const {
  std::lock_guard lock(sessions_mutex_);
  return sessions_.size();
}

}  // namespace wsgate::backend
