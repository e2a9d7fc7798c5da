#include "proxy/incidents_cli.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <csignal>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "common/admin_server.hpp"
#include "common/endpoint.hpp"
#include "common/url_encode.hpp"
#include "common/version.hpp"
#include "proxy/incidents/incident.hpp"

namespace wsgate::proxy::incidents_cli {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::system_clock;

// ---- pure parts --------------------------------------------------------------

std::vector<Replica> expand_admins(const std::vector<std::string>& admins, const Resolve& resolve) {
  std::vector<Replica> out;
  std::set<std::string> labels;
  auto add = [&](Replica r) {
    if (labels.insert(r.label).second) out.push_back(std::move(r));
  };
  for (const auto& text : admins) {
    auto hp = parse_host_port(text);
    if (!hp) {
      add({text, "", 0, "not HOST:PORT"});
      continue;
    }
    boost::system::error_code ec;
    auto literal = net::ip::make_address(hp->host, ec);
    if (!ec) {
      add({HostPort{literal.to_string(), hp->port}.to_string(), literal.to_string(), hp->port, ""});
      continue;
    }
    std::string error;
    auto addresses = resolve(hp->host, error);
    if (addresses.empty()) {
      add({hp->to_string(), hp->host, hp->port,
           "cannot resolve " + hp->host + ": " + (error.empty() ? "no addresses" : error)});
      continue;
    }
    for (const auto& a : addresses) add({HostPort{a, hp->port}.to_string(), a, hp->port, ""});
  }
  return out;
}

std::vector<std::string> system_resolve(const std::string& host, std::string& error) {
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  auto results = resolver.resolve(host, "0", ec);
  std::vector<std::string> out;
  if (ec) {
    error = ec.message();
    return out;
  }
  for (const auto& entry : results) {
    auto a = entry.endpoint().address().to_string();
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  }
  return out;
}

std::string incidents_target(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string t = "/incidents";
  char sep = '?';
  for (const auto& [k, v] : params) {
    t += sep;
    t += url_encode(k) + "=" + url_encode(v);
    sep = '&';
  }
  return t;
}

std::optional<std::vector<Row>> rows_from_body(const std::string& body, const std::string& replica,
                                               std::string& error) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("incidents") ||
      !doc["incidents"].is_array()) {
    error = "answer is not an /incidents document";
    return std::nullopt;
  }
  std::vector<Row> rows;
  for (auto& rec : doc["incidents"]) {
    if (!rec.is_object()) continue;
    Row r;
    if (auto t = rec.find("time"); t != rec.end() && t->is_string())
      r.time =
          incidents::parse_time(t->get_ref<const std::string&>()).value_or(Clock::time_point{});
    rec["replica"] = replica;
    r.record = std::move(rec);
    rows.push_back(std::move(r));
  }
  return rows;
}

namespace {

std::string str_field(const nlohmann::json& j, const char* key, std::string fallback = "") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

std::string close_code(const nlohmann::json& rec) {
  auto c = rec.find("close");
  if (c == rec.end() || !c->is_object()) return "-";
  return str_field(*c, "code", "-");
}

// Display width of UTF-8 text: its code points.
std::size_t width_of(const std::string& s) {
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// Cells hold one line each: control bytes would break the columns.
std::string one_line(std::string s) {
  for (auto& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return s;
}

}  // namespace

void sort_newest_first(std::vector<Row>& rows) {
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (a.time != b.time) return a.time > b.time;
    // Within one replica, ties keep the replica's own order: a list cut by
    // --limit then agrees with the uncut one.
    return str_field(a.record, "replica") < str_field(b.record, "replica");
  });
}

std::string truncate_cell(const std::string& text, std::size_t width) {
  if (width_of(text) <= width) return text;
  if (width < 3) return std::string(width, '.');
  std::string out;
  std::size_t points = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    bool starts = (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
    if (starts && points++ == width - 3) break;
    out += text[i];
  }
  return out + "...";
}

