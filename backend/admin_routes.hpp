#pragma once
// The backend's admin endpoints: /metrics, /healthz, /debug/traces and
// /debug/traces/{correlation_id}.
#include "common/admin_server.hpp"

namespace wsgate::backend {

class SharedState;

inline constexpr std::size_t kDefaultTraceListLimit = 50;
inline constexpr std::size_t kMaxTraceListLimit = 1000;

void register_admin_routes(AdminServer& admin, std::shared_ptr<SharedState> state);

}  // namespace wsgate::backend
