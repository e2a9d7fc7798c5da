#pragma once
// Memory for one asynchronous operation at a time, held inside the object
// that starts it. An idle session keeps a readability wait pending per
// direction and a timer. Through Asio's default per-thread recycling those
// operations take whatever block the thread freed last (often a larger
// HTTP serializer operation's) and keep it for as long as the session
// idles. A slot sized for the operation keeps it in the session instead,
// with nothing else around it.
//
// Asio frees an operation's memory before it invokes the handler, so the
// handler may start the next operation into the same slot. A request that
// does not fit, or comes while the slot is taken (a timer re-armed before
// its cancelled wait ran), goes to Asio's recycling allocator, as it would
// without a slot. Single-threaded: the slot belongs to its session's worker.
#include <boost/asio/recycling_allocator.hpp>
#include <cstddef>

namespace wsgate::proxy {

template <std::size_t Bytes>
class HandlerSlot {
 public:
  HandlerSlot() = default;
  HandlerSlot(const HandlerSlot&) = delete;
  HandlerSlot& operator=(const HandlerSlot&) = delete;

  // The slot's storage, or null when it is taken or too small.
  void* try_take(std::size_t bytes, std::size_t align) {
    if (in_use_ || bytes > Bytes || align > alignof(std::max_align_t)) return nullptr;
    in_use_ = true;
    return storage_;
  }
  // True (and the slot free again) if `p` was the slot's storage.
  bool give_back(void* p) {
    if (p != storage_) return false;
    in_use_ = false;
    return true;
  }
  // An operation lives in the slot now (for tests: it fits).
  bool in_use() const { return in_use_; }

 private:
  alignas(std::max_align_t) unsigned char storage_[Bytes];
  bool in_use_ = false;
};

// The allocator a handler carries (asio::bind_allocator) to use a slot.
template <class T, std::size_t Bytes>
class SlotAllocator {
 public:
  using value_type = T;
  template <class U>
  struct rebind {
    using other = SlotAllocator<U, Bytes>;
  };

  explicit SlotAllocator(HandlerSlot<Bytes>& slot) noexcept : slot_(&slot) {}
  template <class U>
  SlotAllocator(const SlotAllocator<U, Bytes>& other) noexcept : slot_(other.slot()) {}

  T* allocate(std::size_t n) {
    if (void* p = slot_->try_take(n * sizeof(T), alignof(T))) return static_cast<T*>(p);
    return boost::asio::recycling_allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (!slot_->give_back(p)) boost::asio::recycling_allocator<T>().deallocate(p, n);
  }

  HandlerSlot<Bytes>* slot() const noexcept { return slot_; }
  template <class U>
  bool operator==(const SlotAllocator<U, Bytes>& other) const noexcept {
    return slot_ == other.slot();
  }

 private:
  HandlerSlot<Bytes>* slot_;
};

}  // namespace wsgate::proxy
