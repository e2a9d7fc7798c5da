#include "proxy/incidents/incident_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "proxy/incidents/incident.hpp"

namespace wsgate::proxy::incidents {
namespace {

constexpr int kMaxCorruptWarnings = 10;

std::string rotated_name(const std::string& path, std::size_t k) {
  return k == 0 ? path : path + "." + std::to_string(k);
}

}  // namespace

std::optional<FsyncPolicy> parse_fsync_policy(std::string_view name) {
  if (name == "always") return FsyncPolicy::always;
  if (name == "interval") return FsyncPolicy::interval;
  if (name == "never") return FsyncPolicy::never;
  return std::nullopt;
}

std::optional<IncidentStore::Entry> IncidentStore::make_entry(const nlohmann::json& doc,
                                                              std::string text) {
  if (!doc.is_object()) return std::nullopt;
  auto cid = doc.find("correlation_id");
  auto close = doc.find("close");
  auto time = doc.find("time");
  if (cid == doc.end() || !cid->is_string() || cid->get_ref<const std::string&>().empty() ||
      close == doc.end() || !close->is_object() || time == doc.end() || !time->is_string())
    return std::nullopt;
  auto code = close->find("code");
  if (code == close->end() || !code->is_number_integer() || code->get<std::int64_t>() < 0 ||
      code->get<std::int64_t>() > 65535)
    return std::nullopt;
  auto t = parse_time(time->get_ref<const std::string&>());
  if (!t) return std::nullopt;
  Entry e;
  e.correlation_id = cid->get<std::string>();
  e.code = static_cast<std::uint16_t>(code->get<std::int64_t>());
  if (auto st = doc.find("failing_stage"); st != doc.end() && st->is_string()) e.stage = st->get<std::string>();
  e.time = *t;
  e.json = std::make_shared<const std::string>(std::move(text));
  return e;
}

IncidentStore::IncidentStore(StoreOptions options) : options_(std::move(options)) {
  options_.capacity = std::max<std::size_t>(options_.capacity, 1);
  if (options_.log_path.empty()) return;
  load();
  open_log();
  writer_ = std::thread([this] { writer_loop(); });
}

IncidentStore::~IncidentStore() {
  if (!writer_.joinable()) return;
  {
    std::lock_guard lock(queue_mutex_);
    stop_ = true;
  }
  queue_cv_.notify_all();
  writer_.join();
}

void IncidentStore::load() {
  std::vector<Entry> newest_first;
  int warnings = 0;
  std::uint64_t corrupt = 0;
  for (std::size_t k = 0; k <= options_.keep_rotated && newest_first.size() < options_.capacity; ++k) {
    const std::string name = rotated_name(options_.log_path, k);
    std::ifstream in(name, std::ios::binary);
    if (!in) continue;
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));
    for (std::size_t i = lines.size(); i-- > 0 && newest_first.size() < options_.capacity;) {
      if (lines[i].empty()) continue;
      auto doc = nlohmann::json::parse(lines[i], nullptr, false);
      std::optional<Entry> e;
      if (!doc.is_discarded()) e = make_entry(doc, std::move(lines[i]));
      if (!e) {
        ++corrupt;
        if (warnings++ < kMaxCorruptWarnings)
          spdlog::warn("incident log {} line {}: not an incident record, skipped", name, i + 1);
        continue;
      }
      newest_first.push_back(std::move(*e));
    }
  }
  if (corrupt > static_cast<std::uint64_t>(kMaxCorruptWarnings))
    spdlog::warn("incident log {}: {} corrupt lines skipped in all", options_.log_path, corrupt);
  std::lock_guard lock(mutex_);
  for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it) ring_.push_back(std::move(*it));
  stats_.loaded = ring_.size();
  stats_.corrupt_lines = corrupt;
  if (!ring_.empty())
    spdlog::info("loaded {} incidents from {}", ring_.size(), options_.log_path);
}

void IncidentStore::open_log() {
  fd_ = ::open(options_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0)
    throw std::runtime_error("cannot open incident log " + options_.log_path + ": " +
                             std::strerror(errno));
  struct stat st{};
  if (::fstat(fd_, &st) == 0) log_size_ = static_cast<std::uint64_t>(st.st_size);
  if (log_size_ > 0) {
    // A crash mid-line leaves a partial record; start ours on a line of its own.
    int rfd = ::open(options_.log_path.c_str(), O_RDONLY | O_CLOEXEC);
    char last = '\n';
    if (rfd >= 0) {
      if (::pread(rfd, &last, 1, static_cast<off_t>(log_size_ - 1)) != 1) last = '\n';
      ::close(rfd);
    }
    if (last != '\n' && ::write(fd_, "\n", 1) == 1) ++log_size_;
  }
  last_sync_ = std::chrono::steady_clock::now();
}

