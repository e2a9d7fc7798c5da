#include "backend/trace_store.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace wsgate::backend {
namespace {

constexpr std::size_t kMaxDetail = 512;
constexpr std::size_t kTraceOverhead = sizeof(Trace) + 64;

std::size_t record_bytes(const StageRecord& r) {
  std::size_t n = sizeof(StageRecord) + r.detail.size();
  for (const auto& m : r.missing)
    n += sizeof(MissingAttribute) + m.attribute.size() + m.source.size() + m.found.size();
  return n;
}

bool is_message_stage(Stage s) { return s == Stage::message_parse || s == Stage::message_handle; }

std::string iso_time(std::chrono::system_clock::time_point t) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(us % 1000000));
  return buf;
}

}  // namespace

std::string_view stage_name(Stage stage) {
  switch (stage) {
    case Stage::auth_verify_jwt:
      return "auth.verify_jwt";
    case Stage::context_create:
      return "context.create";
    case Stage::context_validate:
      return "context.validate";
    case Stage::factory_create_manager:
      return "factory.create_manager";
    case Stage::session_established:
      return "session.established";
    case Stage::message_parse:
      return "message.parse";
    case Stage::message_handle:
      return "message.handle";
    case Stage::session_close:
      return "session.close";
  }
  return "unknown";
}

std::string_view outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::ok:
      return "ok";
    case Outcome::fallback:
      return "fallback";
    case Outcome::error:
      return "error";
  }
  return "error";
}

Trace::Trace(std::string correlation_id, std::string policy)
    : correlation_id_(std::move(correlation_id)),
      policy_(std::move(policy)),
      start_(std::chrono::steady_clock::now()),
      started_at_(std::chrono::system_clock::now()) {
  bytes_ = kTraceOverhead + correlation_id_.size() + policy_.size();
}

std::string Trace::to_json_locked() const {
  nlohmann::json j;
  j["correlation_id"] = correlation_id_;
  j["user_id"] = user_id_.empty() ? nlohmann::json(nullptr) : nlohmann::json(user_id_);
  j["traceparent"] = traceparent_.empty() ? nlohmann::json(nullptr) : nlohmann::json(traceparent_);
  j["policy"] = policy_;
  j["started_at"] = iso_time(started_at_);
  auto& stages = j["stages"] = nlohmann::json::array();
  for (const auto& r : stages_) {
    nlohmann::json st = {{"stage", stage_name(r.stage)},
                         {"outcome", outcome_name(r.outcome)},
                         {"t_us", r.t_us},
                         {"detail", r.detail}};
    if (!r.missing.empty()) {
      auto& missing = st["missing"] = nlohmann::json::array();
      for (const auto& m : r.missing)
        missing.push_back({{"attribute", m.attribute}, {"source", m.source}, {"found", m.found}});
    }
    stages.push_back(std::move(st));
  }
  j["missing_attributes"] = missing_attributes_;
  j["fallback_attributes"] = fallback_attributes_;
  if (stages_dropped_ > 0) j["stages_dropped"] = stages_dropped_;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

TraceStore::TraceStore(TraceLimits limits) : limits_(limits) {
  limits_.max_traces = std::max<std::size_t>(limits_.max_traces, 1);
  limits_.max_stages = std::max<std::size_t>(limits_.max_stages, 8);
}

std::shared_ptr<Trace> TraceStore::begin(std::string correlation_id, std::string policy) {
  auto trace = std::make_shared<Trace>(std::move(correlation_id), std::move(policy));
  std::lock_guard lock(mutex_);
  if (auto it = index_.find(trace->correlation_id_); it != index_.end()) {
    bytes_ -= (*it->second)->bytes_;
    (*it->second)->stored_ = false;
    order_.erase(it->second);
    index_.erase(it);
  }
  order_.push_back(trace);
  index_[trace->correlation_id_] = std::prev(order_.end());
  bytes_ += trace->bytes_;
  evict_locked();
  return trace;
}

void TraceStore::account_locked(Trace& trace, std::ptrdiff_t delta) {
  trace.bytes_ = static_cast<std::size_t>(static_cast<std::ptrdiff_t>(trace.bytes_) + delta);
  if (trace.stored_) bytes_ = static_cast<std::size_t>(static_cast<std::ptrdiff_t>(bytes_) + delta);
}

void TraceStore::evict_locked() {
  // Never evict the newest trace: it is the one being written.
  while (order_.size() > 1 && (order_.size() > limits_.max_traces || bytes_ > limits_.max_bytes)) {
    auto& oldest = order_.front();
    bytes_ -= oldest->bytes_;
    oldest->stored_ = false;
    index_.erase(oldest->correlation_id_);
    order_.pop_front();
  }
}

void TraceStore::add(Trace& trace, Stage stage, Outcome outcome, std::string detail,
                     std::vector<MissingAttribute> missing) {
  if (detail.size() > kMaxDetail) {
    detail.resize(kMaxDetail - 3);
    detail += "...";
  }
  auto t_us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - trace.start_)
                  .count();
  std::lock_guard lock(mutex_);
  if (stage == Stage::session_close) {
    if (trace.closed_) return;
    trace.closed_ = true;
  } else if (trace.stages_.size() >= limits_.max_stages) {
    auto victim = std::find_if(trace.stages_.begin(), trace.stages_.end(), [](const auto& r) {
      return is_message_stage(r.stage) && r.outcome == Outcome::ok;
    });
    if (victim == trace.stages_.end()) {
      ++trace.stages_dropped_;
      return;
    }
    account_locked(trace, -static_cast<std::ptrdiff_t>(record_bytes(*victim)));
    trace.stages_.erase(victim);
    ++trace.stages_dropped_;
  }
  trace.stages_.push_back(StageRecord{stage, outcome, t_us, std::move(detail), std::move(missing)});
  account_locked(trace, static_cast<std::ptrdiff_t>(record_bytes(trace.stages_.back())));
  evict_locked();
}

