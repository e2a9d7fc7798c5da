// libFuzzer target: the backend's admin endpoints. Input: the raw bytes a
// client sends on the admin port (one request). They go through
// AdminRouter::respond with the backend's real route table
// (register_admin_routes) over a SharedState whose trace store holds traces,
// one with a user id and detail that are not UTF-8.
// Invariants: no crash, no exception; see fuzz_admin_common.hpp.
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "backend/admin_routes.hpp"
#include "backend/agent.hpp"
#include "backend/shared_state.hpp"
#include "tests/fuzz/fuzz_admin_common.hpp"

using namespace wsgate;
using namespace wsgate::backend;

namespace {

struct World {
  boost::asio::io_context ioc;
  std::shared_ptr<SharedState> state;
  AdminRouter router;

  World() {
    BackendConfig config;
    config.jwt.key = std::string(32, 'k');
    auto registry = std::make_shared<prometheus::Registry>();
    state = std::make_shared<SharedState>(
        config, registry,
        std::make_unique<DeterministicAgent>(ioc.get_executor(), std::chrono::milliseconds(0)));
    auto& traces = state->traces();
    auto a = traces.begin("trace-aaaaaaaa", "fallback");
    traces.set_user(*a, "user-\xff\xc3\x28");
    traces.add(*a, Stage::context_validate, Outcome::error, "missing \xff");
    auto b = traces.begin("trace-bbbbbbbb", "strict");
    traces.add(*b, Stage::auth_verify_jwt, Outcome::ok, "");
    register_admin_routes(router, state);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  wsgate::fuzz::check_admin_answer(raw, world.router.respond(raw));
  return 0;
}