bool IncidentStore::add(const nlohmann::json& incident) {
  std::string text = incident.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  auto e = make_entry(incident, text);
  if (!e) return false;
  {
    std::lock_guard lock(mutex_);
    ring_.push_back(std::move(*e));
    while (ring_.size() > options_.capacity) ring_.pop_front();
  }
  if (writer_.joinable()) {
    {
      std::lock_guard lock(queue_mutex_);
      queue_.push_back(std::move(text));
      ++queued_;
    }
    queue_cv_.notify_one();
  }
  return true;
}

std::vector<std::shared_ptr<const std::string>> IncidentStore::query(const IncidentQuery& q) const {
  std::vector<std::shared_ptr<const std::string>> out;
  std::lock_guard lock(mutex_);
  for (auto it = ring_.rbegin(); it != ring_.rend() && out.size() < q.limit; ++it) {
    if (q.code && it->code != *q.code) continue;
    if (!q.stage.empty() && it->stage != q.stage) continue;
    if (q.since && it->time < *q.since) continue;
    out.push_back(it->json);
  }
  return out;
}

std::shared_ptr<const std::string> IncidentStore::find(std::string_view cid) const {
  std::lock_guard lock(mutex_);
  for (auto it = ring_.rbegin(); it != ring_.rend(); ++it)
    if (it->correlation_id == cid) return it->json;
  return nullptr;
}

std::size_t IncidentStore::size() const {
  std::lock_guard lock(mutex_);
  return ring_.size();
}

StoreStats IncidentStore::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void IncidentStore::flush() {
  if (!writer_.joinable()) return;
  std::unique_lock lock(queue_mutex_);
  flushed_cv_.wait(lock, [this] { return done_ >= queued_; });
}

void IncidentStore::writer_loop() {
  std::unique_lock lock(queue_mutex_);
  for (;;) {
    if (queue_.empty()) {
      if (stop_) break;
      if (dirty_ && options_.fsync == FsyncPolicy::interval) {
        auto due = last_sync_ + options_.fsync_interval;
        queue_cv_.wait_until(lock, due, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty() && std::chrono::steady_clock::now() >= due) {
          lock.unlock();
          sync();
          lock.lock();
        }
      } else {
        queue_cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      }
      continue;
    }
    std::vector<std::string> batch;
    batch.swap(queue_);
    lock.unlock();
    for (const auto& line : batch) {
      write_line(line);
      if (options_.fsync == FsyncPolicy::always) sync();
    }
    if (options_.fsync == FsyncPolicy::interval &&
        std::chrono::steady_clock::now() - last_sync_ >= options_.fsync_interval)
      sync();
    lock.lock();
    done_ += batch.size();
    flushed_cv_.notify_all();
  }
  lock.unlock();
  if (options_.fsync != FsyncPolicy::never) sync();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void IncidentStore::write_line(const std::string& line) {
  if (log_size_ > 0 && log_size_ + line.size() + 1 > options_.max_log_bytes) rotate();
  if (fd_ < 0) {
    std::lock_guard lock(mutex_);
    ++stats_.write_errors;
    return;
  }
  std::string data = line + "\n";
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd_, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("incident log {}: write failed: {}", options_.log_path, std::strerror(errno));
      std::lock_guard lock(mutex_);
      ++stats_.write_errors;
      return;
    }
    off += static_cast<std::size_t>(n);
  }
  log_size_ += data.size();
  dirty_ = true;
  std::lock_guard lock(mutex_);
  ++stats_.written;
}

void IncidentStore::rotate() {
  if (options_.fsync != FsyncPolicy::never) sync();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  const auto& path = options_.log_path;
  if (options_.keep_rotated == 0) {
    ::unlink(path.c_str());
  } else {
    ::unlink(rotated_name(path, options_.keep_rotated).c_str());
    for (std::size_t k = options_.keep_rotated; k-- > 1;)
      ::rename(rotated_name(path, k).c_str(), rotated_name(path, k + 1).c_str());
    if (::rename(path.c_str(), rotated_name(path, 1).c_str()) != 0)
      spdlog::error("incident log {}: rotation failed: {}", path, std::strerror(errno));
  }
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) spdlog::error("incident log {}: reopen after rotation failed: {}", path, std::strerror(errno));
  log_size_ = 0;
  std::lock_guard lock(mutex_);
  ++stats_.rotations;
}

void IncidentStore::sync() {
  last_sync_ = std::chrono::steady_clock::now();
  if (!dirty_ || fd_ < 0) return;
  dirty_ = false;
  if (::fdatasync(fd_) != 0) {
    spdlog::warn("incident log {}: fdatasync failed: {}", options_.log_path, std::strerror(errno));
    return;
  }
  std::lock_guard lock(mutex_);
  ++stats_.fsyncs;
}

}  // namespace wsgate::proxy::incidents
