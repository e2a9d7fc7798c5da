#include "backend/messages.hpp"

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

namespace wsgate::backend {

using json = nlohmann::json;

ParseResult parse_client_message(std::string_view text) {
  ParseResult r;
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    r.error = "not valid JSON";
    return r;
  }
  if (!j.is_object()) {
    r.error = "not a JSON object";
    return r;
  }
  auto type = j.find("type");
  if (type == j.end() || !type->is_string()) {
    r.error = "no string field 'type'";
    return r;
  }
  ClientMessage m;
  m.type = type->get<std::string>();
  if (auto id = j.find("id"); id != j.end() && id->is_string()) m.id = id->get<std::string>();
  if (m.type == "user_message") {
    auto content = j.find("content");
    if (content == j.end() || !content->is_string()) {
      r.error = "user_message needs a string field 'content'";
      return r;
    }
    m.content = content->get<std::string>();
  }
  r.message = std::move(m);
  return r;
}

std::string timestamp_now() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

std::string to_wire(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string error_message(std::string_view code, std::string_view message,
                          const std::string& correlation_id) {
  return to_wire(
      {{"type", "error"},
       {"correlation_id", correlation_id},
       {"timestamp", timestamp_now()},
       {"error", {{"code", code}, {"message", message}, {"correlation_id", correlation_id}}}});
}

std::string connection_established_message(const UserContext& ctx, ContextPolicy policy,
                                           const std::vector<Attribute>& fallback_attributes) {
  json fallbacks = json::array();
  for (Attribute a : fallback_attributes) fallbacks.push_back(attribute_name(a));
  return to_wire({{"type", "connection_established"},
                  {"correlation_id", ctx.get(Attribute::request_id)},
                  {"user_id", ctx.get(Attribute::user_id)},
                  {"thread_id", ctx.get(Attribute::thread_id)},
                  {"websocket_client_id", ctx.get(Attribute::websocket_client_id)},
                  {"run_id", ctx.get(Attribute::run_id)},
                  {"request_id", ctx.get(Attribute::request_id)},
                  {"policy", policy_name(policy)},
                  {"fallback_attributes", std::move(fallbacks)},
                  {"timestamp", timestamp_now()}});
}

std::string pong_message(const ClientMessage& ping, const std::string& correlation_id) {
  json j = {{"type", "pong"}, {"correlation_id", correlation_id}, {"timestamp", timestamp_now()}};
  if (!ping.id.empty()) j["id"] = ping.id;
  return to_wire(j);
}

}  // namespace wsgate::backend
