#include "proxy/workers.hpp"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

namespace wsgate::proxy {

Workers::Workers(unsigned count) {
  workers_.reserve(std::max(count, 1u));
  for (unsigned i = 0; i < std::max(count, 1u); ++i) {
    auto w = std::make_unique<Worker>();
    w->guard.emplace(w->ioc.get_executor());
    workers_.push_back(std::move(w));
  }
}

Workers::~Workers() {
  stop();
  join();
}

unsigned Workers::pick() {
  const unsigned n = size();
  const unsigned first = next_.fetch_add(1, std::memory_order_relaxed) % n;
  unsigned best = first;
  std::uint32_t best_load = sessions(first);
  for (unsigned k = 1; k < n && best_load > 0; ++k) {
    unsigned i = (first + k) % n;
    if (auto load = sessions(i); load < best_load) {
      best = i;
      best_load = load;
    }
  }
  return best;
}

void Workers::start() {
  for (auto& w : workers_)
    if (!w->thread.joinable()) w->thread = std::thread([ioc = &w->ioc] { ioc->run(); });
}

void Workers::stop() {
  for (auto& w : workers_) {
    w->guard.reset();
    w->ioc.stop();
  }
}

void Workers::join() {
  for (auto& w : workers_)
    if (w->thread.joinable() && w->thread.get_id() != std::this_thread::get_id()) w->thread.join();
}

unsigned CpuBudget::workers() const {
  unsigned n = std::max(affinity, 1u);
  if (quota && *quota > 0)
    n = std::min(n, static_cast<unsigned>(std::max(1.0, std::ceil(*quota - 1e-9))));
  return std::max(n, 1u);
}

std::string CpuBudget::describe() const {
  std::ostringstream out;
  out << affinity << " CPU" << (affinity == 1 ? "" : "s") << " in the affinity mask";
  if (quota)
    out << ", cgroup quota " << *quota << " CPUs (" << quota_source << ")";
  else
    out << ", no cgroup CPU quota";
  return out.str();
}

std::optional<double> parse_cpu_max(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::string quota;
  double period = 0;
  if (!(in >> quota)) return std::nullopt;
  if (quota == "max") return std::nullopt;
  if (!(in >> period) || period <= 0) period = 100000;  // the kernel's default period
  char* end = nullptr;
  double q = std::strtod(quota.c_str(), &end);
  if (end == quota.c_str() || *end != '\0' || !(q > 0)) return std::nullopt;
  return q / period;
}

namespace {

// "0::/kubepods/pod.../container" -> "/kubepods/pod.../container" (the
// unified hierarchy's line; v1 lines have a controller list instead).
std::optional<std::string> unified_cgroup_path(const std::string& proc_self_cgroup) {
  std::ifstream in(proc_self_cgroup);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  return std::nullopt;
}

}  // namespace

CpuBudget read_cpu_budget(const std::string& cgroup_root, const std::string& proc_self_cgroup) {
  CpuBudget b;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0)
    b.affinity = static_cast<unsigned>(std::max(CPU_COUNT(&set), 1));
  else
    b.affinity = std::max(std::thread::hardware_concurrency(), 1u);

  auto path = unified_cgroup_path(proc_self_cgroup);
  if (!path) return b;
  // Walk from this cgroup up to the root: a limit on any ancestor binds.
  std::string rel = *path;
  while (true) {
    std::string file = cgroup_root + (rel == "/" ? "" : rel) + "/cpu.max";
    std::ifstream in(file);
    std::string text;
    if (in && std::getline(in, text)) {
      if (auto q = parse_cpu_max(text); q && (!b.quota || *q < *b.quota)) {
        b.quota = q;
        b.quota_source = file;
      }
    }
    if (rel.empty() || rel == "/") break;
    auto slash = rel.find_last_of('/');
    rel = slash == 0 || slash == std::string::npos ? "/" : rel.substr(0, slash);
  }
  return b;
}

}  // namespace wsgate::proxy
