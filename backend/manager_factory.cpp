#include "backend/manager_factory.hpp"

#include <algorithm>

namespace wsgate::backend {

std::size_t UserManager::broadcast(const std::string& thread_id,
                                   std::shared_ptr<const std::string> message) {
  std::vector<std::shared_ptr<Connection>> targets;
  {
    std::lock_guard lock(mutex_);
    for (const auto& e : entries_)
      if (e.thread_id == thread_id)
        if (auto c = e.connection.lock()) targets.push_back(std::move(c));
  }
  // Deliver outside the lock: a connection may take its own locks.
  for (auto& c : targets) c->deliver(message);
  return targets.size();
}

std::size_t UserManager::connection_count() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

ManagerLease::ManagerLease(ManagerLease&& other) noexcept
    : factory_(other.factory_), manager_(std::move(other.manager_)), id_(other.id_) {
  other.factory_ = nullptr;
  other.manager_.reset();
}

ManagerLease& ManagerLease::operator=(ManagerLease&& other) noexcept {
  if (this != &other) {
    release();
    factory_ = other.factory_;
    manager_ = std::move(other.manager_);
    id_ = other.id_;
    other.factory_ = nullptr;
    other.manager_.reset();
  }
  return *this;
}

void ManagerLease::release() {
  if (factory_ && manager_) factory_->release(manager_, id_);
  factory_ = nullptr;
  manager_.reset();
}

ManagerFactory::ManagerFactory(std::size_t max_connections_per_user, ManagerCountObserver observer)
    : cap_(std::max<std::size_t>(max_connections_per_user, 1)), observer_(std::move(observer)) {}

ManagerFactory::~ManagerFactory() = default;

ManagerFactory::Result ManagerFactory::acquire(const std::string& user_id,
                                               const std::string& thread_id,
                                               std::weak_ptr<Connection> connection) {
  ManagerLease lease;
  bool created = false;
  {
    // The factory lock covers the count check and the insertion, so two
    // concurrent connects cannot both take the last slot, and a release
    // cannot erase a manager that an acquire is joining.
    std::lock_guard lock(mutex_);
    auto& slot = managers_[user_id];
    if (!slot) {
      slot = std::make_shared<UserManager>(user_id);
      created = true;
    }
    {
      std::lock_guard mlock(slot->mutex_);
      if (slot->entries_.size() >= cap_) return CapReached{cap_};
      lease.id_ = next_id_++;
      slot->entries_.push_back({lease.id_, thread_id, std::move(connection)});
    }
    lease.factory_ = this;
    lease.manager_ = slot;
  }
  if (created && observer_) observer_(+1);
  return lease;
}

void ManagerFactory::release(const std::shared_ptr<UserManager>& manager, std::uint64_t id) {
  bool erased = false;
  {
    std::lock_guard lock(mutex_);
    bool empty = false;
    {
      std::lock_guard mlock(manager->mutex_);
      auto& entries = manager->entries_;
      entries.erase(std::remove_if(entries.begin(), entries.end(),
                                   [id](const auto& e) { return e.id == id; }),
                    entries.end());
      empty = entries.empty();
    }
    if (empty) {
      auto it = managers_.find(manager->user_id());
      if (it != managers_.end() && it->second == manager) {
        managers_.erase(it);
        erased = true;
      }
    }
  }
  if (erased && observer_) observer_(-1);
}

std::size_t ManagerFactory::manager_count() const {
  std::lock_guard lock(mutex_);
  return managers_.size();
}

std::shared_ptr<UserManager> ManagerFactory::find(const std::string& user_id) const {
  std::lock_guard lock(mutex_);
  auto it = managers_.find(user_id);
  return it == managers_.end() ? nullptr : it->second;
}

}  // namespace wsgate::backend
