#pragma once
// One io_context per thread, each run by exactly one thread: no strands, no
// locks on the data path; sessions are spread over the contexts round-robin.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <memory>
#include <optional>
#include <thread>
#include <vector>

namespace wsgate::bench {

class Runtime {
 public:
  explicit Runtime(int threads) {
    if (threads < 1) threads = 1;
    for (int i = 0; i < threads; ++i)
      contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
  }
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  ~Runtime() {
    stop();
    join();
  }

  std::size_t size() const { return contexts_.size(); }
  boost::asio::io_context& at(std::size_t i) { return *contexts_[i % contexts_.size()]; }

  // keep_alive: run until stop() even with nothing queued (servers, holds).
  void start(bool keep_alive) {
    for (auto& ioc : contexts_) {
      ioc->restart();
      if (keep_alive) guards_.emplace_back(ioc->get_executor());
      threads_.emplace_back([ctx = ioc.get()] { ctx->run(); });
    }
  }
  void stop() {
    guards_.clear();
    for (auto& ioc : contexts_) ioc->stop();
  }
  void join() {
    for (auto& t : threads_) t.join();
    threads_.clear();
    guards_.clear();
  }

 private:
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<Guard> guards_;
  std::vector<std::thread> threads_;
};

}  // namespace wsgate::bench
