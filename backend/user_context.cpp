#include "backend/user_context.hpp"

#include "common/correlation_id.hpp"

namespace wsgate::backend {

std::string_view attribute_name(Attribute a) {
  switch (a) {
    case Attribute::user_id:
      return "user_id";
    case Attribute::thread_id:
      return "thread_id";
    case Attribute::websocket_client_id:
      return "websocket_client_id";
    case Attribute::run_id:
      return "run_id";
    case Attribute::request_id:
      return "request_id";
  }
  return "unknown";
}

std::optional<Attribute> parse_attribute(std::string_view name) {
  for (Attribute a : kAllAttributes)
    if (attribute_name(a) == name) return a;
  return std::nullopt;
}

std::string_view policy_name(ContextPolicy p) {
  return p == ContextPolicy::strict ? "strict" : "fallback";
}

std::optional<ContextPolicy> parse_policy(std::string_view name) {
  if (name == "strict") return ContextPolicy::strict;
  if (name == "fallback") return ContextPolicy::fallback;
  return std::nullopt;
}

bool is_valid_attribute_value(std::string_view value) {
  if (value.empty() || value.size() > kMaxAttributeLength) return false;
  for (unsigned char c : value)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

std::string default_generate(Attribute a) {
  switch (a) {
    case Attribute::thread_id:
      return "thread_" + random_hex(8);
    case Attribute::websocket_client_id:
      return "ws_" + random_hex(8);
    case Attribute::run_id:
      return "run_" + random_hex(8);
    case Attribute::request_id:
      return "req_" + random_hex(8);
    case Attribute::user_id:
      break;
  }
  return {};
}

UserContext create_context(const ContextInputs& in, const IdGenerator& generate) {
  UserContext ctx;
  ctx.at(Attribute::user_id) = {in.sub, "jwt.sub"};
  if (in.claim_thread_id)
    ctx.at(Attribute::thread_id) = {*in.claim_thread_id, "jwt.thread_id"};
  else if (in.claim_thread_id_wrong_type)
    ctx.at(Attribute::thread_id) = {"", "jwt.thread_id (not a string)"};
  else if (in.header_thread_id)
    ctx.at(Attribute::thread_id) = {*in.header_thread_id, "header X-Thread-ID"};
  else if (in.query_thread_id)
    ctx.at(Attribute::thread_id) = {*in.query_thread_id, "query thread_id"};
  else
    ctx.at(Attribute::thread_id) = {"", "absent"};
  ctx.at(Attribute::websocket_client_id) = {generate(Attribute::websocket_client_id), "generated"};
  ctx.at(Attribute::run_id) = {generate(Attribute::run_id), "generated"};
  ctx.at(Attribute::request_id) = {in.correlation_id, "correlation_id"};
  for (Attribute a : in.dropped) ctx.at(a) = {"", "dropped (fault context.drop)"};
  return ctx;
}

std::vector<Attribute> missing_attributes(const UserContext& ctx) {
  std::vector<Attribute> out;
  for (Attribute a : kAllAttributes)
    if (!is_valid_attribute_value(ctx.get(a))) out.push_back(a);
  return out;
}

std::string join_attributes(const std::vector<Attribute>& attrs, std::string_view sep) {
  std::string out;
  for (Attribute a : attrs) {
    if (!out.empty()) out += sep;
    out += attribute_name(a);
  }
  return out;
}

ValidationResult validate_context(UserContext& ctx, ContextPolicy policy,
                                  const std::string& correlation_id, const IdGenerator& generate) {
  ValidationResult r;
  r.missing = missing_attributes(ctx);
  if (r.missing.empty()) {
    r.detail = "complete";
    return r;
  }
  r.detail = "missing: " + join_attributes(r.missing);
  if (r.missing.front() == Attribute::user_id) {
    r.verdict = ValidationResult::Verdict::missing_identity;
    return r;
  }
  if (policy == ContextPolicy::strict) {
    r.verdict = ValidationResult::Verdict::refused;
    return r;
  }
  for (Attribute a : r.missing) {
    auto& slot = ctx.at(a);
    std::string value = a == Attribute::request_id && is_valid_attribute_value(correlation_id)
                            ? correlation_id
                            : generate(a);
    slot = {std::move(value), "fallback (was " + slot.source + ")"};
    r.filled.push_back(a);
  }
  r.verdict = ValidationResult::Verdict::fallback;
  r.detail += "; filled: " + join_attributes(r.filled);
  return r;
}

}  // namespace wsgate::backend