void TraceStore::set_user(Trace& trace, std::string user_id) {
  set_text(trace, &Trace::user_id_, std::move(user_id));
}

void TraceStore::set_traceparent(Trace& trace, std::string traceparent) {
  set_text(trace, &Trace::traceparent_, std::move(traceparent));
}

void TraceStore::set_text(Trace& trace, std::string Trace::*field, std::string value) {
  std::lock_guard lock(mutex_);
  std::string& slot = trace.*field;
  account_locked(
      trace, static_cast<std::ptrdiff_t>(value.size()) - static_cast<std::ptrdiff_t>(slot.size()));
  slot = std::move(value);
  evict_locked();
}

void TraceStore::set_attributes(Trace& trace, std::vector<std::string> missing,
                                std::vector<std::string> fallback) {
  std::size_t added = 0;
  for (auto& s : missing) added += s.size() + 32;
  for (auto& s : fallback) added += s.size() + 32;
  std::lock_guard lock(mutex_);
  trace.missing_attributes_ = std::move(missing);
  trace.fallback_attributes_ = std::move(fallback);
  account_locked(trace, static_cast<std::ptrdiff_t>(added));
  evict_locked();
}

std::optional<std::string> TraceStore::find_json(std::string_view correlation_id) const {
  std::lock_guard lock(mutex_);
  auto it = index_.find(std::string(correlation_id));
  if (it == index_.end()) return std::nullopt;
  return (*it->second)->to_json_locked();
}

std::string TraceStore::recent_json(std::size_t limit) const {
  std::lock_guard lock(mutex_);
  std::string out = "[";
  std::size_t n = 0;
  for (auto it = order_.rbegin(); it != order_.rend() && n < limit; ++it, ++n) {
    if (n > 0) out += ',';
    out += (*it)->to_json_locked();
  }
  out += ']';
  return out;
}

std::size_t TraceStore::size() const {
  std::lock_guard lock(mutex_);
  return order_.size();
}

std::size_t TraceStore::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

}  // namespace wsgate::backend
