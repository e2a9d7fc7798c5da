#pragma once
// The incident admin endpoints:
//   GET /incidents?code=&stage=&route=&upstream=&since=&until=&limit=
//                                              {"incidents":[...newest first], "count":N}
//   GET /incidents/{correlation_id}            the record, or 404 {"error":...}
#include "common/admin_server.hpp"
#include "proxy/incidents/incident_store.hpp"

namespace wsgate::proxy::incidents {

inline constexpr std::size_t kDefaultIncidentLimit = 100;

// Parses the query of /incidents; on a bad parameter returns nullopt and
// sets `error`.
std::optional<IncidentQuery> parse_incident_query(const AdminRequest& req, std::size_t capacity,
                                                  std::string& error);

AdminResponse list_incidents(const IncidentStore& store, const AdminRequest& req);
AdminResponse get_incident(const IncidentStore& store, const AdminRequest& req);

// Both need the admin token when one is configured: incidents name users.
// The incident browser (/ui/) comes with them, under the same rule.
void register_incident_routes(AdminRouter& admin, const IncidentStore& store);
void register_incident_routes(AdminServer& admin, const IncidentStore& store);

}  // namespace wsgate::proxy::incidents
