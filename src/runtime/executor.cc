// Worker threads, their runner fibers, pooled fiber stacks and the stack overflow report.
#include "runtime/executor.hpp"

#include <hwloc.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/fiber/all.hpp>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "fibers/worker_algorithm.hpp"
#include "runtime/scheduler.hpp"
#include "topology/hwloc_handles.hpp"

namespace spindle::detail {
namespace {

// Read-only after load, so workers share it. Never destroyed: it is first loaded on a worker,
// after the runtime that started it, so a static would be destroyed first at exit, under a
// worker of a static Runtime still starting up (a crash seen in actors_benchmark).
const TopologyHandle& shared_topology() {
  static const TopologyHandle* topology = new TopologyHandle(load_topology());
  return *topology;
}

void pin_thread(const std::vector<unsigned>& pus) {
  hwloc_topology_t topology = nullptr;
  try {
    topology = shared_topology().get();
  } catch (const Error& error) {  // a worker thread must not throw: it runs unpinned instead
    std::cerr << "spindle: could not pin a worker: " << error.what() << '\n';
    return;
  }
  BitmapHandle set = make_bitmap();
  for (unsigned pu : pus) hwloc_bitmap_set(set.get(), pu);
  hwloc_bitmap_singlify(set.get());
  if (hwloc_set_cpubind(topology, set.get(), HWLOC_CPUBIND_THREAD) != 0) {
    std::cerr << "spindle: could not pin a worker to PUs " << format_index_list(pus)
              << "; it runs unpinned\n";
  }
}

std::size_t page_bytes() {
  static const auto bytes = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return bytes;
}

std::size_t round_to_pages(std::size_t bytes) {
  return (bytes + page_bytes() - 1) / page_bytes() * page_bytes();
}

// Reserves `usable` bytes and a guard page below them. MAP_NORESERVE: only touched pages
// count against memory, so deep stacks cost nothing until used.
void* map_stack(std::size_t usable) {
  void* base = mmap(nullptr, usable + page_bytes(), PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) throw std::bad_alloc();
  if (mprotect(base, page_bytes(), PROT_NONE) != 0) {  // the guard: overflowing faults
    munmap(base, usable + page_bytes());
    throw std::bad_alloc();  // most often vm.max_map_count: each stack is two mappings
  }
  return base;
}

// A stack's slot: its lowest page (a guard, or the canary's) and then `usable` bytes.
boost::context::stack_context stack_at(void* base, std::size_t usable, bool guarded) {
  boost::context::stack_context stack;
  stack.size = usable;
  stack.sp = static_cast<char*>(base) + page_bytes() + usable;
  FiberStack noted{static_cast<char*>(stack.sp), usable, guarded ? page_bytes() : 0, nullptr};
  if (!guarded) {
    auto* canary = reinterpret_cast<std::uint64_t*>(static_cast<char*>(base) + page_bytes()) - 1;
    *canary = kStackCanary;  // just below the usable bytes: the first word an overflow writes
    noted.canary = canary;
  }
  note_new_fiber_stack(noted);
  return stack;
}

// Stacks with a guard page take two memory mappings each; the kernel allows a process
// vm.max_map_count of them (65530 by default). A pool keeps to a share of that, then carves
// stacks from slabs of one mapping each, with a canary instead of a guard.
std::size_t guarded_stack_budget() {
  static const std::size_t budget = [] {
    std::size_t max_map_count = 65530;
    if (FILE* file = std::fopen("/proc/sys/vm/max_map_count", "r")) {
      unsigned long value = 0;
      if (std::fscanf(file, "%lu", &value) == 1) max_map_count = value;
      std::fclose(file);
    }
    constexpr std::size_t kLeftForOthers = 8192;  // libraries, the heap, threads' stacks
    return max_map_count > kLeftForOthers ? (max_map_count - kLeftForOthers) / 2 : 0;
  }();
  return budget;
}

std::atomic<std::size_t> guarded_stacks{0};  // in the whole process

// ---- the stack overflow report --------------------------------------------------------

struct sigaction previous_segv_action;

// Writes with write(2) only: this runs in a signal handler.
void write_text(const char* text) {
  std::size_t length = std::strlen(text);
  while (length > 0) {
    ssize_t written = write(STDERR_FILENO, text, length);
    if (written <= 0) return;
    text += written;
    length -= static_cast<std::size_t>(written);
  }
}

void write_number(std::size_t value) {
  char digits[24];
  char* end = digits + sizeof digits - 1;
  *end = '\0';
  char* at = end;
  do {
    *--at = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0);
  write_text(at);
}

// A fault in the guard page, or just below it (a large frame can step over one page), of the
// running fiber's stack is an overflow.
bool is_overflow(const FiberStack& stack, const char* address) {
  if (!stack.top || stack.guard_bytes == 0) return false;
  const char* bottom = stack.top - stack.usable_bytes;
  constexpr std::size_t kBelowGuard = 1 << 20;
  return address < bottom && address + stack.guard_bytes + kBelowGuard >= bottom;
}

}  // namespace

void report_stack_overflow(const FiberStack& stack) noexcept {
  write_text("spindle: ");
  if (const TaskRecord* task = current_task()) {
    write_text(task->is_actor_call() ? "a call of actor '" : "task '");
    write_text(task->spec->name.c_str());
    write_text("' (#");
    write_number(task->id);
    write_text(")");
  } else {
    write_text("a worker fiber");
  }
  write_text(" overflowed its stack of ");
  write_number(stack.usable_bytes);
  write_text(
      " bytes; ask for more with .options({.stack_bytes = ...}) or "
      "RuntimeOptions::stack_bytes. Aborting.\n");
  abort();
}

namespace {

void on_segv(int signal, siginfo_t* info, void* context) {
  const FiberStack& stack = active_fiber_stack();
  if (is_overflow(stack, static_cast<const char*>(info->si_addr))) report_stack_overflow(stack);
  // Not ours: whoever handled SIGSEGV before spindle does, or the default action.
  if (previous_segv_action.sa_flags & SA_SIGINFO) {
    previous_segv_action.sa_sigaction(signal, info, context);
  } else if (previous_segv_action.sa_handler != SIG_DFL &&
             previous_segv_action.sa_handler != SIG_IGN) {
    previous_segv_action.sa_handler(signal);
  } else {
    sigaction(SIGSEGV, &previous_segv_action, nullptr);  // the fault repeats, unhandled
  }
}

void install_overflow_report() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_sigaction = on_segv;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &previous_segv_action);
  });
}

