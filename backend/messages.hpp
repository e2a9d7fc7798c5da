#pragma once
// The JSON protocol between clients and the backend: parsing what clients
// send (never throws) and building what the backend sends.
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "backend/user_context.hpp"

namespace wsgate::backend {

// Error codes of {"type":"error","error":{"code":...}}.
inline constexpr std::string_view kInvalidMessage = "INVALID_MESSAGE";
inline constexpr std::string_view kUnknownType = "UNKNOWN_TYPE";
inline constexpr std::string_view kInternalError = "INTERNAL_ERROR";
inline constexpr std::string_view kFactoryInitFailed = "FACTORY_INIT_FAILED";

struct ClientMessage {
  std::string type;
  std::string content;  // user_message: the text
  std::string id;       // optional client id, echoed in replies
};

struct ParseResult {
  std::optional<ClientMessage> message;
  std::string error;  // why not, when !message
};

// A JSON object with a string "type"; user_message needs a string "content".
ParseResult parse_client_message(std::string_view text);

// UTC, ISO 8601 with milliseconds.
std::string timestamp_now();

// Serialises without ever throwing (invalid UTF-8 is replaced).
std::string to_wire(const nlohmann::json& j);

std::string error_message(std::string_view code, std::string_view message,
                          const std::string& correlation_id);
std::string connection_established_message(const UserContext& ctx, ContextPolicy policy,
                                           const std::vector<Attribute>& fallback_attributes);
std::string pong_message(const ClientMessage& ping, const std::string& correlation_id);

}  // namespace wsgate::backend
