#pragma once
// The user execution context of one connection (the seed's
// UserExecutionContext), where each attribute came from, and its validation
// under the two context policies.
#include <array>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace wsgate::backend {

enum class Attribute { user_id, thread_id, websocket_client_id, run_id, request_id };
inline constexpr std::array<Attribute, 5> kAllAttributes = {
    Attribute::user_id, Attribute::thread_id, Attribute::websocket_client_id, Attribute::run_id,
    Attribute::request_id};
std::string_view attribute_name(Attribute a);
// Where an attribute is filled from when the context is built, for traces
// ("JWT claim sub (auth.verify_jwt)", "header X-Correlation-ID ...").
std::string_view attribute_source(Attribute a);
std::optional<Attribute> parse_attribute(std::string_view name);

// strict: an incomplete context is refused (the staging failure);
// fallback: missing non-identity attributes are generated.
enum class ContextPolicy { strict, fallback };
std::string_view policy_name(ContextPolicy p);
std::optional<ContextPolicy> parse_policy(std::string_view name);

// Non-empty, printable ASCII (0x20..0x7e), at most 128 characters.
inline constexpr std::size_t kMaxAttributeLength = 128;
bool is_valid_attribute_value(std::string_view value);

struct AttributeValue {
  std::string value;
  std::string source;  // "jwt.sub", "header X-Thread-ID", "generated", "absent", ...
};

struct UserContext {
  std::array<AttributeValue, kAllAttributes.size()> attributes;
  AttributeValue& at(Attribute a) { return attributes[static_cast<std::size_t>(a)]; }
  const AttributeValue& at(Attribute a) const { return attributes[static_cast<std::size_t>(a)]; }
  const std::string& get(Attribute a) const { return at(a).value; }
};

// Everything the handshake learnt that the context is built from.
struct ContextInputs {
  std::string sub;                              // verified JWT subject
  std::optional<std::string> claim_thread_id;   // JWT claim, when a string
  bool claim_thread_id_wrong_type = false;      // claim present but not a string
  std::optional<std::string> header_thread_id;  // X-Thread-ID
  std::optional<std::string> query_thread_id;   // ?thread_id=
  std::string correlation_id;
  std::set<Attribute> dropped;  // fault context.drop=ATTR
};

// Generates a fresh value for an attribute (ids, fallbacks). Injected so
// tests can be deterministic.
using IdGenerator = std::function<std::string(Attribute)>;
std::string default_generate(Attribute a);  // "<prefix>_<16 random hex>"

// thread_id: the JWT claim, else the X-Thread-ID header, else the query; the
// first source present wins, valid or not (validation judges it).
UserContext create_context(const ContextInputs& in, const IdGenerator& generate);

// Attributes whose value is missing or invalid, in kAllAttributes order.
std::vector<Attribute> missing_attributes(const UserContext& ctx);

struct ValidationResult {
  enum class Verdict {
    ok,                // complete
    fallback,          // fallback policy filled `filled`
    missing_identity,  // user_id missing: never filled, close 1008
    refused,           // strict policy, incomplete: FACTORY_INIT_FAILED, 1011
  };
  Verdict verdict = Verdict::ok;
  std::vector<Attribute> missing;
  std::vector<Attribute> filled;
  std::string detail;  // "missing: thread_id" (+ "; filled: thread_id")
};

// Validates `ctx` and, under the fallback policy, fills each missing
// non-identity attribute (request_id falls back to `correlation_id`).
ValidationResult validate_context(UserContext& ctx, ContextPolicy policy,
                                  const std::string& correlation_id, const IdGenerator& generate);

std::string join_attributes(const std::vector<Attribute>& attrs, std::string_view sep = ", ");

}  // namespace wsgate::backend
