#include "proxy/incidents/incident_browser.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "common/redact.hpp"
#include "proxy/incidents/incident.hpp"
#include "proxy/incidents/incidents_api.hpp"

namespace wsgate::proxy::incidents {
namespace {

using json = nlohmann::json;

// No script anywhere; styles only from the admin port itself (inline style
// attributes are refused too: the waterfall is SVG geometry).
constexpr const char* kCsp =
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'";

constexpr std::string_view kStyle = R"css(
:root { color-scheme: light; --fail: #c62828; --fallback: #e69500; --ok: #2e7d32; --muted: #666; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d1d1d; background: #fafafa; }
header { background: #263238; color: #fff; padding: 8px 20px; }
header a { color: #fff; text-decoration: none; font-weight: 600; }
main { padding: 12px 20px 40px; max-width: 1400px; }
h1 { font-size: 20px; margin: 8px 0; }
h2 { font-size: 16px; margin: 22px 0 6px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eee; vertical-align: top; }
th { background: #eceff1; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, monospace; font-size: 13px; word-break: break-all; }
.summary { font-size: 18px; font-weight: 600; }
.hint { background: #fff8e1; border-left: 4px solid var(--fallback); padding: 6px 10px; }
.error { color: var(--fail); }
tr.failing { background: #ffebee; }
tr.failing td.stage-name { color: var(--fail); font-weight: 700; }
.mark { color: var(--fail); font-weight: 700; }
.outcome-ok { color: var(--ok); }
.outcome-fallback { color: var(--fallback); font-weight: 600; }
.outcome-error { color: var(--fail); font-weight: 700; }
.missing-attr { display: inline-block; background: var(--fail); color: #fff; border-radius: 3px;
  padding: 0 5px; margin: 1px 3px 1px 0; font-family: ui-monospace, monospace; font-size: 12px; }
svg rect.bar-ok { fill: var(--ok); }
svg rect.bar-fallback { fill: var(--fallback); }
svg rect.bar-error { fill: var(--fail); }
svg rect.track { fill: #eceff1; }
svg circle.c2u { fill: #1565c0; }
svg circle.u2c { fill: #6a1b9a; }
svg circle.close { fill: var(--fail); }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; }
form.filters { display: flex; flex-wrap: wrap; gap: 6px 10px; align-items: end; }
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
form.filters input { font: inherit; padding: 2px 4px; width: 11em; }
.links a { margin-right: 14px; }
pre { background: #fff; border: 1px solid #eee; padding: 6px; white-space: pre-wrap;
  word-break: break-all; }
)css";

std::string str(const json& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  return dump_json(*it);
}

const json* member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::string esc(std::string_view s) { return html_escape(s); }

std::string fmt_ms(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, ms < 10 ? "%.3f" : "%.1f", ms);
  return buf;
}

std::string fmt_num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

AdminResponse html(unsigned status, std::string body) {
  AdminResponse r;
  r.status = status;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::move(body);
  r.headers = {{"Content-Security-Policy", kCsp},
               {"X-Content-Type-Options", "nosniff"},
               {"Referrer-Policy", "no-referrer"},
               {"Cache-Control", "no-store"}};
  return r;
}

// `root` is the relative path from the page to /ui/ ("" or "../").
std::string page(std::string_view title, std::string_view root, const std::string& content) {
  std::string out;
  out.reserve(content.size() + 512);
  out += "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">";
  out += "<title>" + esc(title) + "</title>";
  out += "<link rel=\"stylesheet\" href=\"" + std::string(root) + "style.css\"></head><body>";
  out += "<header><a href=\"" + std::string(root.empty() ? "./" : root) +
         "\">wsgate &middot; incidents</a></header><main>";
  out += content;
  out += "</main></body></html>\n";
  return out;
}

AdminResponse error_page(unsigned status, std::string_view root, std::string_view message) {
  return html(status, page("wsgate incidents: error", root,
                           "<h1>Error</h1><p class=\"error\" id=\"error\">" + esc(message) +
                               "</p><p><a href=\"" + std::string(root.empty() ? "./" : root) +
                               "\">all incidents</a></p>"));
}

// The filters the list honours, in the order the form shows them.
constexpr const char* kFilters[] = {"code",  "stage", "route", "upstream",
                                    "since", "until", "limit"};

std::string query_string(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string q;
  for (const auto& [k, v] : params) {
    if (v.empty()) continue;
    q += q.empty() ? '?' : '&';
    q += url_encode(k) + "=" + url_encode(v);
  }
  return q;
}

std::vector<std::pair<std::string, std::string>> current_filters(const AdminRequest& req) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* f : kFilters) out.emplace_back(f, req.param(f));
  return out;
}

// The current filters with `key` set to `value`.
std::string with_filter(const AdminRequest& req, std::string_view key, const std::string& value) {
  auto params = current_filters(req);
  for (auto& [k, v] : params)
    if (k == key) v = value;
  return query_string(params);
}

std::string_view opcode_name(std::int64_t op) {
  switch (op) {
    case 0:
      return "continuation";
    case 1:
      return "text";
    case 2:
      return "binary";
    case 8:
      return "close";
    case 9:
      return "ping";
    case 10:
      return "pong";
  }
  return "reserved";
}

double number(const json& obj, const char* key, double fallback = 0) {
  const json* v = member(obj, key);
  return v && v->is_number() ? v->get<double>() : fallback;
}

std::string render_groups(const AdminRequest& req, const IncidentGroups& groups) {
  std::string out;
  out +=
      "<section id=\"by-stage\"><h2>By failing stage</h2><table><thead><tr><th>stage</th>"
      "<th class=\"num\">count</th><th>first</th><th>last</th></tr></thead><tbody>";
  for (const auto& g : groups.by_stage) {
    out += "<tr class=\"group-stage\" data-stage=\"" + esc(g.key) + "\"><td><a href=\"" +
           esc(with_filter(req, "stage", g.key).empty() ? "./" : with_filter(req, "stage", g.key)) +
           "\"><code>" + esc(g.key) + "</code></a></td><td class=\"num count\">" +
           std::to_string(g.count) + "</td><td class=\"mono\">" + esc(g.first) +
           "</td><td class=\"mono\">" + esc(g.last) + "</td></tr>";
  }
  out += "</tbody></table></section>";
  out +=
      "<section id=\"by-summary\"><h2>By summary</h2><table><thead><tr><th>summary</th>"
      "<th class=\"num\">count</th><th>first</th><th>last</th><th>newest</th></tr></thead>"
      "<tbody>";
  for (const auto& g : groups.by_summary) {
    out += "<tr class=\"group-summary\" data-stage=\"" + esc(g.stage) +
           "\"><td class=\"group-key\">" + esc(g.key) + "</td><td class=\"num count\">" +
           std::to_string(g.count) + "</td><td class=\"mono\">" + esc(g.first) +
           "</td><td class=\"mono\">" + esc(g.last) + "</td><td><a href=\"incidents/" +
           esc(url_encode(g.newest_id)) + "\">" + esc(g.newest_id) + "</a></td></tr>";
  }
  out += "</tbody></table></section>";
  return out;
}

std::string render_filter_form(const AdminRequest& req) {
  std::string out = "<form class=\"filters\" method=\"get\" action=\"./\">";
  for (const char* f : kFilters) {
    out += "<label>" + std::string(f) + "<input name=\"" + f + "\" value=\"" + esc(req.param(f)) +
           "\"></label>";
  }
  out += "<button type=\"submit\">Filter</button></form>";
  return out;
}

// Start offset and duration (the gap to the next stage) of each stage, in
// microseconds; the last stage lasts until the trace's end, which it marks.
struct StageTiming {
  double start_us = 0, duration_us = 0;
};

std::vector<StageTiming> stage_timings(const json& stages) {
  std::vector<StageTiming> out(stages.size());
  for (std::size_t i = 0; i < stages.size(); ++i) out[i].start_us = number(stages[i], "t_us");
  for (std::size_t i = 0; i + 1 < stages.size(); ++i)
    out[i].duration_us = std::max(0.0, out[i + 1].start_us - out[i].start_us);
  return out;
}

std::string render_trace(const json& record, const std::string& failing_stage) {
  std::string out = "<section id=\"trace\"><h2>Backend stage trace</h2>";
  const json* trace = member(record, "backend_trace");
  const json* stages = trace ? member(*trace, "stages") : nullptr;
  if (!stages || !stages->is_array()) {
    out += "<p class=\"error\" id=\"trace-error\">No backend trace: " +
           esc(str(record, "backend_trace_error")) + "</p></section>";
    return out;
  }
  if (const json* t = member(record, "backend_trace_truncated"); t && t->is_object())
    out += "<p class=\"error\">Trace cut to " + esc(str(*t, "max_bytes")) +
           " bytes: " + esc(str(*t, "stages_dropped_before")) + " stage(s) before and " +
           esc(str(*t, "stages_dropped_after")) + " after the failing one left out.</p>";
  auto timings = stage_timings(*stages);
  double span = 1;
  for (const auto& t : timings) span = std::max(span, t.start_us + t.duration_us);
  constexpr double kWidth = 360, kHeight = 14;
  out +=
      "<table class=\"waterfall\"><thead><tr><th class=\"num\">#</th><th>stage</th>"
      "<th>outcome</th><th class=\"num\">start ms</th><th class=\"num\">duration ms</th>"
      "<th>0 &ndash; " +
      fmt_ms(span / 1000) + " ms</th><th>detail</th></tr></thead><tbody>";
  bool failing_marked = false;
  for (std::size_t i = 0; i < stages->size(); ++i) {
    const json& st = (*stages)[i];
    const std::string name = str(st, "stage"), outcome = str(st, "outcome");
    const bool failing = !failing_marked && outcome == "error" && name == failing_stage;
    failing_marked = failing_marked || failing;
    std::string bar_class = outcome == "error"      ? "bar-error"
                            : outcome == "fallback" ? "bar-fallback"
                                                    : "bar-ok";
    const double x = timings[i].start_us / span * kWidth;
    const double w = std::max(2.0, timings[i].duration_us / span * kWidth);
    out += "<tr class=\"stage" + std::string(failing ? " failing" : "") + "\" data-stage=\"" +
           esc(name) + "\" data-outcome=\"" + esc(outcome) + "\"><td class=\"num\">" +
           std::to_string(i + 1) + "</td><td class=\"stage-name\"><code>" + esc(name) + "</code>" +
           (failing ? " <span class=\"mark failing-mark\">&#9664; failing stage</span>" : "") +
           "</td><td class=\"outcome-" + esc(outcome) + "\">" + esc(outcome) +
           "</td><td class=\"num\">" + fmt_ms(timings[i].start_us / 1000) +
           "</td><td class=\"num\">" +
           (i + 1 < stages->size() ? fmt_ms(timings[i].duration_us / 1000) : std::string("end")) +
           "</td><td><svg width=\"" + fmt_num(kWidth) + "\" height=\"" + fmt_num(kHeight) +
           "\" role=\"img\"><rect class=\"track\" x=\"0\" y=\"0\" width=\"" + fmt_num(kWidth) +
           "\" height=\"" + fmt_num(kHeight) + "\"/><rect class=\"" + bar_class + "\" x=\"" +
           fmt_num(std::min(x, kWidth - 2)) + "\" y=\"2\" width=\"" + fmt_num(w) + "\" height=\"" +
           fmt_num(kHeight - 4) + "\"/></svg></td><td>";
    if (const json* missing = member(st, "missing"); missing && missing->is_array())
      for (const auto& m : *missing)
        out += "<span class=\"missing-attr\">missing " + esc(str(m, "attribute")) + "</span>";
    out += "<span class=\"mono\">" + esc(str(st, "detail")) + "</span></td></tr>";
  }
  out += "</tbody></table>";
  if (trace->contains("stages_dropped"))
    out += "<p>" + esc(str(*trace, "stages_dropped")) +
           " stage(s) dropped by the backend's per-trace cap.</p>";
  out += "</section>";
  return out;
}

std::string render_missing(const json& record) {
  // The backend names each missing attribute's source on the stage that
  // found it missing; the record's own list covers older backends.
  struct Source {
    std::string source, found, stage;
  };
  std::vector<std::pair<std::string, Source>> rows;
  auto find_row = [&rows](const std::string& a) {
    return std::find_if(rows.begin(), rows.end(), [&a](const auto& r) { return r.first == a; });
  };
  if (const json* trace = member(record, "backend_trace"))
    if (const json* stages = member(*trace, "stages"); stages && stages->is_array())
      for (const auto& st : *stages)
        if (const json* missing = member(st, "missing"); missing && missing->is_array())
          for (const auto& m : *missing) {
            auto a = str(m, "attribute");
            if (a.empty() || find_row(a) != rows.end()) continue;
            rows.push_back({a, {str(m, "source"), str(m, "found"), str(st, "stage")}});
          }
  if (const json* list = member(record, "missing_attributes"); list && list->is_array())
    for (const auto& v : *list)
      if (v.is_string() && find_row(v.get<std::string>()) == rows.end())
        rows.push_back({v.get<std::string>(), {}});
  std::string out = "<section id=\"missing\"><h2>Missing attributes</h2>";
  if (rows.empty()) return out + "<p id=\"no-missing\">None reported.</p></section>";
  out +=
      "<table><thead><tr><th>attribute</th><th>should come from</th><th>context found</th>"
      "<th>stage</th></tr></thead><tbody>";
  for (const auto& [attr, src] : rows) {
    out += "<tr class=\"missing-attribute\" data-attribute=\"" + esc(attr) +
           "\"><td><span class=\"missing-attr\">" + esc(attr) +
           "</span></td><td class=\"source\">" +
           (src.source.empty() ? std::string("<em>the backend's trace does not say</em>")
                               : esc(src.source)) +
           "</td><td class=\"mono\">" + esc(src.found) + "</td><td><code>" + esc(src.stage) +
           "</code></td></tr>";
  }
  return out + "</tbody></table></section>";
}

std::string render_frames(const json& record) {
  const json* frames = member(record, "frames");
  if (!frames || !frames->is_array()) return {};
  std::string out = "<section id=\"frames\"><h2>Last frames (flight recorder)</h2>";
  if (frames->empty()) return out + "<p>No frames recorded.</p></section>";
  double t_max = 1;
  for (const auto& f : *frames) t_max = std::max(t_max, number(f, "t_ms"));
  constexpr double kWidth = 720, kLane = 22;
  out += "<svg class=\"frame-timeline\" width=\"" + fmt_num(kWidth + 20) + "\" height=\"" +
         fmt_num(2 * kLane + 6) + "\" role=\"img\"><rect class=\"track\" x=\"0\" y=\"2\" width=\"" +
         fmt_num(kWidth + 20) + "\" height=\"" + fmt_num(kLane - 4) +
         "\"/><rect class=\"track\" x=\"0\" y=\"" + fmt_num(kLane + 2) + "\" width=\"" +
         fmt_num(kWidth + 20) + "\" height=\"" + fmt_num(kLane - 4) + "\"/>";
  for (const auto& f : *frames) {
    const bool c2u = str(f, "direction") == "client_to_upstream";
    const bool close = number(f, "opcode", -1) == 8;
    out += "<circle class=\"" +
           std::string(close ? "close"
                       : c2u ? "c2u"
                             : "u2c") +
           "\" cx=\"" + fmt_num(10 + number(f, "t_ms") / t_max * kWidth) + "\" cy=\"" +
           fmt_num(c2u ? kLane / 2 + 1 : kLane * 1.5 + 1) + "\" r=\"5\"/>";
  }
  out +=
      "</svg><p class=\"mono\">top: client &rarr; upstream, bottom: upstream &rarr; client, 0 "
      "&ndash; " +
      fmt_ms(t_max) + " ms</p>";
  out +=
      "<table><thead><tr><th class=\"num\">t ms</th><th>direction</th><th>opcode</th>"
      "<th>fin</th><th>rsv</th><th class=\"num\">length</th><th>masked</th><th>close / text</th>"
      "</tr></thead><tbody>";
  for (const auto& f : *frames) {
    const std::string dir = str(f, "direction");
    const json* op = member(f, "opcode");
    std::string opname = op && op->is_number_integer()
                             ? std::string(opcode_name(op->get<std::int64_t>())) + " (" +
                                   std::to_string(op->get<std::int64_t>()) + ")"
                             : str(f, "opcode");
    std::string close;
    if (f.contains("close_code"))
      close =
          str(f, "close_code") + (f.contains("close_reason") ? " " : "") + str(f, "close_reason");
    else if (f.contains("text"))
      close = str(f, "text") + (str(f, "text_cut") == "true" ? "\u2026" : "");
    else if (f.contains("text_not_utf8"))
      close = "(text, not UTF-8)";
    out += "<tr class=\"frame\" data-direction=\"" + esc(dir) + "\"><td class=\"num\">" +
           esc(str(f, "t_ms")) + "</td><td>" +
           (dir == "client_to_upstream"   ? std::string("client &rarr; upstream")
            : dir == "upstream_to_client" ? std::string("upstream &rarr; client")
                                          : esc(dir)) +
           "</td><td>" + esc(opname) + "</td><td>" + esc(str(f, "fin")) + "</td><td>" +
           esc(str(f, "rsv")) + "</td><td class=\"num\">" + esc(str(f, "length")) + "</td><td>" +
           esc(str(f, "masked")) + "</td><td class=\"mono\">" + esc(close) + "</td></tr>";
  }
  return out + "</tbody></table></section>";
}

std::string dl_row(std::string_view name, const std::string& value, const char* id = nullptr) {
  std::string out = "<dt>" + esc(name) + "</dt><dd";
  if (id) out += std::string(" id=\"") + id + "\"";
  out += ">";
  out += value.empty() ? "<em>unknown</em>" : "<span class=\"mono\">" + esc(value) + "</span>";
  return out + "</dd>";
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

IncidentRow incident_row(const json& record) {
  IncidentRow r;
  r.correlation_id = str(record, "correlation_id");
  r.time = str(record, "time");
  if (const json* close = member(record, "close"))
    if (const json* code = member(*close, "code"); code && code->is_number_integer() &&
                                                   code->get<std::int64_t>() >= 0 &&
                                                   code->get<std::int64_t>() <= 65535)
      r.code = static_cast<std::uint16_t>(code->get<std::int64_t>());
  r.stage = str(record, "failing_stage");
  r.summary = str(record, "summary");
  r.route = str(record, "route");
  r.upstream = str(record, "upstream");
  return r;
}

IncidentGroups group_incidents(const std::vector<IncidentRow>& rows) {
  auto group_by = [&rows](auto key_of) {
    std::vector<IncidentGroup> out;
    std::map<std::string, std::size_t> index;
    for (const auto& r : rows) {
      std::string key = key_of(r);
      auto [it, fresh] = index.try_emplace(key, out.size());
      if (fresh) {
        out.push_back({key, 0, r.time, r.time, r.correlation_id, r.stage});
      }
      auto& g = out[it->second];
      ++g.count;
      if (r.time < g.first) g.first = r.time;
      if (r.time > g.last) {
        g.last = r.time;
        g.newest_id = r.correlation_id;
        g.stage = r.stage;
      }
    }
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return a.count != b.count ? a.count > b.count : a.last > b.last;
    });
    return out;
  };
  IncidentGroups g;
  g.by_stage = group_by([](const IncidentRow& r) { return r.stage.empty() ? "unknown" : r.stage; });
  g.by_summary = group_by([](const IncidentRow& r) { return r.summary; });
  return g;
}

AdminResponse incident_list_page(const IncidentStore& store, const AdminRequest& req) {
  std::string error;
  auto q = parse_incident_query(req, store.capacity(), error);
  if (!q) return error_page(400, "", error);
  const std::size_t shown = q->limit;
  // Groups count every match in the store, the table shows `limit` of them.
  q->limit = store.capacity();
  auto records = store.query(*q);
  std::vector<IncidentRow> rows;
  rows.reserve(records.size());
  for (const auto& text : records) {
    auto doc = json::parse(*text, nullptr, false);
    if (!doc.is_discarded()) rows.push_back(incident_row(doc));
  }
  auto groups = group_incidents(rows);

  std::string c = "<h1>Incidents</h1>";
  c += render_filter_form(req);
  c += "<p class=\"links\"><span id=\"match-count\">" + std::to_string(rows.size()) +
       "</span> incident(s) match. <a id=\"raw-json\" href=\"" +
       esc("../incidents" + query_string(current_filters(req))) +
       "\">raw JSON</a><a href=\"./\">clear filters</a></p>";
  c += render_groups(req, groups);
  c += "<section id=\"incidents\"><h2>Newest first</h2><table><thead><tr><th>time</th>"
       "<th>code</th><th>failing stage</th><th>summary</th><th>route</th><th>upstream</th>"
       "</tr></thead><tbody>";
  for (std::size_t i = 0; i < rows.size() && i < shown; ++i) {
    const auto& r = rows[i];
    c += "<tr class=\"incident\" data-correlation-id=\"" + esc(r.correlation_id) +
         "\"><td class=\"mono\"><a href=\"incidents/" + esc(url_encode(r.correlation_id)) + "\">" +
         esc(r.time) + "</a></td><td>" + std::to_string(r.code) + "</td><td><code>" + esc(r.stage) +
         "</code></td><td>" + esc(r.summary) + "</td><td class=\"mono\">" + esc(r.route) +
         "</td><td class=\"mono\">" + esc(r.upstream) + "</td></tr>";
  }
  c += "</tbody></table></section>";
  return html(200, page("wsgate incidents", "", c));
}

AdminResponse incident_page(const IncidentStore& store, const AdminRequest& req) {
  constexpr std::string_view kPrefix = "/ui/incidents/";
  const std::string id = percent_decode(std::string_view(req.path).substr(kPrefix.size()));
  auto text = store.find(id);
  if (!text) return error_page(404, "../", "no incident with correlation_id " + redacted(id));
  auto record = json::parse(*text, nullptr, false);
  if (record.is_discarded() || !record.is_object())
    return error_page(500, "../", "the stored record for " + id + " is not a JSON object");

  const std::string stage = str(record, "failing_stage");
  std::string hint = str(record, "hint");
  if (hint.empty()) hint = std::string(hint_for_stage(stage.empty() ? "unknown" : stage));
  const json* close = member(record, "close");
  static const json kEmpty = json::object();
  if (!close) close = &kEmpty;

  std::string c;
  c += "<h1 class=\"summary\" id=\"summary\">" + esc(str(record, "summary")) + "</h1>";
  c += "<p class=\"hint\" id=\"hint\">" + esc(hint) + "</p>";
  c += "<p class=\"links\"><a id=\"raw-json\" href=\"../../incidents/" + esc(url_encode(id)) +
       "\">raw JSON</a><a href=\"../" +
       esc(query_string({{"stage", stage}, {"code", str(*close, "code")}})) +
       "\">incidents like this</a><a href=\"../\">all incidents</a></p>";
  c += "<section id=\"who\"><h2>Who</h2><dl>";
  c += dl_row("user_id", str(record, "user_id"), "user-id");
  c += dl_row("client", str(record, "client"), "client");
  c += dl_row("route", str(record, "route"), "route");
  c += dl_row("path", str(record, "path"), "path");
  c += dl_row("upstream", str(record, "upstream"), "upstream");
  if (record.contains("upstream_endpoint"))
    c += dl_row("upstream endpoint", str(record, "upstream_endpoint"));
  c += dl_row("correlation_id", str(record, "correlation_id"), "correlation-id");
  c += dl_row("traceparent", str(record, "traceparent"));
  c += dl_row("time", str(record, "time"));
  c += dl_row("duration ms", str(record, "duration_ms"));
  c += "</dl></section>";
  c += "<section id=\"close\"><h2>Close</h2><dl>";
  c += dl_row("code", str(*close, "code"), "close-code");
  c += dl_row("reason", str(*close, "reason"), "close-reason");
  c += dl_row("initiator", str(*close, "initiator"), "close-initiator");
  std::string complete = str(record, "close_handshake_complete");
  c += dl_row("close handshake",
              complete == "true"    ? "complete"
              : complete == "false" ? "not complete"
                                    : complete,
              "close-handshake");
  if (auto end = str(record, "end_detail"); !end.empty()) c += dl_row("end", end);
  c += dl_row("backend policy", str(record, "policy"));
  c += "</dl></section>";
  c += render_trace(record, stage);
  c += render_missing(record);
  c += render_frames(record);
  if (const json* last = member(record, "last_upstream_message"); last && last->is_object())
    if (auto t = str(*last, "text"); !t.empty())
      c += "<section id=\"last-message\"><h2>Last upstream message</h2><pre>" + esc(t) +
           "</pre></section>";
  return html(200, page("wsgate incident " + id, "../", c));
}

void register_incident_browser(AdminRouter& admin, const IncidentStore& store) {
  admin.handle(
      "/ui",
      [](const AdminRequest&) {
        AdminResponse r = AdminResponse::text(308, "see /ui/\n");
        r.headers.emplace_back("Location", "/ui/");
        return r;
      },
      AdminAccess::users);
  admin.handle(
      "/ui/",
      [&store](const AdminRequest& req) {
        if (req.path == "/ui/") return incident_list_page(store, req);
        if (req.path == "/ui/style.css") {
          AdminResponse r;
          r.content_type = "text/css; charset=utf-8";
          r.body = std::string(kStyle);
          r.headers = {{"X-Content-Type-Options", "nosniff"}, {"Cache-Control", "no-cache"}};
          return r;
        }
        if (req.path.starts_with("/ui/incidents/") && req.path.size() > 14)
          return incident_page(store, req);
        return error_page(404, "", "no such page");
      },
      AdminAccess::users);
}

}  // namespace wsgate::proxy::incidents
