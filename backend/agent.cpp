#include "backend/agent.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <nlohmann/json.hpp>

#include "backend/messages.hpp"

namespace wsgate::backend {
namespace {

namespace net = boost::asio;
using json = nlohmann::json;

// One run: five steps, one timer, its own strand.
class Run : public std::enable_shared_from_this<Run> {
 public:
  Run(net::any_io_executor executor, std::chrono::milliseconds delay, AgentRequest request,
      AgentSink sink)
      : timer_(net::make_strand(executor)),
        delay_(delay),
        request_(std::move(request)),
        sink_(std::move(sink)) {}

  void start() {
    net::post(timer_.get_executor(), [self = shared_from_this()] { self->step(); });
  }

 private:
  json event(const char* type) const {
    return {{"type", type},
            {"run_id", request_.run_id},
            {"run_seq", request_.run_seq},
            {"thread_id", request_.thread_id},
            {"correlation_id", request_.correlation_id},
            {"timestamp", timestamp_now()}};
  }

  void step() {
    json e;
    switch (step_) {
      case 0:
        e = event("agent_started");
        break;
      case 1:
        e = event("agent_thinking");
        e["thought"] = "Reading the message and choosing a tool.";
        break;
      case 2:
        e = event("tool_executing");
        e["tool"] = "echo";
        break;
      case 3:
        e = event("tool_completed");
        e["tool"] = "echo";
        e["result"] = "ok";
        break;
      default:
        e = event("agent_completed");
        e["response"] = DeterministicAgent::respond(request_.content);
        break;
    }
    sink_(std::make_shared<const std::string>(to_wire(e)));
    if (++step_ > 4) return;
    timer_.expires_after(delay_);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->step();
    });
  }

  net::steady_timer timer_;
  std::chrono::milliseconds delay_;
  AgentRequest request_;
  AgentSink sink_;
  int step_ = 0;
};

}  // namespace

DeterministicAgent::DeterministicAgent(net::any_io_executor executor,
                                       std::chrono::milliseconds step_delay)
    : executor_(std::move(executor)), step_delay_(step_delay) {}

void DeterministicAgent::run(AgentRequest request, AgentSink sink) {
  std::make_shared<Run>(executor_, step_delay_, std::move(request), std::move(sink))->start();
}

std::string DeterministicAgent::respond(const std::string& content) { return "Echo: " + content; }

}  // namespace wsgate::backend
