#pragma once
// The proxy's admin endpoints: /metrics, /healthz, /readyz, /connections
// (and /incidents, added by the incident recorder).
#include <boost/asio/io_context.hpp>

#include "common/admin_server.hpp"
#include "proxy/gateway.hpp"

namespace wsgate::proxy {

class AdminApi {
 public:
  AdminApi(boost::asio::io_context& ioc, Gateway& gateway, AdminServer& server);
};

}  // namespace wsgate::proxy
