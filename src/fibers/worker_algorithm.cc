// The worker's fiber algorithm: see worker_algorithm.hpp.
#include "fibers/worker_algorithm.hpp"

#include <new>
#include <utility>
#include <vector>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SPINDLE_TSAN 1
#include <sanitizer/tsan_interface.h>
#endif
#endif

namespace spindle::detail {
namespace {

thread_local WorkerAlgorithm* tls_algorithm = nullptr;
thread_local FiberStack tls_active_stack;
thread_local FiberStack tls_new_stack;

// ThreadSanitizer's view of fibers. Boost.Fiber switches stacks inside its own library, which
// Debian does not build with BOOST_USE_TSAN, so TSan would see every fiber of a thread as one
// stack and miss the order that switches and remote wake-ups impose. pick_next is where Boost
// asks which fiber runs next, just before it switches: TSan is told of the switch there.
#if SPINDLE_TSAN
thread_local void* tls_main_tsan_fiber = nullptr;  // the thread's own
// TSan fibers of ended fibers, for the next ones: LLVM 14's __tsan_destroy_fiber leaves the
// calling thread without its TSan slot (a CHECK fails, or the next call crashes), so they
// are kept and reused instead. Never freed: the fibers' contexts may be destroyed after the
// thread's other thread_locals.
thread_local std::vector<void*>* tls_spare_tsan_fibers = nullptr;

// The switch must be the last thing pick_next does with TSan watching: TSan counts the code
// after it as the next fiber's, and a function's exit recorded there would unbalance the
// next fiber's call stack (empty, for a fiber that has not run yet). So pick_next itself is
// not instrumented; what it calls returns before the switch.
#define SPINDLE_SWITCHES_FIBERS __attribute__((disable_sanitizer_instrumentation))

// The TSan fiber `next` runs as: its own, made on first use; the thread's for its main context.
void* tsan_fiber_of(boost::fibers::context* next, TaskFiberProperties& properties) noexcept {
  if (!properties.tsan_fiber) {
    if (next->is_context(boost::fibers::type::main_context)) {
      properties.tsan_fiber = tls_main_tsan_fiber;
    } else {
      if (!tls_spare_tsan_fibers || tls_spare_tsan_fibers->empty()) {
        properties.tsan_fiber = __tsan_create_fiber(0);
      } else {
        properties.tsan_fiber = tls_spare_tsan_fibers->back();
        tls_spare_tsan_fibers->pop_back();
      }
      properties.owns_tsan_fiber = true;
    }
  }
  return properties.tsan_fiber;
}

void keep_tsan_fiber(void* fiber) noexcept {
  try {
    if (!tls_spare_tsan_fibers) tls_spare_tsan_fibers = new std::vector<void*>;
    tls_spare_tsan_fibers->push_back(fiber);
  } catch (const std::bad_alloc&) {
    // Left to the end of the process.
  }
}
#else
#define SPINDLE_SWITCHES_FIBERS
#endif

}  // namespace

WorkerAlgorithm* worker_algorithm() noexcept { return tls_algorithm; }
const FiberStack& active_fiber_stack() noexcept { return tls_active_stack; }
void note_new_fiber_stack(const FiberStack& stack) noexcept { tls_new_stack = stack; }

WorkerAlgorithm::WorkerAlgorithm(unsigned index, std::atomic<int>* spinning,
                                 const void* owner)
    : index_(index), spinning_(spinning), owner_(owner) {
  tls_algorithm = this;
#if SPINDLE_TSAN
  tls_main_tsan_fiber = __tsan_get_current_fiber();  // made on the thread's main context
#endif
}

WorkerAlgorithm::~WorkerAlgorithm() {
  if (tls_algorithm == this) tls_algorithm = nullptr;
}

// Boost's dispatcher returns to the main context when the scheduler stops without asking
// pick_next, and the main context then destroys it: TSan is told of that switch here, in a
// function it does not watch (its exit would be counted on the other fiber).
SPINDLE_SWITCHES_FIBERS TaskFiberProperties::~TaskFiberProperties() {
#if SPINDLE_TSAN
  if (!owns_tsan_fiber) return;
  if (__tsan_get_current_fiber() == tsan_fiber) {
    __tsan_switch_to_fiber(tls_main_tsan_fiber, 0);
    return;  // the thread is ending
  }
  keep_tsan_fiber(tsan_fiber);
#endif
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
SPINDLE_SWITCHES_FIBERS boost::fibers::context* WorkerAlgorithm::pick_next() noexcept {
  boost::fibers::context* next = choose_next();
#if SPINDLE_TSAN
  // Null only for the dispatcher, which then waits in suspend_until: no switch.
  if (next) __tsan_switch_to_fiber(tsan_fiber_of(next, properties(next)), 0);
#endif
  return next;
}

boost::fibers::context* WorkerAlgorithm::choose_next() noexcept {
#if SPINDLE_TSAN
  // Wake-ups from other threads come through Boost's remote queue, which TSan does not see;
  // notify() released what the waking thread did before.
  __tsan_acquire(this);
#endif
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
// One worker at a time spins: more would take cores from the threads that submit work and
// wait for it, which matters most when there are no more cores than workers. A runner that
// polls for tasks holding its CPU (try_spin) answers sooner, so it takes the spin from an
// idle worker, which then sleeps.
void WorkerAlgorithm::suspend_until(std::chrono::steady_clock::time_point const& until) noexcept {
  auto notified = [this] { return notified_.exchange(false, std::memory_order_acquire); };
  // The spin is marked with this worker's index, so that one taken by a poller and then
  // claimed by another idle worker is not taken for this one's.
  const int me = kIdleWorker + static_cast<int>(index_);
  int free = nobody;
  if (spinning_ && spinning_->compare_exchange_strong(free, me, std::memory_order_acquire)) {
    bool woken = false;
    spin_briefly(
        [&] {
          woken = notified();
          return woken || spinning_->load(std::memory_order_relaxed) != me;
        },
        until);
    int mine = me;  // unless a poller took it
    spinning_->compare_exchange_strong(mine, nobody, std::memory_order_release);
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
#if SPINDLE_TSAN
  __tsan_release(this);
#endif
  notified_.store(true, std::memory_order_release);
  std::lock_guard lock(mutex_);
  wake_.notify_all();
}

}  // namespace spindle::detail
