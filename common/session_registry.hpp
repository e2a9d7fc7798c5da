#pragma once
// The live sessions of a server, for shutdown/drain and the admin views.
// Holds weak references: a session registers itself once it is running and
// unregisters when it ends; a session that died without unregistering is
// simply skipped. Thread-safe; callers act on the snapshot outside the lock.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace wsgate {

template <class Session>
class SessionRegistry {
 public:
  // Ids start at 1, so 0 can mean "not registered".
  std::uint64_t add(std::weak_ptr<Session> session) {
    std::lock_guard lock(mutex_);
    auto id = next_id_++;
    sessions_.emplace(id, std::move(session));
    return id;
  }

  void remove(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    sessions_.erase(id);
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return sessions_.size();
  }

  // The sessions still alive, in registration order.
  std::vector<std::shared_ptr<Session>> live() const {
    std::vector<std::shared_ptr<Session>> out;
    std::lock_guard lock(mutex_);
    out.reserve(sessions_.size());
    for (const auto& [id, weak] : sessions_)
      if (auto s = weak.lock()) out.push_back(std::move(s));
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, std::weak_ptr<Session>> sessions_;
};

}  // namespace wsgate
