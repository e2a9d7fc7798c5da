// libFuzzer target: the proxy's admin endpoints. Input: the raw bytes a
// client sends on the admin port (one request). They go through
// AdminRouter::respond with the proxy's real route table (AdminApi and the
// incident routes) over a Gateway holding a live session whose target and
// client hold bytes that are not UTF-8, and a store holding two incidents.
// Invariants: no crash, no exception; see fuzz_admin_common.hpp.
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "proxy/admin_api.hpp"
#include "proxy/gateway.hpp"
#include "proxy/incidents/incident_store.hpp"
#include "proxy/incidents/incidents_api.hpp"
#include "tests/fuzz/fuzz_admin_common.hpp"

using namespace wsgate;
using namespace wsgate::proxy;

namespace {

class FakeSession : public LiveSession {
 public:
  explicit FakeSession(boost::asio::any_io_executor ex) : executor_(std::move(ex)) {}
  boost::asio::any_io_executor executor() const override { return executor_; }
  nlohmann::json snapshot() const override {
    return {{"correlation_id", "fuzz-session-1"},
            {"client", "127.0.0.1:1\xff"},
            {"target", "/ws?q=\xc3\x28\xff"},
            {"age_ms", 1}};
  }
  nlohmann::json detail() const override {
    auto j = snapshot();
    j["frames"] = nlohmann::json::array({{{"opcode", 1}, {"close_reason", "\xc3\x28"}}});
    return j;
  }
  std::string_view correlation_id() const override { return "fuzz-session-1"; }
  void drain() override {}

 private:
  boost::asio::any_io_executor executor_;
};

struct World {
  boost::asio::io_context ioc;
  std::unique_ptr<Gateway> gateway;
  incidents::IncidentStore store{incidents::StoreOptions{.capacity = 16}};
  std::shared_ptr<FakeSession> session = std::make_shared<FakeSession>(ioc.get_executor());
  AdminRouter router;
  std::unique_ptr<AdminApi> api;

  World() {
    ProxyConfig config;
    std::string error;
    Route route;
    route.path_prefix = "/";
    route.upstream = *parse_upstream_url("ws://127.0.0.1:1", error);
    config.routes.push_back(std::move(route));
    config.admin_max_page = 4;
    gateway = std::make_unique<Gateway>(config);
    gateway->add_session(session);
    for (const char* id : {"incident-aaaaaaaa", "incident-bbbbbbbb"})
      store.add({{"correlation_id", id},
                 {"time", "2026-01-01T00:00:00Z"},
                 {"close", {{"code", 1011}, {"reason", "x\xff"}}},
                 {"failing_stage", "context.validate"}});
    api = std::make_unique<AdminApi>(*gateway, router);
    incidents::register_incident_routes(router, store);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  wsgate::fuzz::check_admin_answer(raw, world.router.respond(raw));
  // The session references a /connections page took are released here, as
  // the relay's io_context does in the binary.
  world.ioc.poll();
  world.ioc.restart();
  return 0;
}
