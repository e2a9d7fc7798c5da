#pragma once
// The backend's admin endpoints: /metrics, /healthz, /debug/traces and
// /debug/traces/{correlation_id}, with the configured admin token applied and
// refusals counted in wsgate_backend_admin_errors_total.
#include "common/admin_server.hpp"

namespace wsgate::backend {

class SharedState;

inline constexpr std::size_t kDefaultTraceListLimit = 50;
inline constexpr std::size_t kMaxTraceListLimit = 1000;

void register_admin_routes(AdminRouter& admin, std::shared_ptr<SharedState> state);
void register_admin_routes(AdminServer& admin, std::shared_ptr<SharedState> state);

}  // namespace wsgate::backend
