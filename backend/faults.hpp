#pragma once
// Fault injection (--fault SPEC, repeatable):
//   context.drop=ATTR[@P]   contexts are built without ATTR
//   handler.throw=TYPE[@P]  handling a message of TYPE throws (the generic 1011 path)
//   factory.fail[@P]        creating the user's manager fails
// P is a probability in [0, 1] (default 1).
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "backend/user_context.hpp"

namespace wsgate::backend {

struct FaultSpec {
  enum class Kind { context_drop, handler_throw, factory_fail };
  Kind kind;
  std::string argument;  // ATTR or TYPE
  double probability = 1.0;
};

// nullopt and a reason in `error` for a bad spec.
std::optional<FaultSpec> parse_fault(std::string_view spec, std::string& error);

class Faults {
 public:
  Faults() = default;
  explicit Faults(std::vector<FaultSpec> specs, std::uint64_t seed = std::random_device{}());

  bool empty() const { return specs_.empty(); }
  // Each roll is independent; thread-safe.
  std::set<Attribute> context_drops();
  bool factory_fails();
  bool handler_throws(std::string_view message_type);
  std::string describe() const;

 private:
  bool roll(double probability);

  std::vector<FaultSpec> specs_;
  std::mutex mutex_;
  std::mt19937_64 rng_;
};

}  // namespace wsgate::backend