// The handler needs a stack of its own: the faulting one has none left.
class AlternateSignalStack {
 public:
  AlternateSignalStack() : bytes_(std::max<std::size_t>(64 * 1024, SIGSTKSZ)) {
    memory_ = std::make_unique<char[]>(bytes_);
    stack_t stack{};
    stack.ss_sp = memory_.get();
    stack.ss_size = bytes_;
    installed_ = sigaltstack(&stack, nullptr) == 0;
  }
  ~AlternateSignalStack() {
    if (!installed_) return;
    stack_t disable{};
    disable.ss_flags = SS_DISABLE;
    sigaltstack(&disable, nullptr);
  }
  AlternateSignalStack(const AlternateSignalStack&) = delete;
  AlternateSignalStack& operator=(const AlternateSignalStack&) = delete;

 private:
  std::size_t bytes_;
  std::unique_ptr<char[]> memory_;
  bool installed_ = false;
};

}  // namespace

// ---- stacks -----------------------------------------------------------------------------

StackPool::StackPool(std::size_t stack_bytes)
    : usable_bytes_(round_to_pages(stack_bytes)), page_bytes_(page_bytes()) {}

StackPool::~StackPool() {
  for (void* base : free_) {
    if (!in_slab(base)) {
      munmap(base, usable_bytes_ + page_bytes_);
      guarded_stacks.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  for (char* slab : slabs_) munmap(slab, kSlabStacks * (usable_bytes_ + page_bytes_));
}

bool StackPool::in_slab(const void* base) const {
  const std::size_t slab_bytes = kSlabStacks * (usable_bytes_ + page_bytes_);
  return std::ranges::any_of(slabs_, [&](const char* slab) {
    return base >= slab && static_cast<const char*>(base) < slab + slab_bytes;
  });
}

boost::context::stack_context StackPool::allocate() {
  void* base = nullptr;
  {
    MutexLock lock(mutex_);
    if (!free_.empty()) {
      base = free_.back();
      free_.pop_back();
      return stack_at(base, usable_bytes_, !in_slab(base));
    }
  }
  if (guarded_stacks.fetch_add(1, std::memory_order_relaxed) < guarded_stack_budget()) {
    try {
      return stack_at(map_stack(usable_bytes_), usable_bytes_, true);
    } catch (const std::bad_alloc&) {  // the budget was too generous: slabs from now on
    }
  }
  guarded_stacks.fetch_sub(1, std::memory_order_relaxed);
  MutexLock lock(mutex_);
  return stack_at(carve_slab_stack_locked(), usable_bytes_, false);
}

void* StackPool::carve_slab_stack_locked() {
  const std::size_t slot = usable_bytes_ + page_bytes_;
  if (slabs_.empty() || slab_used_ == kSlabStacks) {
    void* slab = mmap(nullptr, kSlabStacks * slot, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (slab == MAP_FAILED) throw std::bad_alloc();
    if (slabs_.empty()) {
      std::cerr << "spindle: more fibers than the kernel's map count allows guarded stacks "
                   "for (vm.max_map_count); further stacks have a canary instead of a guard "
                   "page, so an overflow is found when the task next suspends\n";
    }
    slabs_.push_back(static_cast<char*>(slab));
    slab_used_ = 0;
  }
  return slabs_.back() + slot * slab_used_++;
}

void StackPool::deallocate(boost::context::stack_context& stack) noexcept {
  constexpr std::size_t kMostKept = 16384;
  void* base = static_cast<char*>(stack.sp) - usable_bytes_ - page_bytes_;
  {
    MutexLock lock(mutex_);
    // Slab stacks are never unmapped alone: that would split the slab's mapping.
    if (free_.size() < kMostKept || in_slab(base)) {
      free_.push_back(base);
      return;
    }
  }
  munmap(base, usable_bytes_ + page_bytes_);
  guarded_stacks.fetch_sub(1, std::memory_order_relaxed);
}

boost::context::stack_context GuardedStack::allocate() {
  std::size_t usable = round_to_pages(bytes);
  return stack_at(map_stack(usable), usable, true);
}

void GuardedStack::deallocate(boost::context::stack_context& stack) noexcept {
  munmap(static_cast<char*>(stack.sp) - stack.size - page_bytes(), stack.size + page_bytes());
}

// ---- workers ----------------------------------------------------------------------------

// What one worker's fibers share; touched only by that worker's thread.
struct Executor::Worker {
  unsigned index = 0;
  std::size_t live = 0;  // fibers started and not yet ended
  bool stopped = false;  // the scheduler said there will be no more work
  boost::fibers::mutex mutex;
  boost::fibers::condition_variable all_ended;
};

Executor::Executor(Scheduler& scheduler, const Topology& topology, unsigned workers, bool pin,
                   std::size_t stack_bytes)
    : scheduler_(scheduler), stacks_(stack_bytes) {
  install_overflow_report();
  for (unsigned index = 0; index < workers; ++index) {
    std::vector<unsigned> pus;
    if (pin && !topology.cores.empty()) pus = topology.cores[index % topology.cores.size()].pus;
    threads_.emplace_back([this, index, pus = std::move(pus)] { run_worker(index, pus); });
  }
}

Executor::~Executor() { join(); }

void Executor::join() {
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

void Executor::run_worker(unsigned index, std::vector<unsigned> pus) {
  if (!pus.empty()) pin_thread(pus);
  AlternateSignalStack signal_stack;
  boost::fibers::use_scheduling_algorithm<WorkerAlgorithm>(index, &spinning_, &scheduler_);
  Worker worker;
  worker.index = index;
  if (!start_runner(worker, false)) std::abort();  // a worker that cannot run anything
  std::unique_lock lock(worker.mutex);
  worker.all_ended.wait(lock, [&] { return worker.live == 0; });
}

bool Executor::start_runner(Worker& worker, bool spare) noexcept {
  WorkerAlgorithm& algorithm = *worker_algorithm();
  if (spare) algorithm.park_next();
  try {
    boost::fibers::fiber(std::allocator_arg, PooledStack{&stacks_}, [this, &worker] {
      run_runner(worker);
    }).detach();
  } catch (const std::exception& error) {
    algorithm.cancel_park();
    static std::once_flag said;
    std::call_once(said, [&] {
      std::cerr << "spindle: no stack for another fiber (" << error.what()
                << "): a blocked task holds its worker until it resumes.\n";
    });
    return false;
  }
  ++worker.live;
  return true;
}

// The first runner claims the role; a spare gets it from pick_next when the runner blocks.
// A fiber that lost the role finishes the task it holds, then ends.
void Executor::run_runner(Worker& worker) {
  WorkerAlgorithm& algorithm = *worker_algorithm();
  boost::fibers::context* self = boost::fibers::context::active();
  if (!algorithm.runner() && !worker.stopped) algorithm.set_runner(self);
  while (algorithm.runner() == self) {
    if (!algorithm.has_spare()) start_runner(worker, true);
    std::optional<Admitted> admitted = scheduler_.next_task();
    if (!admitted) {
      worker.stopped = true;
      algorithm.set_runner(nullptr);
      algorithm.release_spare();
      break;
    }
    run_admitted(worker, std::move(*admitted));
  }
  fiber_ended(worker);
}

// On the runner, unless the task asks for a bigger stack than the pool's: then on a fiber of
// its own, started now.
void Executor::run_admitted(Worker& worker, Admitted admitted) {
  std::size_t stack_bytes = admitted.task ? admitted.task->spec->stack_bytes
                                          : admitted.actor->spec->creation->stack_bytes;
  if (stack_bytes <= stacks_.usable_bytes()) {
    scheduler_.execute(std::move(admitted), worker.index);
    return;
  }
  auto held = std::make_shared<Admitted>(std::move(admitted));  // kept if no stack is had
  try {
    boost::fibers::fiber(std::allocator_arg, GuardedStack{stack_bytes}, [this, &worker, held] {
      scheduler_.execute(std::move(*held), worker.index);
      fiber_ended(worker);
    }).detach();
  } catch (const std::bad_alloc&) {
    scheduler_.execute_failed(std::move(*held), "no stack of " + std::to_string(stack_bytes) +
                                                    " bytes could be mapped for it");
    return;
  }
  ++worker.live;
  yield_fiber();  // run it now: admitted work starts before more is taken
}

void Executor::fiber_ended(Worker& worker) {
  std::lock_guard lock(worker.mutex);
  if (--worker.live == 0) worker.all_ended.notify_all();
}

}  // namespace spindle::detail
