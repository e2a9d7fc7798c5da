#pragma once
// Every metric of the backend, declared once. Label values form closed sets,
// so each handle is looked up at start-up and kept; the data path only
// increments (lock-free) counters and gauges.
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backend/jwt_verifier.hpp"
#include "backend/trace_store.hpp"
#include "backend/user_context.hpp"
#include "common/admin_errors.hpp"

namespace wsgate::backend {

// Label values of wsgate_backend_messages_total{type}.
enum class MessageKind { user_message, ping, unknown, invalid };

class BackendMetrics {
 public:
  explicit BackendMetrics(std::shared_ptr<prometheus::Registry> registry);

  prometheus::Registry& registry() { return *registry_; }

  prometheus::Counter& context_fallback(Attribute a) { return *fallbacks_[index(a)]; }
  prometheus::Counter& stage_failure(Stage s) { return *stage_failures_[index(s)]; }
  prometheus::Counter& auth_failure(AuthFailure f) { return *auth_failures_[index(f)]; }
  prometheus::Counter& message(MessageKind k) { return *messages_[index(k)]; }
  // Known close codes have their own label; anything else is "other".
  prometheus::Counter& close(std::uint16_t code);
  // wsgate_backend_admin_errors_total{reason}: refused or failed admin requests.
  prometheus::Counter& admin_error(AdminError e) { return *admin_errors_[index(e)]; }

  prometheus::Gauge& connections_active;
  prometheus::Gauge& managers_active;
  prometheus::Counter& agent_runs;
  prometheus::Counter& connections_total;

 private:
  template <typename E>
  static std::size_t index(E e) {
    return static_cast<std::size_t>(e);
  }

  std::shared_ptr<prometheus::Registry> registry_;
  std::array<prometheus::Counter*, kAllAttributes.size()> fallbacks_{};
  std::array<prometheus::Counter*, std::size(kAllStages)> stage_failures_{};
  std::array<prometheus::Counter*, std::size(kAllAuthFailures)> auth_failures_{};
  std::array<prometheus::Counter*, 4> messages_{};
  std::array<prometheus::Counter*, kAdminErrorKinds> admin_errors_{};
  std::vector<std::pair<std::uint16_t, prometheus::Counter*>> closes_;
  prometheus::Counter* close_other_ = nullptr;
};

}  // namespace wsgate::backend
