#include "proxy/incidents/incident_store.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>

#include "proxy/incidents/incident.hpp"
#include "proxy/metrics.hpp"

namespace wsgate::proxy::incidents {
namespace {

constexpr int kMaxCorruptWarnings = 10;

constexpr auto kWarnInterval = std::chrono::seconds(10);

std::string rotated_name(const std::string& path, std::size_t k) {
  return k == 0 ? path : path + "." + std::to_string(k);
}

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// Reads the lines of a regular file, each at most `max` bytes; longer ones
// are skipped and counted. Never blocks on a FIFO (O_NONBLOCK, then refused)
// and never holds more than one line past `max`.
bool read_lines(const std::string& name, std::size_t max, std::vector<std::string>& lines,
                std::uint64_t& too_long) {
  int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    spdlog::warn("incident log {}: {}, not loaded", name, file_kind(st.st_mode));
    ::close(fd);
    return false;
  }
  std::string line;
  bool skipping = false;
  auto end_line = [&] {
    if (skipping) {
      ++too_long;
      spdlog::warn("incident log {}: line {} longer than {} bytes, skipped", name, lines.size() + 1,
                   max);
      skipping = false;
      lines.emplace_back();  // keeps line numbers; empty lines are ignored
    } else {
      lines.push_back(std::move(line));
    }
    line.clear();
  };
  std::vector<char> buf(64 * 1024);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::string_view chunk(buf.data(), static_cast<std::size_t>(n));
    while (!chunk.empty()) {
      auto nl = chunk.find('\n');
      auto piece = chunk.substr(0, nl);
      if (!skipping) {
        if (line.size() + piece.size() > max) {
          skipping = true;
          std::string().swap(line);
        } else {
          line.append(piece);
        }
      }
      if (nl == std::string_view::npos) break;
      end_line();
      chunk.remove_prefix(nl + 1);
    }
  }
  if (skipping || !line.empty()) end_line();
  ::close(fd);
  return true;
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
  auto text_field = [&doc](const char* key) {
    auto it = doc.find(key);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  e.stage = text_field("failing_stage");
  e.route = text_field("route");
  e.upstream = text_field("upstream");
  e.upstream_endpoint = text_field("upstream_endpoint");
  e.time = *t;
  e.json = std::make_shared<const std::string>(std::move(text));
  return e;
}

std::optional<std::uint64_t> IncidentStore::WarnLimiter::take() {
  auto now = std::chrono::steady_clock::now();
  if (now < next) {
    ++hidden;
    return std::nullopt;
  }
  next = now + kWarnInterval;
  return std::exchange(hidden, 0);
}

IncidentStore::IncidentStore(StoreOptions options) : options_(std::move(options)) {
  options_.capacity = std::max<std::size_t>(options_.capacity, 1);
  options_.queue_max = std::max<std::size_t>(options_.queue_max, 1);
  if (options_.log_path.empty()) return;
  // Before reading: a device or FIFO never ends (/dev/full, /dev/zero) and
  // would stall start-up while the loader's buffer grows.
  struct stat st {};
  if (::stat(options_.log_path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw std::runtime_error("--incident-log " + options_.log_path + ": " + file_kind(st.st_mode) +
                             ", not a regular file");
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
  std::uint64_t corrupt = 0, too_long = 0;
  for (std::size_t k = 0; k <= options_.keep_rotated && newest_first.size() < options_.capacity;
       ++k) {
    const std::string name = rotated_name(options_.log_path, k);
    std::vector<std::string> lines;
    if (!read_lines(name, options_.max_line_bytes, lines, too_long)) continue;
    for (std::size_t i = lines.size(); i-- > 0 && newest_first.size() < options_.capacity;) {
      if (lines[i].empty()) continue;
      std::optional<Entry> e;
      // Our records nest a few levels above the trace's cap.
      if (!json_nesting_exceeds(lines[i], kMaxTraceDepth + 8)) {
        auto doc = nlohmann::json::parse(lines[i], nullptr, false);
        if (!doc.is_discarded()) e = make_entry(doc, std::move(lines[i]));
      }
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
  for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it)
    ring_.push_back(std::move(*it));
  stats_.loaded = ring_.size();
  stats_.corrupt_lines = corrupt;
  stats_.lines_too_long = too_long;
  if (options_.metrics)
    options_.metrics->log_lines_too_long.Increment(static_cast<double>(too_long));
  if (!ring_.empty()) spdlog::info("loaded {} incidents from {}", ring_.size(), options_.log_path);
}

void IncidentStore::open_log() {
  std::string error;
  if (!open_fd(error))
    throw std::runtime_error("--incident-log " + options_.log_path + ": " + error);
  last_sync_ = std::chrono::steady_clock::now();
}

bool IncidentStore::open_fd(std::string& error) {
  // O_NONBLOCK: opening a FIFO put in place after start returns at once.
  int fd = ::open(options_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK,
                  0640);
  if (fd < 0) {
    error = std::string("cannot open: ") + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    error = st.st_mode != 0 ? std::string(file_kind(st.st_mode)) + ", not a regular file"
                            : std::string("fstat: ") + std::strerror(errno);
    ::close(fd);
    return false;
  }
  ::fcntl(fd, F_SETFL, O_APPEND);  // blocking writes: a regular file either way
  fd_ = fd;
  log_size_ = static_cast<std::uint64_t>(st.st_size);
  needs_newline_ = false;
  if (log_size_ > 0) {
    // A crash mid-line leaves a partial record; start ours on a line of its own.
    char last = '\n';
    if (::pread(fd_, &last, 1, static_cast<off_t>(log_size_ - 1)) != 1) {
      // Write-only descriptor: read the last byte through a second one.
      int rfd = ::open(options_.log_path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
      if (rfd >= 0) {
        if (::pread(rfd, &last, 1, static_cast<off_t>(log_size_ - 1)) != 1) last = '\n';
        ::close(rfd);
      }
    }
    needs_newline_ = last != '\n';
  }
  return true;
}

void IncidentStore::reopen_if_needed() {
  bool reopen = reopen_requested_.exchange(false) || fd_ < 0;
  if (!reopen) {
    // Someone else's rotation (rename, delete, a new directory) leaves our
    // descriptor on a file no longer at the path.
    struct stat at_path {
    }, ours{};
    reopen = ::stat(options_.log_path.c_str(), &at_path) != 0 || ::fstat(fd_, &ours) != 0 ||
             at_path.st_ino != ours.st_ino || at_path.st_dev != ours.st_dev;
  }
  if (!reopen) return;
  const bool was_open = fd_ >= 0;
  if (was_open) {
    if (options_.fsync != FsyncPolicy::never) sync();
    ::close(fd_);
    fd_ = -1;
  }
  std::string error;
  if (!open_fd(error)) {
    count_error(IncidentLogError::open, error, 0);
    return;
  }
  spdlog::info("incident log {}: reopened ({} bytes)", options_.log_path, log_size_);
  if (options_.metrics) options_.metrics->log_reopens.Increment();
  std::lock_guard lock(mutex_);
  ++stats_.reopens;
}

void IncidentStore::request_reopen() {
  if (!writer_.joinable()) return;
  {
    std::lock_guard lock(queue_mutex_);
    reopen_requested_ = true;
  }
  queue_cv_.notify_one();
}

void IncidentStore::count_error(IncidentLogError reason, const std::string& what, int err) {
  if (options_.metrics) options_.metrics->log_write_error(reason).Increment();
  {
    std::lock_guard lock(mutex_);
    ++stats_.write_errors;
  }
  if (auto hidden = write_warnings_.take())
    spdlog::warn("incident log {}: {} failed: {}{} ({} more failures in the last {} s not shown)",
                 options_.log_path, to_string(reason), what,
                 err != 0 ? std::string(": ") + std::strerror(err) : std::string(), *hidden,
                 std::chrono::seconds(kWarnInterval).count());
}

bool IncidentStore::add(const nlohmann::json& incident) {
  std::string text = dump_incident(incident);
  auto e = make_entry(incident, text);
  if (!e) return false;
  {
    std::lock_guard lock(mutex_);
    ring_.push_back(std::move(*e));
    while (ring_.size() > options_.capacity) ring_.pop_front();
  }
  if (writer_.joinable()) {
    std::optional<std::uint64_t> warn;
    bool dropped = false;
    std::size_t waiting = 0, waiting_bytes = 0;
    {
      std::lock_guard lock(queue_mutex_);
      waiting = queued_ - done_;
      waiting_bytes = queued_bytes_;
      if (waiting >= options_.queue_max ||
          (waiting > 0 && queued_bytes_ + text.size() > options_.queue_max_bytes)) {
        dropped = true;
        warn = drop_warnings_.take();
      } else {
        queued_bytes_ += text.size();
        queue_.push_back(std::move(text));
        ++queued_;
      }
    }
    if (!dropped) {
      queue_cv_.notify_one();
      return true;
    }
    if (options_.metrics) options_.metrics->log_dropped.Increment();
    {
      std::lock_guard lock(mutex_);
      ++stats_.dropped;
    }
    if (warn)
      spdlog::warn(
          "incident log {}: writer queue full ({} records, {} bytes waiting): record kept in "
          "memory, not logged ({} more in the last {} s not shown)",
          options_.log_path, waiting, waiting_bytes, *warn,
          std::chrono::seconds(kWarnInterval).count());
  }
  return true;
}

std::vector<std::shared_ptr<const std::string>> IncidentStore::query(const IncidentQuery& q) const {
  std::vector<std::shared_ptr<const std::string>> out;
  std::lock_guard lock(mutex_);
  for (auto it = ring_.rbegin(); it != ring_.rend() && out.size() < q.limit; ++it) {
    if (q.code && it->code != *q.code) continue;
    if (!q.stage.empty() && it->stage != q.stage) continue;
    if (!q.route.empty() && it->route != q.route) continue;
    if (!q.upstream.empty() && it->upstream != q.upstream && it->upstream_endpoint != q.upstream)
      continue;
    if (q.since && it->time < *q.since) continue;
    if (q.until && it->time > *q.until) continue;
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
      if (reopen_requested_) {
        lock.unlock();
        reopen_if_needed();
        lock.lock();
        continue;
      }
      if (dirty_ && options_.fsync == FsyncPolicy::interval) {
        auto due = last_sync_ + options_.fsync_interval;
        queue_cv_.wait_until(lock, due,
                             [this] { return stop_ || !queue_.empty() || reopen_requested_; });
        if (queue_.empty() && std::chrono::steady_clock::now() >= due) {
          lock.unlock();
          sync();
          lock.lock();
        }
      } else {
        queue_cv_.wait(lock, [this] { return stop_ || !queue_.empty() || reopen_requested_; });
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
    for (const auto& line : batch) queued_bytes_ -= line.size();
    flushed_cv_.notify_all();
  }
  lock.unlock();
  if (options_.fsync != FsyncPolicy::never) sync();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void IncidentStore::write_line(const std::string& line) {
  reopen_if_needed();
  if (fd_ >= 0 && log_size_ > 0 && log_size_ + line.size() + 1 > options_.max_log_bytes) rotate();
  if (fd_ < 0) return;  // counted by reopen_if_needed() or rotate()
  struct stat st {};
  // The size before our line, so a failure can cut back to it.
  const off_t before = ::fstat(fd_, &st) == 0 ? st.st_size : static_cast<off_t>(log_size_);
  std::string data;
  data.reserve(line.size() + 2);
  if (needs_newline_) data += '\n';
  data += line;
  data += '\n';
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd_, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      std::string what = "write of " + std::to_string(data.size()) + " bytes";
      if (off > 0) {
        // Cut the partial line back, so the next record does not glue onto it.
        if (::ftruncate(fd_, before) == 0) {
          what += " (" + std::to_string(off) + " written, cut back)";
          std::lock_guard lock(mutex_);
          ++stats_.rolled_back;
        } else {
          what += " (" + std::to_string(off) +
                  " written, cut back failed: " + std::strerror(errno) + ")";
          needs_newline_ = true;
        }
      }
      count_error(IncidentLogError::write, what, err);
      return;
    }
    off += static_cast<std::size_t>(n);
  }
  needs_newline_ = false;
  log_size_ = static_cast<std::uint64_t>(before) + data.size();
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
      count_error(IncidentLogError::rotate, "rename to " + rotated_name(path, 1), errno);
  }
  log_size_ = 0;
  {
    std::lock_guard lock(mutex_);
    ++stats_.rotations;
  }
  std::string error;
  if (!open_fd(error)) count_error(IncidentLogError::open, "reopen after rotation: " + error, 0);
}

void IncidentStore::sync() {
  last_sync_ = std::chrono::steady_clock::now();
  if (!dirty_ || fd_ < 0) return;
  dirty_ = false;
  if (::fdatasync(fd_) != 0) {
    count_error(IncidentLogError::sync, "fdatasync", errno);
    return;
  }
  std::lock_guard lock(mutex_);
  ++stats_.fsyncs;
}

}  // namespace wsgate::proxy::incidents
