// spindle's Boost.Fiber scheduling algorithm, one instance per worker thread.
#pragma once

#include <atomic>
#include <boost/fiber/algo/algorithm.hpp>
#include <boost/fiber/context.hpp>
#include <boost/fiber/operations.hpp>
#include <boost/fiber/properties.hpp>
#include <boost/fiber/scheduler.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "device/device_runtime.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/spin.hpp"

namespace spindle::detail {

struct TaskFiberProperties : boost::fibers::fiber_properties {
  using fiber_properties::fiber_properties;
  TaskBase* task = nullptr;
};

/// Makes `task` the current task of the calling fiber, now and whenever it resumes. Only for
/// fibers started by a worker.
inline void enter_task(TaskBase* task) {
  // Every fiber a worker starts has TaskFiberProperties (the algorithm makes them), so this
  // skips the dynamic_cast of boost::this_fiber::properties, which showed in profiles.
  static_cast<TaskFiberProperties*>(boost::fibers::context::active()->get_properties())->task =
      task;
  set_current_task(task);
}

// A worker's own ready queue, FIFO. Fibers never leave the worker that started them, so
// pick_next can make the task it resumes the thread's current task. When nothing is ready
// the thread spins briefly (spin.hpp), then sleeps on a condition variable until a timer is
// due or notify() (the only member Boost calls from other threads) wakes it.
class WorkerAlgorithm final
    : public boost::fibers::algo::algorithm_with_properties<TaskFiberProperties> {
 public:
  void awakened(boost::fibers::context* context, TaskFiberProperties&) noexcept override {
    context->ready_link(ready_);
  }

  boost::fibers::context* pick_next() noexcept override {
    if (ready_.empty()) return nullptr;
    boost::fibers::context* context = &ready_.front();
    ready_.pop_front();
    TaskBase* task = properties(context).task;
    set_current_task(task);
    if (task && task->device >= 0) make_current(task->device);  // CUDA's device is per thread
    return context;
  }

  bool has_ready_fibers() const noexcept override { return !ready_.empty(); }

  void suspend_until(std::chrono::steady_clock::time_point const& until) noexcept override {
    auto notified = [this] { return notified_.exchange(false, std::memory_order_acquire); };
    if (spin_briefly(notified, until)) return;
    std::unique_lock lock(mutex_);
    if (until == std::chrono::steady_clock::time_point::max()) {
      wake_.wait(lock, notified);
    } else {
      wake_.wait_until(lock, until, notified);
    }
  }

  void notify() noexcept override {
    notified_.store(true, std::memory_order_release);
    std::lock_guard lock(mutex_);
    wake_.notify_all();
  }

 private:
  boost::fibers::scheduler::ready_queue_type ready_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<bool> notified_{false};
};

}  // namespace spindle::detail
