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

void SharedState::record(Trace& trace, Stage stage, Outcome outcome, std::string detail,
                         std::vector<MissingAttribute> missing) {
  if (outcome == Outcome::error) metrics_.stage_failure(stage).Increment();
  traces_.add(trace, stage, outcome, std::move(detail), std::move(missing));
}

}  // namespace wsgate::backend
