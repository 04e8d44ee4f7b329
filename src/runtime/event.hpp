// A one-shot, fiber-aware event that counts completions down, or fails.
#pragma once

#include <atomic>
#include <boost/fiber/condition_variable.hpp>
#include <boost/fiber/mutex.hpp>
#include <chrono>
#include <exception>
#include <mutex>
#include <optional>

#include "spindle/object_ref.hpp"

namespace spindle::detail {

/// Waited on by one fiber or thread; told by objects as they complete (Waiter), by the
/// scheduler when a CPU is granted, or failed by the deadlock check. Works across threads:
/// a waiting thread outside any task sleeps on Boost.Fiber's own scheduler.
class Event final : public Waiter {
 public:
  explicit Event(std::size_t needed) : remaining_(needed) {}

  void on_complete() noexcept override {
    std::lock_guard lock(mutex_);
    if (remaining_ > 0 && --remaining_ == 0) settle_locked();
  }

  void fail(std::exception_ptr error) noexcept {
    std::lock_guard lock(mutex_);
    error_ = std::move(error);
    settle_locked();
  }

  /// Whether the wait is over (counted down, or failed).
  [[nodiscard]] bool settled() const noexcept { return settled_.load(std::memory_order_acquire); }

  /// Waits until counted down or failed; false if the deadline passed first.
  bool wait(std::optional<Clock::time_point> deadline) {
    if (settled()) return true;
    std::unique_lock lock(mutex_);
    auto over = [this] { return remaining_ == 0 || error_ != nullptr; };
    if (!deadline) {
      ready_.wait(lock, over);
      return true;
    }
    return ready_.wait_until(lock, *deadline, over);
  }

  [[nodiscard]] std::exception_ptr error() {
    std::lock_guard lock(mutex_);
    return error_;
  }

 private:
  void settle_locked() noexcept {
    settled_.store(true, std::memory_order_release);
    ready_.notify_all();
  }

  std::atomic<bool> settled_{false};
  std::mutex mutex_;
  boost::fibers::condition_variable_any ready_;
  std::size_t remaining_;
  std::exception_ptr error_;
};

}  // namespace spindle::detail
