#pragma once
// Where incidents live: a bounded in-memory ring (newest kept) and, when a
// path is given, an append-only JSONL log with size-capped rotation
// (FILE, FILE.1 ... FILE.<keep>) and an fsync policy. On construction the
// newest `capacity` incidents are loaded back from the log and its rotated
// files, corrupt lines skipped with a warning, so a restart loses nothing.
//
// Thread-safe. add() never touches the disk: a writer thread of the store's
// own appends, rotates and syncs, so no I/O thread waits on a disk.
//
// A logged record is never lost to a later failure: a failed or short write
// is cut back to the last whole line (so the next record starts on a line of
// its own); a log file deleted, replaced or rotated away by someone else is
// reopened at the path on the next write (and on request_reopen(), SIGHUP).
// Only regular files are accepted, and loading reads lines of bounded length.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace wsgate::proxy {
struct IncidentPathMetrics;
enum class IncidentLogError : std::uint8_t;
}  // namespace wsgate::proxy

namespace wsgate::proxy::incidents {

enum class FsyncPolicy { always, interval, never };
std::optional<FsyncPolicy> parse_fsync_policy(std::string_view name);

struct StoreOptions {
  std::size_t capacity = 1000;
  std::string log_path;  // empty: memory only
  std::uint64_t max_log_bytes = 64ull << 20;
  std::size_t keep_rotated = 3;  // FILE.1 .. FILE.3
  FsyncPolicy fsync = FsyncPolicy::interval;
  std::chrono::milliseconds fsync_interval{1000};
  // Lines queued for the writer (and being written) at most; past it a
  // record is kept in memory but not logged, and counted.
  std::size_t queue_max = 10000;
  // Bytes of those lines at most (one line is always taken when none wait).
  std::size_t queue_max_bytes = 64u << 20;
  // Longest line loaded back; longer ones are skipped and counted.
  std::size_t max_line_bytes = 4u << 20;
  IncidentPathMetrics* metrics = nullptr;  // optional: counters to bump
};

struct IncidentQuery {
  std::optional<std::uint16_t> code;
  std::string stage;     // empty: any
  std::string route;     // empty: any
  std::string upstream;  // empty: any; matches `upstream` or `upstream_endpoint`
  std::optional<std::chrono::system_clock::time_point> since;
  std::optional<std::chrono::system_clock::time_point> until;  // inclusive
  std::size_t limit = 100;
};

struct StoreStats {
  std::uint64_t loaded = 0;         // incidents read back at start
  std::uint64_t corrupt_lines = 0;  // skipped while loading
  std::uint64_t written = 0;        // lines appended to the log
  std::uint64_t write_errors = 0;
  std::uint64_t fsyncs = 0;
  std::uint64_t rotations = 0;
  std::uint64_t dropped = 0;         // log writes dropped: queue full
  std::uint64_t reopens = 0;         // after the file went missing or was replaced
  std::uint64_t lines_too_long = 0;  // skipped while loading
  std::uint64_t rolled_back = 0;     // partial lines cut back after a failed write
};

class IncidentStore {
 public:
  // Throws std::runtime_error when the log path exists and is not a regular
  // file (a device, FIFO or directory) or cannot be opened.
  explicit IncidentStore(StoreOptions options);
  ~IncidentStore();  // writes and syncs whatever is queued
  IncidentStore(const IncidentStore&) = delete;
  IncidentStore& operator=(const IncidentStore&) = delete;

  // Keeps the record (the oldest leaves past capacity) and queues its line
  // for the log. Returns false when the record lacks correlation_id,
  // close.code or time.
  bool add(const nlohmann::json& incident);

  // Serialized records, newest first.
  std::vector<std::shared_ptr<const std::string>> query(const IncidentQuery& q) const;
  // The newest record with this correlation ID, or null.
  std::shared_ptr<const std::string> find(std::string_view correlation_id) const;

  std::size_t size() const;
  std::size_t capacity() const { return options_.capacity; }
  StoreStats stats() const;
  // Blocks until every queued line is written (and synced unless the
  // policy is never). For tests and shutdown.
  void flush();
  // Closes and reopens the log at its path before the next write (SIGHUP,
  // after an external rotation).
  void request_reopen();

 private:
  struct Entry {
    std::string correlation_id;
    std::uint16_t code = 0;
    std::string stage;
    std::string route;
    std::string upstream;
    std::string upstream_endpoint;
    std::chrono::system_clock::time_point time;
    std::shared_ptr<const std::string> json;
  };
  static std::optional<Entry> make_entry(const nlohmann::json& doc, std::string text);

  void load();
  void open_log();
  bool open_fd(std::string& error);  // writer thread (or constructor) only
  void reopen_if_needed();           // writer thread only
  void writer_loop();
  void write_line(const std::string& line);  // writer thread only
  void rotate();                             // writer thread only
  void sync();                               // writer thread only
  void count_error(IncidentLogError reason, const std::string& what,
                   int err);  // writer thread only

  // At most one warning per interval; the next one says how many it hid.
  struct WarnLimiter {
    std::chrono::steady_clock::time_point next{};
    std::uint64_t hidden = 0;
    std::optional<std::uint64_t> take();
  };

  StoreOptions options_;

  mutable std::mutex mutex_;  // ring, stats
  std::deque<Entry> ring_;    // oldest first
  StoreStats stats_;

  // Writer thread state.
  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::condition_variable flushed_cv_;
  std::vector<std::string> queue_;
  std::uint64_t queued_ = 0, done_ = 0;
  std::size_t queued_bytes_ = 0;  // of lines queued or being written
  bool stop_ = false;
  std::atomic<bool> reopen_requested_{false};
  WarnLimiter drop_warnings_;   // under queue_mutex_
  WarnLimiter write_warnings_;  // writer thread
  bool needs_newline_ = false;  // the file ends inside a line we could not cut back
  int fd_ = -1;
  std::uint64_t log_size_ = 0;
  bool dirty_ = false;
  std::chrono::steady_clock::time_point last_sync_{};
  std::thread writer_;
};

}  // namespace wsgate::proxy::incidents
