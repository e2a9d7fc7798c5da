#pragma once
// The agent behind user_message. An Agent turns one request into a stream of
// events (agent_started, agent_thinking, tool_executing, tool_completed,
// agent_completed) handed to a sink; the built-in one is deterministic and
// paces its steps with Asio timers (never sleeping on an io thread).
#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace wsgate::backend {

struct AgentRequest {
  std::string run_id;
  std::uint64_t run_seq = 0;  // 1, 2, ... per connection
  std::string thread_id;
  std::string correlation_id;
  std::string user_id;
  std::string content;
};

// Receives each event as a finished wire message. Called on the agent's own
// strand; must not block.
using AgentSink = std::function<void(std::shared_ptr<const std::string>)>;

class Agent {
 public:
  virtual ~Agent() = default;
  virtual void run(AgentRequest request, AgentSink sink) = 0;
};

class DeterministicAgent final : public Agent {
 public:
  DeterministicAgent(boost::asio::any_io_executor executor, std::chrono::milliseconds step_delay);
  void run(AgentRequest request, AgentSink sink) override;

  // The final answer for `content` (exposed for tests).
  static std::string respond(const std::string& content);

 private:
  boost::asio::any_io_executor executor_;
  std::chrono::milliseconds step_delay_;
};

}  // namespace wsgate::backend
