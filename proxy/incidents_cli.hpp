#pragma once
// `wsgate incidents list|show ID|tail`: the incidents of one or many proxy
// replicas, asked over their admin endpoints and merged by time. The pure
// parts (address expansion, merge, table) are here for the unit tests; the
// HTTP client and the commands live in incidents_cli.cpp.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wsgate::proxy::incidents_cli {

// Exit codes of the subcommand (also in its --help and README "Exit codes").
inline constexpr int kExitAllOk = 0;
inline constexpr int kExitNoneReachable = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitPartial = 3;
inline constexpr int kExitNotFound = 4;

// One replica's admin address as the CLI asks it. `label` is what rows and
// reports name it by ("127.0.0.1:9090", "[::1]:9090"); a name that did not
// resolve keeps its own spelling and carries `error`.
struct Replica {
  std::string label;
  std::string host;
  std::uint16_t port = 0;
  std::string error;
};

// The addresses `host` resolves to (numeric strings), or an error message.
using Resolve =
    std::function<std::vector<std::string>(const std::string& host, std::string& error)>;

// Each --admin HOST:PORT becomes one replica; a name resolving to several
// A/AAAA addresses becomes one replica per address at that port. Literal
// addresses are not resolved. Duplicates (the same address twice) are kept
// once, in first-seen order. Values must already be valid HOST:PORT.
std::vector<Replica> expand_admins(const std::vector<std::string>& admins, const Resolve& resolve);

// The system resolver (getaddrinfo through Asio), both address families.
std::vector<std::string> system_resolve(const std::string& host, std::string& error);

// "/incidents?code=1011&stage=..." with every value percent-encoded, in the
// order given.
std::string incidents_target(const std::vector<std::pair<std::string, std::string>>& params);

// One incident as fetched, tagged with the replica that holds it.
struct Row {
  std::chrono::system_clock::time_point time{};
  nlohmann::json record;  // carries "replica"
};

// Parses one replica's /incidents body into rows tagged with `replica`;
// nullopt (and `error`) when the body is not the expected shape.
std::optional<std::vector<Row>> rows_from_body(const std::string& body, const std::string& replica,
                                               std::string& error);

// Newest first; ties by replica, then in the order each replica answered
// (its own newest-first order).
void sort_newest_first(std::vector<Row>& rows);

struct TableOptions {
  bool truncate = true;  // cut long cells to the widths below, with "..."
  std::size_t stage_width = 28;
  std::size_t id_width = 36;
  std::size_t summary_width = 72;
};

// Aligned columns TIME REPLICA CODE STAGE CORRELATION_ID SUMMARY, a header
// line first when `header`. Each line ends in '\n'.
std::string format_table(const std::vector<Row>& rows, const TableOptions& opts,
                         bool header = true);

// `text` cut to `width` code points, the last three being "..." when cut;
// never splits a UTF-8 sequence.
std::string truncate_cell(const std::string& text, std::size_t width);

// A readable account of one incident: summary, user, close, failing stage,
// missing attributes, trace stages.
std::string format_incident(const nlohmann::json& record);

// Remembers which (replica, correlation id) pairs `tail` has printed, and
// forgets those older than the window it still asks for.
class SeenSet {
 public:
  // True the first time the pair is offered.
  bool insert(const std::string& replica, const std::string& correlation_id,
              std::chrono::system_clock::time_point time);
  // Drops pairs whose time is before `before` for `replica`.
  void forget_before(const std::string& replica, std::chrono::system_clock::time_point before);
  std::size_t size() const;

 private:
  std::map<std::pair<std::string, std::string>, std::chrono::system_clock::time_point> seen_;
};

// Entry point: argv[0] is "incidents". Returns the process exit code.
int run(int argc, char** argv);

}  // namespace wsgate::proxy::incidents_cli
