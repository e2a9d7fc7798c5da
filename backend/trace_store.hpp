#pragma once
// Stage traces: what happened to one connection, stage by stage, keyed by its
// correlation ID. The store is bounded by trace count and by bytes, evicts the
// oldest trace first and is safe to use from any thread.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace wsgate::backend {

// Every stage a connection can pass, in the order it passes them.
enum class Stage {
  auth_verify_jwt,
  context_create,
  context_validate,
  factory_create_manager,
  session_established,
  message_parse,
  message_handle,
  session_close,
};
inline constexpr Stage kAllStages[] = {Stage::auth_verify_jwt,     Stage::context_create,
                                       Stage::context_validate,    Stage::factory_create_manager,
                                       Stage::session_established, Stage::message_parse,
                                       Stage::message_handle,      Stage::session_close};
std::string_view stage_name(Stage stage);  // "auth.verify_jwt", ...

enum class Outcome { ok, fallback, error };
std::string_view outcome_name(Outcome outcome);

// An attribute a stage found missing, and where it is filled from, so an
// operator reading the trace knows which header, claim or stage to check.
struct MissingAttribute {
  std::string attribute;  // "thread_id"
  std::string source;     // where it should have come from
  std::string found;      // what the context saw: "absent", "dropped (fault ...)", ...
};

struct StageRecord {
  Stage stage;
  Outcome outcome;
  std::int64_t t_us;  // microseconds since the trace began
  std::string detail;
  std::vector<MissingAttribute> missing;  // in the stage's JSON as `missing` when not empty
};

struct TraceLimits {
  std::size_t max_traces = 10000;
  std::size_t max_bytes = 16 * 1024 * 1024;
  std::size_t max_stages = 100;  // per trace; see Trace::add
};

class TraceStore;

// One connection's trace. Mutated through the store (which locks), so a
// handle may be kept after the store has evicted it.
class Trace {
 public:
  Trace(std::string correlation_id, std::string policy);
  const std::string& correlation_id() const { return correlation_id_; }

 private:
  friend class TraceStore;
  std::string to_json_locked() const;
  std::size_t bytes_locked() const { return bytes_; }

  std::string correlation_id_;
  std::string policy_;
  std::string user_id_;
  std::string traceparent_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::system_clock::time_point started_at_;
  std::vector<StageRecord> stages_;
  std::vector<std::string> missing_attributes_;
  std::vector<std::string> fallback_attributes_;
  std::uint64_t stages_dropped_ = 0;
  bool closed_ = false;
  std::size_t bytes_ = 0;
  bool stored_ = true;  // false once evicted or replaced
};

class TraceStore {
 public:
  explicit TraceStore(TraceLimits limits);

  // Starts a trace; a newer connection with the same correlation ID replaces
  // the older one's entry (the older handle keeps working, unstored).
  std::shared_ptr<Trace> begin(std::string correlation_id, std::string policy);

  // Appends a stage. Past max_stages the oldest successful message.* stage
  // makes room; if there is none the new stage is dropped and counted, except
  // session.close, which is always kept (once).
  void add(Trace& trace, Stage stage, Outcome outcome, std::string detail,
           std::vector<MissingAttribute> missing = {});
  void set_user(Trace& trace, std::string user_id);
  // The W3C traceparent the upgrade request carried (the proxy's span).
  void set_traceparent(Trace& trace, std::string traceparent);
  void set_attributes(Trace& trace, std::vector<std::string> missing,
                      std::vector<std::string> fallback);

  std::optional<std::string> find_json(std::string_view correlation_id) const;
  // Newest first: a JSON array of at most `limit` traces.
  std::string recent_json(std::size_t limit) const;

  std::size_t size() const;
  std::size_t bytes() const;

 private:
  // Replaces one of the trace's strings, keeping the byte budget exact.
  void set_text(Trace& trace, std::string Trace::*field, std::string value);
  void account_locked(Trace& trace, std::ptrdiff_t delta);
  void evict_locked();

  TraceLimits limits_;
  mutable std::mutex mutex_;
  std::list<std::shared_ptr<Trace>> order_;  // oldest first
  std::unordered_map<std::string, std::list<std::shared_ptr<Trace>>::iterator> index_;
  std::size_t bytes_ = 0;
};

}  // namespace wsgate::backend
