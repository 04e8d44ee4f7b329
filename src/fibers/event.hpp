// A one-shot, fiber-aware event that counts completions down, or fails.
#pragma once

#include <atomic>
#include <boost/fiber/condition_variable.hpp>
#include <chrono>
#include <exception>
#include <mutex>
#include <optional>

#include "fibers/worker_algorithm.hpp"
#include "spindle/object_ref.hpp"

namespace spindle::detail {

/// Waited on by one fiber or thread; told by objects as they complete (Waiter), by the
/// scheduler when a CPU is granted, or failed by the deadlock check. Works across threads.
///
/// An untimed wait on a worker suspends the fiber, and the completion hands it straight back
/// to its worker (WorkerAlgorithm::wake); an untimed wait on another thread sleeps on the
/// settled flag (a futex). Neither takes Boost.Fiber's spinlocks, which cost most of a task's
/// time when completions cross threads. Timed waits use a fiber condition variable.
class Event final : public Waiter {
 public:
  explicit Event(std::size_t needed) : remaining_(needed) {}

  void on_complete() noexcept override {
    std::size_t left = remaining_.load(std::memory_order_acquire);
    // Counts down to zero once; later completions (more objects than needed) do nothing.
    while (left > 0 &&
           !remaining_.compare_exchange_weak(left, left - 1, std::memory_order_acq_rel)) {
    }
    if (left == 1) settle(nullptr);
  }

  void fail(std::exception_ptr error) noexcept { settle(std::move(error)); }

  /// Whether the wait is over (counted down, or failed).
  [[nodiscard]] bool settled() const noexcept { return settled_.load(std::memory_order_acquire); }

  /// Waits until counted down or failed; false if the deadline passed first.
  bool wait(std::optional<Clock::time_point> deadline) {
    if (settled()) return true;
    if (deadline) return wait_until(*deadline);
    WorkerAlgorithm* algorithm = worker_algorithm();
    if (!algorithm) {
      settled_.wait(false, std::memory_order_acquire);
      return true;
    }
    boost::fibers::context* self = boost::fibers::context::active();
    {
      MutexLock lock(mutex_);
      if (settled()) return true;
      fiber_ = self;
      algorithm_ = algorithm;
    }
    // A wake that comes before the suspension is handled by this thread after it.
    self->suspend();
    return true;
  }

  [[nodiscard]] std::exception_ptr error() {
    MutexLock lock(mutex_);
    return error_;
  }

 private:
  bool wait_until(Clock::time_point deadline) {
    MutexLock lock(mutex_);
    timed_waiter_ = true;
    return ready_.wait_until(lock, deadline, [this] { return settled(); });
  }

  void settle(std::exception_ptr error) noexcept {
    boost::fibers::context* fiber = nullptr;
    WorkerAlgorithm* algorithm = nullptr;
    {
      MutexLock lock(mutex_);
      if (settled()) return;
      error_ = std::move(error);
      settled_.store(true, std::memory_order_release);
      fiber = std::exchange(fiber_, nullptr);
      algorithm = algorithm_;
      if (timed_waiter_) ready_.notify_all();
    }
    settled_.notify_all();
    if (fiber) algorithm->wake(fiber);
  }

  std::atomic<std::size_t> remaining_;
  std::atomic<bool> settled_{false};
  Mutex mutex_;
  std::exception_ptr error_ SPINDLE_GUARDED_BY(mutex_);
  boost::fibers::context* fiber_ SPINDLE_GUARDED_BY(mutex_) = nullptr;  // suspended in wait
  WorkerAlgorithm* algorithm_ SPINDLE_GUARDED_BY(mutex_) = nullptr;     // its worker's
  bool timed_waiter_ SPINDLE_GUARDED_BY(mutex_) = false;
  boost::fibers::condition_variable_any ready_;
};

}  // namespace spindle::detail
