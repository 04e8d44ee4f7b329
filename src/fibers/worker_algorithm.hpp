// spindle's Boost.Fiber scheduling algorithm, one instance per worker thread.
//
// Tasks run one after another on the worker's *runner* fiber (google/marl's design): a task
// that never blocks costs no fiber of its own. When the runner blocks inside a task (get,
// wait, sleep, a GPU wait, any Boost.Fiber primitive), pick_next hands the runner's role to a
// *spare* fiber kept parked for that moment, and the blocked fiber keeps its task until it
// resumes, finishes it and exits. Fibers never leave the worker that started them, so
// pick_next can restore the thread's current task and CUDA device whenever one resumes.
#pragma once

#include <atomic>
#include <boost/fiber/algo/algorithm.hpp>
#include <boost/fiber/context.hpp>
#include <boost/fiber/operations.hpp>
#include <boost/fiber/properties.hpp>
#include <boost/fiber/scheduler.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "fibers/spin.hpp"
#include "spindle/detail/execution_context.hpp"
#include "spindle/detail/thread_annotations.hpp"

namespace spindle::detail {

/// The stack a fiber runs on: usable bytes below `top`, and below those a guard page, or
/// (when the kernel's map count allows no more guarded stacks) a canary word.
struct FiberStack {
  char* top = nullptr;
  std::size_t usable_bytes = 0;
  std::size_t guard_bytes = 0;  // 0 for a stack with a canary instead
  const std::uint64_t* canary = nullptr;
};

/// The value a canary holds while its stack has not overflowed.
inline constexpr std::uint64_t kStackCanary = 0x5350494e444c4521;  // "SPINDLE!"

/// Reports a stack overflow of the running task on stderr and aborts; async-signal-safe.
/// Defined by the executor, which knows the task.
[[noreturn]] void report_stack_overflow(const FiberStack& stack) noexcept;

struct TaskFiberProperties : boost::fibers::fiber_properties {
  using fiber_properties::fiber_properties;
  ~TaskFiberProperties() override;
  TaskFiberProperties(const TaskFiberProperties&) = delete;
  TaskFiberProperties& operator=(const TaskFiberProperties&) = delete;
  ExecutionContext* task = nullptr;
  FiberStack stack;
  /// ThreadSanitizer's state for this fiber, in a build with -fsanitize=thread: taken when the
  /// fiber first runs (the thread's own for its main context), kept for the thread's next
  /// fiber once this one is gone.
  void* tsan_fiber = nullptr;
  bool owns_tsan_fiber = false;
};

class WorkerAlgorithm;

/// The calling thread's algorithm; null outside spindle's worker threads.
WorkerAlgorithm* worker_algorithm() noexcept;
/// The stack of the fiber running on the calling thread (null top outside worker fibers);
/// read by the stack overflow report.
const FiberStack& active_fiber_stack() noexcept;
/// Told by a stack allocator which stack the fiber it is making gets.
void note_new_fiber_stack(const FiberStack& stack) noexcept;

class WorkerAlgorithm final
    : public boost::fibers::algo::algorithm_with_properties<TaskFiberProperties> {
 public:
  /// Who spins now, in the `spinning` a runtime's workers share (null: no one spins): no one,
  /// a poller, or the idle worker whose index is the value less kIdleWorker.
  enum Spin : int { nobody = 0, poller = 1, kIdleWorker = 2 };
  /// `spinning` lets one worker at a time spin: an idle one before it sleeps, or a runner
  /// polling for tasks (try_spin), which takes the spin from an idle one. `owner` names what
  /// the worker serves (its runtime's scheduler), so that code can tell its own workers from
  /// another runtime's.
  WorkerAlgorithm(unsigned index, std::atomic<int>* spinning, const void* owner = nullptr);
  ~WorkerAlgorithm() override;

  void awakened(boost::fibers::context* context, TaskFiberProperties& properties) noexcept override;
  /// Boost switches to the fiber it returns. In a ThreadSanitizer build it tells TSan of the
  /// switch first, as Boost.Context would if Debian built it with BOOST_USE_TSAN.
  boost::fibers::context* pick_next() noexcept override;
  bool has_ready_fibers() const noexcept override { return !ready_.empty(); }
  void suspend_until(std::chrono::steady_clock::time_point const& until) noexcept override;
  void notify() noexcept override;

  /// The worker's number, 0 to workers - 1.
  [[nodiscard]] unsigned index() const noexcept { return index_; }
  [[nodiscard]] const void* owner() const noexcept { return owner_; }
  /// The fiber that takes new tasks; null once the worker stops.
  [[nodiscard]] boost::fibers::context* runner() const noexcept { return runner_; }
  void set_runner(boost::fibers::context* runner) noexcept { runner_ = runner; }
  /// The next fiber made on this thread is parked as the spare instead of made ready.
  void park_next() noexcept { park_next_ = true; }
  void cancel_park() noexcept { park_next_ = false; }
  [[nodiscard]] bool has_spare() const noexcept { return spare_ != nullptr; }
  /// Lets the parked spare run (it sees it is not the runner and ends).
  void release_spare() noexcept;
  /// The calling fiber yields: it stays ready, so pick_next must not hand its role away.
  void note_yield() noexcept { yielding_ = true; }
  /// Makes a fiber of this worker, suspended with context::suspend(), ready again; any
  /// thread may call it. This worker takes the fiber in only after the fiber has suspended,
  /// so a wake may come before the suspension it ends.
  void wake(boost::fibers::context* fiber) noexcept;
  /// Claims the one spin of the runtime's workers (see the constructor) for the calling
  /// fiber, which then polls for work itself: taken from an idle worker spinning (which then
  /// sleeps), not from another poller (false). End it with stop_spinning().
  [[nodiscard]] bool try_spin() noexcept {
    if (!spinning_) return false;
    int now = spinning_->load(std::memory_order_relaxed);
    while (now != poller) {
      if (spinning_->compare_exchange_weak(now, poller, std::memory_order_acquire)) return true;
    }
    return false;
  }
  void stop_spinning() noexcept {
    if (spinning_) spinning_->store(nobody, std::memory_order_release);
  }
  /// Whether another fiber of this worker is ready or was woken: a fiber polling for work
  /// must then let it run. (Boost keeps its dispatcher ready while a fiber runs.)
  [[nodiscard]] bool others_waiting() const noexcept {
    if (any_woken_.load(std::memory_order_relaxed) || notified_.load(std::memory_order_relaxed)) {
      return true;
    }
    for (const boost::fibers::context& fiber : ready_) {
      if (!fiber.is_context(boost::fibers::type::dispatcher_context)) return true;
    }
    return false;
  }

 private:
  boost::fibers::context* choose_next() noexcept;

  const unsigned index_;
  std::atomic<int>* const spinning_;
  const void* const owner_;
  boost::fibers::scheduler::ready_queue_type ready_;
  boost::fibers::context* runner_ = nullptr;
  boost::fibers::context* spare_ = nullptr;
  bool park_next_ = false;
  bool yielding_ = false;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<bool> notified_{false};
  Mutex woken_mutex_;
  std::vector<boost::fibers::context*> woken_ SPINDLE_GUARDED_BY(woken_mutex_);  // not yet ready
  std::vector<boost::fibers::context*> taking_;  // the owner's: swapped with woken_
  std::atomic<bool> any_woken_{false};
};

/// Makes `task` the current task of the calling fiber, now and whenever it resumes. Outside
/// worker threads (a task run inline by a caller) only the thread's current task is set.
inline void enter_task(ExecutionContext* task) noexcept {
  if (worker_algorithm()) {
    // Every fiber a worker starts has TaskFiberProperties (the algorithm makes them), so this
    // skips the dynamic_cast of boost::this_fiber::properties, which showed in profiles.
    static_cast<TaskFiberProperties*>(boost::fibers::context::active()->get_properties())->task =
        task;
  }
  set_current_context(task);
}

/// Lets the other ready fibers of this thread run; the caller keeps its role.
inline void yield_fiber() {
  if (WorkerAlgorithm* algorithm = worker_algorithm()) algorithm->note_yield();
  boost::this_fiber::yield();
}

}  // namespace spindle::detail