std::string format_table(const std::vector<Row>& rows, const TableOptions& opts, bool header) {
  static const std::vector<std::string> kHeader{"TIME",  "REPLICA",        "CODE",
                                                "STAGE", "CORRELATION ID", "SUMMARY"};
  std::vector<std::vector<std::string>> cells;
  if (header) cells.push_back(kHeader);
  for (const auto& r : rows) {
    auto cut = [&](std::string s, std::size_t w) {
      s = one_line(std::move(s));
      return opts.truncate ? truncate_cell(s, w) : s;
    };
    cells.push_back({str_field(r.record, "time", "-"), str_field(r.record, "replica", "-"),
                     close_code(r.record),
                     cut(str_field(r.record, "failing_stage", "-"), opts.stage_width),
                     cut(str_field(r.record, "correlation_id", "-"), opts.id_width),
                     cut(str_field(r.record, "summary", ""), opts.summary_width)});
  }
  std::vector<std::size_t> widths(kHeader.size(), 0);
  for (const auto& line : cells)
    for (std::size_t i = 0; i < line.size(); ++i)
      widths[i] = std::max(widths[i], width_of(line[i]));
  std::string out;
  for (const auto& line : cells) {
    std::string l;
    for (std::size_t i = 0; i < line.size(); ++i) {
      l += line[i];
      if (i + 1 < line.size()) l += std::string(widths[i] - width_of(line[i]) + 2, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  }
  return out;
}

std::string format_incident(const nlohmann::json& rec) {
  std::ostringstream o;
  auto line = [&](const char* name, const std::string& value) {
    o << name << std::string(20 - std::min<std::size_t>(19, std::string_view(name).size()), ' ')
      << one_line(value) << "\n";
  };
  line("correlation id", str_field(rec, "correlation_id", "-"));
  line("replica", str_field(rec, "replica", "-"));
  line("time", str_field(rec, "time", "-"));
  line("summary", str_field(rec, "summary", "-"));
  std::string user = str_field(rec, "user_id");
  if (user.empty())
    if (auto t = rec.find("backend_trace"); t != rec.end() && t->is_object())
      user = str_field(*t, "user_id");
  line("user", user.empty() ? "unknown" : user);
  if (auto c = rec.find("close"); c != rec.end() && c->is_object())
    line("close", str_field(*c, "code", "-") + " \"" + str_field(*c, "reason") + "\" from " +
                      str_field(*c, "initiator", "-"));
  line("failing stage", str_field(rec, "failing_stage", "unknown"));
  std::string missing;
  if (auto m = rec.find("missing_attributes"); m != rec.end() && m->is_array())
    for (const auto& a : *m)
      missing += (missing.empty() ? "" : ", ") + (a.is_string() ? a.get<std::string>() : a.dump());
  line("missing attributes", missing.empty() ? "none" : missing);
  std::string upstream = str_field(rec, "upstream", "-");
  if (auto ep = str_field(rec, "upstream_endpoint"); !ep.empty())
    upstream += " (endpoint " + ep + ")";
  line("upstream", upstream);
  line("route", str_field(rec, "route", "-"));
  line("client", str_field(rec, "client", "-"));
  if (auto hint = str_field(rec, "hint"); !hint.empty()) line("hint", hint);
  auto trace = rec.find("backend_trace");
  if (trace != rec.end() && trace->is_object() && trace->contains("stages") &&
      (*trace)["stages"].is_array()) {
    o << "trace stages:\n";
    std::vector<std::array<std::string, 4>> rows;
    for (const auto& s : (*trace)["stages"]) {
      if (!s.is_object()) continue;
      rows.push_back({"+" + str_field(s, "t_us", "?") + "us", str_field(s, "stage", "-"),
                      str_field(s, "outcome", "-"), one_line(str_field(s, "detail"))});
    }
    std::array<std::size_t, 3> w{0, 0, 0};
    for (const auto& r : rows)
      for (std::size_t i = 0; i < 3; ++i) w[i] = std::max(w[i], width_of(r[i]));
    for (const auto& r : rows) {
      std::string l = "  ";
      for (std::size_t i = 0; i < 3; ++i) l += r[i] + std::string(w[i] - width_of(r[i]) + 2, ' ');
      l += r[3];
      while (!l.empty() && l.back() == ' ') l.pop_back();
      o << l << "\n";
    }
  } else {
    line("backend trace", "unavailable: " + str_field(rec, "backend_trace_error", "not recorded"));
  }
  return o.str();
}

bool SeenSet::insert(const std::string& replica, const std::string& correlation_id,
                     std::chrono::system_clock::time_point time) {
  auto key = std::make_pair(replica, correlation_id);
  auto [it, added] = seen_.emplace(std::move(key), time);
  (void)it;
  return added;
}

void SeenSet::forget_before(const std::string& replica,
                            std::chrono::system_clock::time_point before) {
  for (auto it = seen_.lower_bound({replica, ""}); it != seen_.end() && it->first.first == replica;)
    it = it->second < before ? seen_.erase(it) : std::next(it);
}

std::size_t SeenSet::size() const { return seen_.size(); }

// ---- HTTP --------------------------------------------------------------------

namespace {

struct Reply {
  bool ok = false;  // a 200 with a body
  unsigned status = 0;
  std::string body;
  std::string error;  // why not ok
};

struct Client {
  std::string token;  // empty: no Authorization header
  std::chrono::milliseconds timeout{3000};
  std::uint64_t max_body = 256ull << 20;
};

// One GET on `ioc`; the deadline covers connect, write and read together.
class Get : public std::enable_shared_from_this<Get> {
 public:
  Get(net::io_context& ioc, const Client& client, const Replica& replica, std::string target,
      Reply& out)
      : stream_(ioc), client_(client), replica_(replica), out_(out) {
    req_.method(http::verb::get);
    req_.target(target);
    req_.version(11);
    req_.set(http::field::host, replica.label);
    req_.set(http::field::user_agent, "wsgate-incidents/" + std::string(version()));
    req_.set(http::field::accept, "application/json");
    req_.set(http::field::connection, "close");
    if (!client.token.empty()) req_.set(http::field::authorization, "Bearer " + client.token);
    parser_.body_limit(client.max_body);
  }

  void start() {
    if (!replica_.error.empty()) return fail(replica_.error);
    boost::system::error_code ec;
    auto address = net::ip::make_address(replica_.host, ec);
    if (ec) return fail("not an address: " + replica_.host);
    stream_.expires_after(client_.timeout);
    stream_.async_connect(tcp::endpoint(address, replica_.port),
                          [self = shared_from_this()](boost::system::error_code e) {
                            if (e) return self->fail(self->describe(e));
                            self->write();
                          });
  }

 private:
  void write() {
    http::async_write(
        stream_, req_, [self = shared_from_this()](boost::system::error_code e, std::size_t) {
          if (e) return self->fail(self->describe(e));
          http::async_read(self->stream_, self->buffer_, self->parser_,
                           [self](boost::system::error_code e2, std::size_t) { self->done(e2); });
        });
  }

  void done(boost::system::error_code ec) {
    if (ec) return fail(describe(ec));
    auto& res = parser_.get();
    out_.status = res.result_int();
    out_.body = std::move(res.body());
    if (out_.status == 200) {
      out_.ok = true;
    } else {
      auto doc = nlohmann::json::parse(out_.body, nullptr, false);
      std::string why = doc.is_object() && doc.contains("error") && doc["error"].is_string()
                            ? doc["error"].get<std::string>()
                            : truncate_cell(one_line(out_.body), 200);
      out_.error = "HTTP " + std::to_string(out_.status) + (why.empty() ? "" : ": " + why);
      if (out_.status == 401 || out_.status == 403)
        out_.error += client_.token.empty() ? " (no --admin-token-file given)"
                                            : " (token from --admin-token-file refused)";
    }
    boost::system::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  void fail(std::string why) {
    out_.ok = false;
    out_.error = std::move(why);
  }

  std::string describe(boost::system::error_code ec) const {
    if (ec == beast::error::timeout)
      return "timeout after " + std::to_string(client_.timeout.count()) + " ms";
    if (ec == http::error::body_limit) return "answer larger than --max-response-mib";
    if (ec == net::error::connection_refused) return "connection refused";
    return ec.message();
  }

  beast::tcp_stream stream_;
  const Client& client_;
  const Replica& replica_;
  Reply& out_;
  http::request<http::empty_body> req_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
};

// GETs `targets[i]` from `replicas[i]`, all at once; returns when every
// one has answered, failed or timed out.
std::vector<Reply> get_all(const Client& client, const std::vector<Replica>& replicas,
                           const std::vector<std::string>& targets) {
  net::io_context ioc;
  std::vector<Reply> replies(replicas.size());
  for (std::size_t i = 0; i < replicas.size(); ++i)
    std::make_shared<Get>(ioc, client, replicas[i], targets[i], replies[i])->start();
  ioc.run();
  return replies;
}

std::vector<Reply> get_all(const Client& client, const std::vector<Replica>& replicas,
                           const std::string& target) {
  return get_all(client, replicas, std::vector<std::string>(replicas.size(), target));
}

// ---- commands ----------------------------------------------------------------

struct Common {
  std::vector<std::string> admins{"127.0.0.1:9090"};
  std::string token_file;
  bool json = false;
  int timeout_ms = 3000;
  int max_response_mib = 256;
  bool no_trunc = false;
};

struct Filters {
  std::string code, stage, since;
  std::size_t limit = 0;
  std::vector<std::string> extra;  // key=value

  std::vector<std::pair<std::string, std::string>> params(bool with_since = true) const {
    std::vector<std::pair<std::string, std::string>> p;
    if (!code.empty()) p.emplace_back("code", code);
    if (!stage.empty()) p.emplace_back("stage", stage);
    if (with_since && !since.empty()) p.emplace_back("since", since);
    if (limit) p.emplace_back("limit", std::to_string(limit));
    for (const auto& kv : extra) {
      auto eq = kv.find('=');
      p.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    }
    return p;
  }
};

std::string seconds_text(double s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

void say(const std::string& text) { std::cerr << "wsgate incidents: " << text << "\n"; }

int exit_for(std::size_t ok, std::size_t total) {
  if (ok == total) return kExitAllOk;
  return ok == 0 ? kExitNoneReachable : kExitPartial;
}

nlohmann::json replica_report(const Replica& r, const Reply& reply) {
  nlohmann::json j{{"admin", r.label}, {"ok", reply.ok}};
  if (!reply.ok) j["error"] = reply.error;
  return j;
}

int cmd_list(const Client& client, const std::vector<Replica>& replicas, const Common& common,
             const Filters& filters) {
  auto replies = get_all(client, replicas, incidents_target(filters.params()));
  std::vector<Row> rows;
  nlohmann::json reports = nlohmann::json::array();
  std::size_t ok = 0;
  for (std::size_t i = 0; i < replicas.size(); ++i) {
    auto& reply = replies[i];
    if (reply.ok) {
      std::string error;
      if (auto got = rows_from_body(reply.body, replicas[i].label, error)) {
        rows.insert(rows.end(), std::make_move_iterator(got->begin()),
                    std::make_move_iterator(got->end()));
        ++ok;
      } else {
        reply.ok = false;
        reply.error = error;
      }
    }
    if (!reply.ok) say("replica " + replicas[i].label + " failed: " + reply.error);
    reports.push_back(replica_report(replicas[i], reply));
  }
  sort_newest_first(rows);
  if (filters.limit && rows.size() > filters.limit) rows.resize(filters.limit);
  if (ok == 0)
    say("no replica answered");
  else if (ok < replicas.size())
    say("partial result: " + std::to_string(ok) + " of " + std::to_string(replicas.size()) +
        " replicas answered");
  if (common.json) {
    nlohmann::json out{{"incidents", nlohmann::json::array()},
                       {"replicas", std::move(reports)},
                       {"partial", ok < replicas.size()}};
    for (auto& r : rows) out["incidents"].push_back(std::move(r.record));
    std::cout << out.dump(2) << "\n";
  } else {
    TableOptions opts;
    opts.truncate = !common.no_trunc;
    if (rows.empty())
      std::cout << "no incidents\n";
    else
      std::cout << format_table(rows, opts);
  }
  return exit_for(ok, replicas.size());
}

int cmd_show(const Client& client, const std::vector<Replica>& replicas, const Common& common,
             const std::string& id) {
  auto replies = get_all(client, replicas, "/incidents/" + url_encode(id));
  std::vector<Row> found;
  std::size_t answered = 0;
  for (std::size_t i = 0; i < replicas.size(); ++i) {
    const auto& reply = replies[i];
    if (reply.ok) {
      auto doc = nlohmann::json::parse(reply.body, nullptr, false);
      if (doc.is_object()) {
        ++answered;
        doc["replica"] = replicas[i].label;
        Row r;
        r.time = incidents::parse_time(str_field(doc, "time")).value_or(Clock::time_point{});
        r.record = std::move(doc);
        found.push_back(std::move(r));
        continue;
      }
      say("replica " + replicas[i].label + " failed: answer is not JSON");
    } else if (reply.status == 404) {
      ++answered;
    } else {
      say("replica " + replicas[i].label + " failed: " + reply.error);
    }
  }
  if (found.empty()) {
    if (answered == 0) {
      say("no replica answered; incident " + id + " not found");
      return kExitNoneReachable;
    }
    if (answered < replicas.size()) {
      say("incident " + id + " is not on the " + std::to_string(answered) +
          " replicas that answered (" + std::to_string(replicas.size() - answered) +
          " did not: it may be there)");
      return kExitPartial;
    }
    say("no incident with correlation id " + id + " on any of " + std::to_string(replicas.size()) +
        " replicas");
    return kExitNotFound;
  }
  sort_newest_first(found);
  if (found.size() > 1)
    say("correlation id " + id + " is on " + std::to_string(found.size()) +
        " replicas; showing the newest (" + str_field(found[0].record, "replica") + ")");
  if (common.json)
    std::cout << found[0].record.dump(2) << "\n";
  else
    std::cout << format_incident(found[0].record);
  return kExitAllOk;
}

std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop.store(true); }

struct TailOptions {
  double interval_s = 1.0;
  std::size_t count = 0;    // 0: unbounded
  double duration_s = 0.0;  // 0: unbounded
  double lookback_s = 60.0;
};

int cmd_tail(const Client& client, const std::vector<Replica>& replicas, const Common& common,
             const Filters& filters, const TailOptions& topts) {
  // Poll for everything the store holds in the window: the server caps the
  // limit at its capacity.
  Filters f = filters;
  f.limit = 1'000'000;
  struct State {
    bool baselined = false;
    std::optional<Clock::time_point> newest;
    std::optional<bool> last_ok;
  };
  std::vector<State> states(replicas.size());
  // With --since the first poll prints what it finds; otherwise it only
  // marks what is already there as seen.
  if (!filters.since.empty())
    for (auto& s : states) s.baselined = true;
  SeenSet seen;
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  const auto start = std::chrono::steady_clock::now();
  const auto lookback =
      std::chrono::milliseconds(static_cast<std::int64_t>(topts.lookback_s * 1000));
  auto past_duration = [&] {
    return topts.duration_s > 0 &&
           std::chrono::steady_clock::now() - start >=
               std::chrono::milliseconds(static_cast<std::int64_t>(topts.duration_s * 1000));
  };
  std::size_t printed = 0, last_ok_count = 0;
  bool header_done = false, announced = false;
  TableOptions table;
  table.truncate = !common.no_trunc;
  while (!g_stop.load() && !past_duration()) {
    std::vector<std::string> targets;
    for (const auto& s : states) {
      auto p = f.params(false);
      if (s.newest)
        p.emplace_back("since", incidents::format_rfc3339(*s.newest - lookback));
      else if (!filters.since.empty())
        p.emplace_back("since", filters.since);
      targets.push_back(incidents_target(p));
    }
    auto replies = get_all(client, replicas, targets);
    std::vector<Row> fresh;
    last_ok_count = 0;
    for (std::size_t i = 0; i < replicas.size(); ++i) {
      auto& st = states[i];
      auto& reply = replies[i];
      std::optional<std::vector<Row>> rows;
      if (reply.ok) {
        rows = rows_from_body(reply.body, replicas[i].label, reply.error);
        reply.ok = rows.has_value();
      }
      if (st.last_ok != reply.ok) {
        if (!reply.ok)
          say("replica " + replicas[i].label + " failed: " + reply.error);
        else if (st.last_ok.has_value())
          say("replica " + replicas[i].label + " answers again");
        st.last_ok = reply.ok;
      }
      if (!reply.ok) continue;
      ++last_ok_count;
      for (auto& r : *rows) {
        auto id = str_field(r.record, "correlation_id");
        if (!st.newest || r.time > *st.newest) st.newest = r.time;
        if (seen.insert(replicas[i].label, id, r.time) && st.baselined)
          fresh.push_back(std::move(r));
      }
      st.baselined = true;
      if (st.newest) seen.forget_before(replicas[i].label, *st.newest - lookback);
    }
    if (!announced) {
      // Tells people (and tests) from when on new incidents are printed.
      say("following " + std::to_string(replicas.size()) + " replicas (" +
          std::to_string(last_ok_count) + " answered), every " + seconds_text(topts.interval_s) +
          " s");
      announced = true;
    }
    // Oldest first, as a log reads.
    sort_newest_first(fresh);
    std::reverse(fresh.begin(), fresh.end());
    if (topts.count && printed + fresh.size() > topts.count) fresh.resize(topts.count - printed);
    printed += fresh.size();
    if (common.json) {
      for (const auto& r : fresh) std::cout << r.record.dump() << "\n";
    } else if (!fresh.empty()) {
      std::cout << format_table(fresh, table, !header_done);
      header_done = true;
    }
    std::cout << std::flush;
    if (topts.count && printed >= topts.count) break;
    auto wake = std::chrono::steady_clock::now() +
                std::chrono::milliseconds(static_cast<std::int64_t>(topts.interval_s * 1000));
    while (!g_stop.load() && !past_duration() && std::chrono::steady_clock::now() < wake)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return exit_for(last_ok_count, replicas.size());
}

constexpr const char* kHelpFooter =
    "Each --admin HOST:PORT is one replica; a name (e.g. a Kubernetes headless Service)\n"
    "becomes one replica per A/AAAA address it resolves to, at that port.\n"
    "Exit codes:\n"
    "  0  every replica answered (show: the incident was found)\n"
    "  1  no replica answered\n"
    "  2  bad command line\n"
    "  3  partial: some replicas did not answer (they are named on stderr and, with --json,\n"
    "     in \"replicas\"); show: not found on those that answered\n"
    "  4  show: every replica answered and none holds the incident";

struct KeyValueValidator : CLI::Validator {
  KeyValueValidator() : CLI::Validator("KEY=VALUE") {
    func_ = [](std::string& s) {
      auto eq = s.find('=');
      return eq == std::string::npos || eq == 0 ? "expected KEY=VALUE, got '" + s + "'"
                                                : std::string();
    };
  }
};

struct HostPortValidator : CLI::Validator {
  HostPortValidator() : CLI::Validator("HOST:PORT") {
    func_ = [](std::string& s) { return host_port_error(s); };
  }
};

}  // namespace

int run(int argc, char** argv) {
  Common common;
  Filters filters;
  TailOptions topts;
  std::string show_id;
  CLI::App app{"wsgate incidents: the incidents of one or many proxy replicas, merged by time",
               "wsgate incidents"};
  app.get_formatter()->column_width(36);
  app.footer(kHelpFooter);
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--admin", common.admins,
                 "Admin address of a replica (repeatable), or a name resolving to every replica")
      ->check(HostPortValidator())
      ->capture_default_str();
  app.add_option("--admin-token-file", common.token_file,
                 "File holding the admin token (the server's --admin-token-file); sent as "
                 "Authorization: Bearer")
      ->check(CLI::ExistingFile);
  app.add_flag("--json", common.json, "JSON for scripts instead of a table");
  app.add_option("--timeout-ms", common.timeout_ms, "Per replica: connect, send and read, in all")
      ->check(CLI::Range(1, 600000))
      ->capture_default_str();
  app.add_option("--max-response-mib", common.max_response_mib,
                 "Largest answer read from a replica")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_flag("--no-trunc", common.no_trunc, "Table: do not cut long cells");

  auto add_filters = [&](CLI::App* sub, bool with_limit) {
    sub->fallthrough();
    sub->add_option("--code", filters.code, "Close code, as /incidents?code=")
        ->check(CLI::Range(0, 65535));
    sub->add_option("--stage", filters.stage, "Failing stage, as /incidents?stage=");
    sub->add_option("--since", filters.since, "RFC 3339 or unix seconds, as /incidents?since=");
    if (with_limit)
      sub->add_option("--limit", filters.limit,
                      "At most N incidents in all (each replica is asked for N)")
          ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}));
    sub->add_option("--filter", filters.extra,
                    "Any other /incidents query parameter, passed through (repeatable)")
        ->check(KeyValueValidator());
  };
  auto* list = app.add_subcommand("list", "Incidents of every replica, newest first");
  add_filters(list, true);
  auto* show = app.add_subcommand("show", "One incident, from whichever replica holds it");
  show->fallthrough();
  show->add_option("ID", show_id, "Correlation id")->required();
  auto* tail = app.add_subcommand(
      "tail",
      "Follow: print new incidents (oldest first) until SIGINT/SIGTERM, --count or --duration");
  add_filters(tail, false);
  tail->add_option("--interval", topts.interval_s, "Seconds between polls")
      ->check(CLI::Range(0.05, 3600.0))
      ->capture_default_str();
  tail->add_option("--count", topts.count, "Stop after N incidents")->check(CLI::PositiveNumber);
  tail->add_option("--duration", topts.duration_s, "Stop after S seconds")
      ->check(CLI::PositiveNumber);
  tail->add_option("--lookback", topts.lookback_s,
                   "Seconds before the newest seen incident still asked for (an incident is "
                   "stored after its trace fetch, so it can arrive after a newer one)")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == static_cast<int>(CLI::ExitCodes::Success) ? kExitAllOk : kExitUsage;
  }

  Client client;
  client.timeout = std::chrono::milliseconds(common.timeout_ms);
  client.max_body = static_cast<std::uint64_t>(common.max_response_mib) << 20;
  if (!common.token_file.empty()) {
    std::string error;
    auto token = read_token_file(common.token_file, error);
    if (!token) {
      say("--admin-token-file: " + error);
      return kExitUsage;
    }
    client.token = std::move(*token);
  }
  auto replicas = expand_admins(common.admins, system_resolve);
  if (*list) return cmd_list(client, replicas, common, filters);
  if (*show) return cmd_show(client, replicas, common, show_id);
  return cmd_tail(client, replicas, common, filters, topts);
}

}  // namespace wsgate::proxy::incidents_cli
