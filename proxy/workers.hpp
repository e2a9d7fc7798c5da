#pragma once
// The proxy's I/O workers: one thread and one io_context each, the model of
// nginx and Envoy. A session lives its whole life on the worker that took
// it, so nothing on the data path needs a strand or a reactor lock; what the
// workers share (Gateway: metrics, registries, limits) is thread-safe and
// touched per session, not per message.
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace wsgate::proxy {

class Workers {
 public:
  // Counts one session on its worker for as long as it lives (moved from
  // the handshake to the tunnel).
  class Load {
   public:
    Load() = default;
    explicit Load(std::atomic<std::uint32_t>& sessions) : sessions_(&sessions) {
      sessions_->fetch_add(1, std::memory_order_relaxed);
    }
    Load(Load&& other) noexcept : sessions_(std::exchange(other.sessions_, nullptr)) {}
    Load& operator=(Load&& other) noexcept {
      if (this != &other) {
        reset();
        sessions_ = std::exchange(other.sessions_, nullptr);
      }
      return *this;
    }
    Load(const Load&) = delete;
    Load& operator=(const Load&) = delete;
    ~Load() { reset(); }

   private:
    void reset() {
      if (sessions_) sessions_->fetch_sub(1, std::memory_order_relaxed);
      sessions_ = nullptr;
    }
    std::atomic<std::uint32_t>* sessions_ = nullptr;
  };

  explicit Workers(unsigned count);
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;
  ~Workers();  // stops and joins

  unsigned size() const { return static_cast<unsigned>(workers_.size()); }
  boost::asio::io_context& context(unsigned worker) { return workers_[worker]->ioc; }
  std::uint32_t sessions(unsigned worker) const {
    return workers_[worker]->sessions.load(std::memory_order_relaxed);
  }

  // The worker with the fewest live sessions; ties go to the next one in
  // turn, so an idle proxy still spreads its first connections.
  unsigned pick();
  Load count_session(unsigned worker) { return Load(workers_[worker]->sessions); }

  void start();  // one thread per worker
  void stop();   // every worker's loop returns once its current handler does
  void join();

 private:
  struct Worker {
    // Reactor I/O unlocked: each worker's sockets and timers are only ever
    // touched from its own thread. Posting to it from elsewhere stays safe.
    boost::asio::io_context ioc{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard;
    // Never armed. Making it creates the worker's reactor (an epoll set, an
    // eventfd, a timerfd) at start: made lazily, by the first connection the
    // worker adopts, it would need three fds just when the process may be
    // out of them, and its failure would end the process.
    boost::asio::steady_timer reactor_anchor{ioc};
    std::atomic<std::uint32_t> sessions{0};
    std::thread thread;
  };
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<unsigned> next_{0};
};

// How many workers the CPUs this process may use call for.
struct CpuBudget {
  unsigned affinity = 1;        // CPUs in sched_getaffinity
  std::optional<double> quota;  // cgroup v2 cpu.max, in CPUs; none when "max"
  std::string quota_source;     // the cpu.max file that set it
  unsigned workers() const;     // min(affinity, ceil(quota)), at least 1
  std::string describe() const;
};

// `cpu_max` is the text of a cgroup v2 cpu.max file ("150000 100000",
// "max 100000"): the quota in CPUs, none for "max" or text it cannot read.
std::optional<double> parse_cpu_max(std::string_view cpu_max);

// Reads sched_getaffinity and the cpu.max of this process's cgroup and of
// each parent up to `cgroup_root` (the tightest wins).
CpuBudget read_cpu_budget(const std::string& cgroup_root = "/sys/fs/cgroup",
                          const std::string& proc_self_cgroup = "/proc/self/cgroup");

}  // namespace wsgate::proxy
