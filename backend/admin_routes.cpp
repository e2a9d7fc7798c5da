#include "backend/admin_routes.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

#include "backend/shared_state.hpp"
#include "common/correlation_id.hpp"
#include "common/metrics_exposition.hpp"

namespace wsgate::backend {

void register_admin_routes(AdminRouter& admin, std::shared_ptr<SharedState> state) {
  const auto& config = state->config();
  admin.require_token(config.admin_token,
                      config.admin_token_scope == "all" ? TokenScope::all : TokenScope::users);
  admin.set_error_hook([&m = state->metrics()](AdminError e) { m.admin_error(e).Increment(); });

  admin.handle("/metrics", [state](const AdminRequest&) {
    AdminResponse r;
    r.content_type = std::string(kPrometheusTextContentType);
    r.body = render_prometheus_text(state->metrics().registry());
    return r;
  });
  admin.handle("/healthz", [state](const AdminRequest&) {
    if (state->draining()) return AdminResponse::json(503, R"({"status":"draining"})");
    return AdminResponse::json(200, R"({"status":"ok"})");
  });
  auto list = [state](const AdminRequest& req) {
    std::size_t limit = kDefaultTraceListLimit;
    auto text = req.param("limit");
    if (!text.empty()) {
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), limit);
      if (ec != std::errc() || end != text.data() + text.size() || limit == 0)
        return AdminResponse::json(400, R"({"error":"limit must be a positive integer"})");
      limit = std::min(limit, kMaxTraceListLimit);
    }
    return AdminResponse::json(200, state->traces().recent_json(limit));
  };
  // Traces name users: behind the token when one is configured.
  admin.handle("/debug/traces", list, AdminAccess::users);
  admin.handle(
      "/debug/traces/",
      [state, list](const AdminRequest& req) {
        constexpr std::string_view prefix = "/debug/traces/";
        auto id = percent_decode(std::string_view(req.path).substr(prefix.size()));
        if (id.empty()) return list(req);
        if (auto found = state->traces().find_json(id)) return AdminResponse::json(200, *found);
        nlohmann::json body = {{"error", "trace not found"}};
        if (is_valid_correlation_id(id)) body["correlation_id"] = id;
        return AdminResponse::json(404, dump_json(body));
      },
      AdminAccess::users);
}

void register_admin_routes(AdminServer& admin, std::shared_ptr<SharedState> state) {
  register_admin_routes(admin.router(), std::move(state));
}

}  // namespace wsgate::backend
