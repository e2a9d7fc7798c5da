#pragma once
// The incident browser on the admin port:
//   GET /ui/                           the list (filters as /incidents, plus
//                                      counts grouped by failing stage and by summary)
//   GET /ui/incidents/{correlation_id} one incident: summary, who, the close,
//                                      the backend's stage waterfall, missing
//                                      attributes and where they come from,
//                                      the flight recorder's frames
//   GET /ui/style.css                  the page's style sheet
// HTML rendered here, no script at all: every string taken from an incident
// is escaped (close reasons, targets, user ids and traces are client- or
// backend-controlled), and the Content-Security-Policy forbids scripts and
// anything not served from the admin port, so the pages work offline.
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/admin_server.hpp"
#include "common/url_encode.hpp"
#include "proxy/incidents/incident_store.hpp"

namespace wsgate::proxy::incidents {

// Text for an HTML text node or a quoted attribute value: & < > " ' escaped.
std::string html_escape(std::string_view text);
using wsgate::url_encode;  // for path segments and query values

// The fields of one record the list shows and groups on.
struct IncidentRow {
  std::string correlation_id;
  std::string time;  // RFC 3339 UTC, as recorded: sorts as text
  std::uint16_t code = 0;
  std::string stage;
  std::string summary;
  std::string route;
  std::string upstream;
};
IncidentRow incident_row(const nlohmann::json& record);

// Incidents sharing a key (a failing stage, or a summary): a storm of
// identical incidents is one group.
struct IncidentGroup {
  std::string key;
  std::size_t count = 0;
  std::string first;      // oldest time in the group
  std::string last;       // newest time
  std::string newest_id;  // correlation ID of the newest
  std::string stage;      // of the newest (for summary groups)
};
struct IncidentGroups {
  std::vector<IncidentGroup> by_stage;
  std::vector<IncidentGroup> by_summary;
};
// Largest group first; equal counts: the most recent first.
IncidentGroups group_incidents(const std::vector<IncidentRow>& rows);

AdminResponse incident_list_page(const IncidentStore& store, const AdminRequest& req);
AdminResponse incident_page(const IncidentStore& store, const AdminRequest& req);

// /ui and /ui/...; they need the admin token when one is configured, as
// /incidents does.
void register_incident_browser(AdminRouter& admin, const IncidentStore& store);

}  // namespace wsgate::proxy::incidents
