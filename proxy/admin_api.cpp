#include "proxy/admin_api.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

#include "common/metrics_exposition.hpp"
#include "common/openmetrics.hpp"

namespace wsgate::proxy {
namespace {

// A query parameter that must be an unsigned integer, `fallback` when absent.
std::optional<std::size_t> size_param(const AdminRequest& req, std::string_view name,
                                      std::size_t fallback) {
  auto text = req.param(name);
  if (text.empty()) return fallback;
  std::size_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace

AdminApi::AdminApi(Gateway& gw, AdminServer& server) : AdminApi(gw, server.router()) {}

AdminApi::AdminApi(Gateway& gw, AdminRouter& router) {
  const auto& c = gw.config();
  router.require_token(c.admin_token,
                       c.admin_token_scope == "all" ? TokenScope::all : TokenScope::users);
  router.set_error_hook([&m = gw.metrics()](AdminError e) { m.admin_error(e).Increment(); });
  auto limits = router.limits();
  limits.write_timeout = c.admin_write_timeout;
  router.set_limits(limits);

  router.handle("/metrics", [&gw](const AdminRequest& req) {
    // OpenMetrics (with exemplars) only when the scraper asks for it.
    if (accepts_openmetrics(req.accept))
      return AdminResponse{200,
                           std::string(kOpenMetricsContentType),
                           render_openmetrics(gw.registry().Collect(), &gw.exemplars()),
                           {}};
    return AdminResponse{
        200, std::string(kPrometheusTextContentType), render_prometheus_text(gw.registry()), {}};
  });
  router.handle("/healthz", [](const AdminRequest&) { return AdminResponse::text(200, "ok\n"); });
  router.handle("/readyz", [&gw](const AdminRequest&) {
    return gw.draining() ? AdminResponse::text(503, "draining\n")
                         : AdminResponse::text(200, "ready\n");
  });
  // Snapshots and JSON for one page per request: the cost of an answer is
  // bounded by the page, not by the number of sessions.
  router.handle(
      "/connections",
      [&gw, max_page = c.admin_max_page](const AdminRequest& req) {
        auto limit = size_param(req, "limit", std::min(kDefaultConnectionsPage, max_page));
        if (!limit || *limit == 0)
          return AdminResponse::json_error(400, "limit must be a positive integer");
        auto offset = size_param(req, "offset", 0);
        if (!offset) return AdminResponse::json_error(400, "offset must be a non-negative integer");
        std::vector<std::shared_ptr<LiveSession>> held;
        auto page = gw.sessions_json(*offset, std::min(*limit, max_page), held);
        Gateway::release_on_owners(std::move(held));
        // The body stays the array it always was (scripts read it as one);
        // the page's place in the whole goes in headers.
        const std::size_t total = page["total"].get<std::size_t>();
        auto out = AdminResponse::json(200, dump_json(page["connections"]) + "\n");
        out.headers = {{"X-Total-Count", std::to_string(total)},
                       {"X-Offset", std::to_string(*offset)}};
        return out;
      },
      AdminAccess::users);
  // One live session with its flight recorder, by correlation ID.
  router.handle(
      "/connections/",
      [&gw](const AdminRequest& req) {
        std::string_view id = req.path;
        id.remove_prefix(std::string_view("/connections/").size());
        std::shared_ptr<LiveSession> held;
        auto session = id.empty() ? nlohmann::json(nullptr) : gw.session_json(id, held);
        if (held) Gateway::release_on_owners({std::move(held)});
        if (session.is_null())
          return AdminResponse::json_error(404, "no live session with that id");
        return AdminResponse::json(200, dump_json(session) + "\n");
      },
      AdminAccess::users);
}

}  // namespace wsgate::proxy
