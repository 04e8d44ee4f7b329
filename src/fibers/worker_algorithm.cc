// The worker's fiber algorithm: see worker_algorithm.hpp.
#include "fibers/worker_algorithm.hpp"

#include <utility>

namespace spindle::detail {
namespace {

thread_local WorkerAlgorithm* tls_algorithm = nullptr;
thread_local FiberStack tls_active_stack;
thread_local FiberStack tls_new_stack;

}  // namespace

WorkerAlgorithm* worker_algorithm() noexcept { return tls_algorithm; }
const FiberStack& active_fiber_stack() noexcept { return tls_active_stack; }
void note_new_fiber_stack(const FiberStack& stack) noexcept { tls_new_stack = stack; }

WorkerAlgorithm::WorkerAlgorithm(unsigned index, std::atomic<bool>* spinning,
                                 const void* owner)
    : index_(index), spinning_(spinning), owner_(owner) {
  tls_algorithm = this;
}

WorkerAlgorithm::~WorkerAlgorithm() {
  if (tls_algorithm == this) tls_algorithm = nullptr;
}

void WorkerAlgorithm::awakened(boost::fibers::context* context,
                               TaskFiberProperties& properties) noexcept {
  // A fiber is awakened first right after it is made, on the thread that made its stack.
  if (!properties.stack.top && tls_new_stack.top)
    properties.stack = std::exchange(tls_new_stack, {});
  if (park_next_) {
    park_next_ = false;
    spare_ = context;
    return;
  }
  context->ready_link(ready_);
}

// Boost calls this when the active fiber yields, blocks or ends. A runner that is inside a
// task and not yielding has blocked: the spare takes its role, behind the fibers already
// ready, and the blocked fiber finishes its task when it resumes.
boost::fibers::context* WorkerAlgorithm::pick_next() noexcept {
  // A stack without a guard page overflowed if its canary changed: report it before the
  // fiber whose stack it overwrote runs.
  if (tls_active_stack.canary && *tls_active_stack.canary != kStackCanary) {
    report_stack_overflow(tls_active_stack);
  }
  const bool yielded = std::exchange(yielding_, false);
  if (any_woken_.exchange(false, std::memory_order_acquire)) {
    {
      MutexLock lock(woken_mutex_);
      taking_.swap(woken_);
    }
    // The fiber now suspending may be among them: the dispatcher is ready ahead of it.
    for (boost::fibers::context* fiber : taking_) fiber->ready_link(ready_);
    taking_.clear();
  }
  boost::fibers::context* active = boost::fibers::context::active();
  if (active == runner_ && spare_ && !yielded && current_context() != nullptr) {
    runner_ = std::exchange(spare_, nullptr);
    runner_->ready_link(ready_);
  }
  if (ready_.empty()) {  // the dispatcher runs: no task, no fiber stack of ours
    tls_active_stack = {};
    set_current_context(nullptr);
    return nullptr;
  }
  boost::fibers::context* context = &ready_.front();
  ready_.pop_front();
  TaskFiberProperties& next = properties(context);
  tls_active_stack = next.stack;
  set_current_context(next.task);
  if (next.task && next.task->device >= 0) make_current(next.task->device);  // per thread
  return context;
}

void WorkerAlgorithm::wake(boost::fibers::context* fiber) noexcept {
  {
    MutexLock lock(woken_mutex_);
    woken_.push_back(fiber);
  }
  any_woken_.store(true, std::memory_order_release);
  notify();
}

void WorkerAlgorithm::release_spare() noexcept {
  if (spare_) std::exchange(spare_, nullptr)->ready_link(ready_);
}

// When nothing is ready the thread spins briefly (spin.hpp), then sleeps on a condition
// variable until a timer is due or notify() (the only member Boost calls from other threads)
// wakes it.
// One idle worker at a time spins: more would take cores from the threads that submit work
// and wait for it, which matters most when there are no more cores than workers.
void WorkerAlgorithm::suspend_until(std::chrono::steady_clock::time_point const& until) noexcept {
  auto notified = [this] { return notified_.exchange(false, std::memory_order_acquire); };
  if (spinning_ && spinning_->exchange(true, std::memory_order_acquire) == false) {
    bool woken = spin_briefly(notified, until);
    spinning_->store(false, std::memory_order_release);
    if (woken) return;
  }
  if (notified()) return;
  std::unique_lock lock(mutex_);
  if (until == std::chrono::steady_clock::time_point::max()) {
    wake_.wait(lock, notified);
  } else {
    wake_.wait_until(lock, until, notified);
  }
}

void WorkerAlgorithm::notify() noexcept {
  notified_.store(true, std::memory_order_release);
  std::lock_guard lock(mutex_);
  wake_.notify_all();
}

}  // namespace spindle::detail
