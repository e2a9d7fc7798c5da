#pragma once
// The proxy's admin endpoints: /metrics, /healthz, /readyz, /connections
// (and /incidents, added by the incident recorder), with the admin settings
// of the configuration (token, write timeout, page size) applied to the
// router and its refusals counted in wsgate_admin_errors_total.
#include "common/admin_server.hpp"
#include "proxy/gateway.hpp"

namespace wsgate::proxy {

inline constexpr std::size_t kDefaultConnectionsPage = 100;

class AdminApi {
 public:
  // The session references a /connections answer takes are dropped on the
  // sessions' own workers, never on the admin thread.
  AdminApi(Gateway& gateway, AdminServer& server);
  AdminApi(Gateway& gateway, AdminRouter& router);
};

}  // namespace wsgate::proxy
