#include "proxy/admin_api.hpp"

#include <nlohmann/json.hpp>

#include "common/metrics_exposition.hpp"
#include "common/openmetrics.hpp"

namespace wsgate::proxy {

AdminApi::AdminApi(boost::asio::io_context&, Gateway& gw, AdminServer& server) {
  server.handle("/metrics", [&gw](const AdminRequest& req) {
    // OpenMetrics (with exemplars) only when the scraper asks for it.
    if (accepts_openmetrics(req.accept))
      return AdminResponse{200, std::string(kOpenMetricsContentType),
                           render_openmetrics(gw.registry().Collect(), &gw.exemplars())};
    return AdminResponse{200, std::string(kPrometheusTextContentType),
                         render_prometheus_text(gw.registry())};
  });
  server.handle("/healthz", [](const AdminRequest&) { return AdminResponse::text(200, "ok\n"); });
  server.handle("/readyz", [&gw](const AdminRequest&) {
    return gw.draining() ? AdminResponse::text(503, "draining\n") : AdminResponse::text(200, "ready\n");
  });
  server.handle("/connections", [&gw](const AdminRequest&) {
    return AdminResponse::json(200, gw.sessions_json().dump() + "\n");
  });
}

}  // namespace wsgate::proxy
