#pragma once
// One isolated manager per user, holding that user's connections. A run's
// events go to the user's connections on the run's thread and to no one
// else. The factory hands out leases: the manager lives while a lease on it
// does, and the factory forgets it when its last connection leaves.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

namespace wsgate::backend {

// What a manager needs from a connection. deliver() may be called from any
// thread and must not block.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual void deliver(std::shared_ptr<const std::string> message) = 0;
};

class UserManager {
 public:
  explicit UserManager(std::string user_id) : user_id_(std::move(user_id)) {}
  const std::string& user_id() const { return user_id_; }

  // Sends `message` to this user's connections on `thread_id`; returns how many.
  std::size_t broadcast(const std::string& thread_id, std::shared_ptr<const std::string> message);
  std::size_t connection_count() const;

 private:
  friend class ManagerFactory;
  struct Entry {
    std::uint64_t id;
    std::string thread_id;
    std::weak_ptr<Connection> connection;
  };
  std::string user_id_;
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
};

class ManagerFactory;

// A connection's membership in its user's manager; releasing it (or
// destroying it) removes the connection.
class ManagerLease {
 public:
  ManagerLease() = default;
  ManagerLease(ManagerLease&&) noexcept;
  ManagerLease& operator=(ManagerLease&&) noexcept;
  ManagerLease(const ManagerLease&) = delete;
  ManagerLease& operator=(const ManagerLease&) = delete;
  ~ManagerLease() { release(); }

  void release();
  explicit operator bool() const { return manager_ != nullptr; }
  const std::shared_ptr<UserManager>& manager() const { return manager_; }

 private:
  friend class ManagerFactory;
  ManagerFactory* factory_ = nullptr;
  std::shared_ptr<UserManager> manager_;
  std::uint64_t id_ = 0;
};

class ManagerFactory {
 public:
  struct CapReached {
    std::size_t cap;
  };
  using Result = std::variant<ManagerLease, CapReached>;

  // Called (under no lock of ours) with +1 when a manager is created and -1
  // when one is removed.
  using ManagerCountObserver = std::function<void(int)>;

  explicit ManagerFactory(std::size_t max_connections_per_user,
                          ManagerCountObserver observer = nullptr);
  ~ManagerFactory();
  ManagerFactory(const ManagerFactory&) = delete;
  ManagerFactory& operator=(const ManagerFactory&) = delete;

  // Adds `connection` to `user_id`'s manager (creating it), unless the user
  // already holds max_connections_per_user connections.
  Result acquire(const std::string& user_id, const std::string& thread_id,
                 std::weak_ptr<Connection> connection);

  std::size_t manager_count() const;
  std::shared_ptr<UserManager> find(const std::string& user_id) const;

 private:
  friend class ManagerLease;
  void release(const std::shared_ptr<UserManager>& manager, std::uint64_t id);

  const std::size_t cap_;
  ManagerCountObserver observer_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<UserManager>> managers_;
  std::uint64_t next_id_ = 1;
};

}  // namespace wsgate::backend
