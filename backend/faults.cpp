#include "backend/faults.hpp"

#include <charconv>
#include <cmath>

namespace wsgate::backend {

std::optional<FaultSpec> parse_fault(std::string_view spec, std::string& error) {
  FaultSpec out;
  auto at = spec.rfind('@');
  if (at != std::string_view::npos) {
    std::string p(spec.substr(at + 1));
    char* end = nullptr;
    double value = p.empty() ? -1 : std::strtod(p.c_str(), &end);
    if (p.empty() || end != p.c_str() + p.size() || !std::isfinite(value) || value < 0 ||
        value > 1) {
      error = "probability '" + p + "' is not a number in [0, 1]";
      return std::nullopt;
    }
    out.probability = value;
    spec = spec.substr(0, at);
  }
  auto eq = spec.find('=');
  auto name = spec.substr(0, eq);
  auto arg = eq == std::string_view::npos ? std::string_view() : spec.substr(eq + 1);
  if (name == "context.drop") {
    if (!parse_attribute(arg)) {
      error =
          "context.drop needs an attribute (user_id, thread_id, websocket_client_id, run_id, "
          "request_id), got '" +
          std::string(arg) + "'";
      return std::nullopt;
    }
    out.kind = FaultSpec::Kind::context_drop;
  } else if (name == "handler.throw") {
    if (arg.empty()) {
      error = "handler.throw needs a message type, e.g. handler.throw=user_message";
      return std::nullopt;
    }
    out.kind = FaultSpec::Kind::handler_throw;
  } else if (name == "factory.fail") {
    if (eq != std::string_view::npos) {
      error = "factory.fail takes no argument";
      return std::nullopt;
    }
    out.kind = FaultSpec::Kind::factory_fail;
  } else {
    error = "unknown fault '" + std::string(name) +
            "' (known: context.drop=ATTR, handler.throw=TYPE, factory.fail)";
    return std::nullopt;
  }
  out.argument = std::string(arg);
  return out;
}

Faults::Faults(std::vector<FaultSpec> specs, std::uint64_t seed)
    : specs_(std::move(specs)), rng_(seed) {}

bool Faults::roll(double probability) {
  if (probability >= 1.0) return true;
  if (probability <= 0.0) return false;
  std::lock_guard lock(mutex_);
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < probability;
}

std::set<Attribute> Faults::context_drops() {
  std::set<Attribute> out;
  for (const auto& f : specs_)
    if (f.kind == FaultSpec::Kind::context_drop && roll(f.probability))
      out.insert(*parse_attribute(f.argument));
  return out;
}

bool Faults::factory_fails() {
  for (const auto& f : specs_)
    if (f.kind == FaultSpec::Kind::factory_fail && roll(f.probability)) return true;
  return false;
}

bool Faults::handler_throws(std::string_view message_type) {
  for (const auto& f : specs_)
    if (f.kind == FaultSpec::Kind::handler_throw && f.argument == message_type &&
        roll(f.probability))
      return true;
  return false;
}

std::string Faults::describe() const {
  std::string out;
  for (const auto& f : specs_) {
    if (!out.empty()) out += ", ";
    switch (f.kind) {
      case FaultSpec::Kind::context_drop:
        out += "context.drop=" + f.argument;
        break;
      case FaultSpec::Kind::handler_throw:
        out += "handler.throw=" + f.argument;
        break;
      case FaultSpec::Kind::factory_fail:
        out += "factory.fail";
        break;
    }
    if (f.probability < 1.0) out += "@" + std::to_string(f.probability);
  }
  return out.empty() ? "none" : out;
}

}  // namespace wsgate::backend
