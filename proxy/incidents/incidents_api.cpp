#include "proxy/incidents/incidents_api.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

#include "common/redact.hpp"
#include "proxy/incidents/incident.hpp"
#include "proxy/incidents/incident_browser.hpp"

namespace wsgate::proxy::incidents {
namespace {

AdminResponse json_error(unsigned status, const std::string& message) {
  return AdminResponse::json_error(status, message);
}

template <typename T>
std::optional<T> parse_uint(const std::string& s) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::optional<IncidentQuery> parse_incident_query(const AdminRequest& req, std::size_t capacity,
                                                  std::string& error) {
  IncidentQuery q;
  q.limit = std::min(kDefaultIncidentLimit, capacity);
  if (auto code = req.param("code"); !code.empty()) {
    auto v = parse_uint<unsigned>(code);
    if (!v || *v > 65535) {
      error = "code must be a close code, got '" + code + "'";
      return std::nullopt;
    }
    q.code = static_cast<std::uint16_t>(*v);
  }
  q.stage = req.param("stage");
  q.route = req.param("route");
  q.upstream = req.param("upstream");
  for (auto [name, slot] : {std::pair{"since", &q.since}, std::pair{"until", &q.until}}) {
    if (auto text = req.param(name); !text.empty()) {
      *slot = parse_time(text);
      if (!*slot) {
        error = std::string(name) + " must be RFC 3339 or unix seconds, got '" + text + "'";
        return std::nullopt;
      }
    }
  }
  if (auto limit = req.param("limit"); !limit.empty()) {
    auto v = parse_uint<std::size_t>(limit);
    if (!v || *v == 0) {
      error = "limit must be a positive integer, got '" + limit + "'";
      return std::nullopt;
    }
    q.limit = std::min(*v, capacity);
  }
  return q;
}

AdminResponse list_incidents(const IncidentStore& store, const AdminRequest& req) {
  if (req.method != "GET" && req.method != "HEAD") return json_error(405, "method not allowed");
  std::string error;
  auto q = parse_incident_query(req, store.capacity(), error);
  if (!q) return json_error(400, error);
  auto records = store.query(*q);
  std::string body = "{\"incidents\":[";
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (i) body += ',';
    body += *records[i];
  }
  body += "],\"count\":" + std::to_string(records.size()) + "}\n";
  return AdminResponse::json(200, std::move(body));
}

AdminResponse get_incident(const IncidentStore& store, const AdminRequest& req) {
  if (req.method != "GET" && req.method != "HEAD") return json_error(405, "method not allowed");
  constexpr std::string_view kPrefix = "/incidents/";
  std::string id = percent_decode(std::string_view(req.path).substr(kPrefix.size()));
  if (id.empty()) return list_incidents(store, req);
  auto record = store.find(id);
  if (!record) return json_error(404, "no incident with correlation_id " + redacted(id));
  return AdminResponse::json(200, *record + "\n");
}

void register_incident_routes(AdminRouter& admin, const IncidentStore& store) {
  admin.handle(
      "/incidents", [&store](const AdminRequest& req) { return list_incidents(store, req); },
      AdminAccess::users);
  admin.handle(
      "/incidents/", [&store](const AdminRequest& req) { return get_incident(store, req); },
      AdminAccess::users);
  register_incident_browser(admin, store);
}

void register_incident_routes(AdminServer& admin, const IncidentStore& store) {
  register_incident_routes(admin.router(), store);
}

}  // namespace wsgate::proxy::incidents
