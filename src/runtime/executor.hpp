// The executor: worker threads, each running Boost.Fiber with spindle's own algorithm.
//
// A worker runs admitted tasks one after another on its runner fiber; a task that blocks
// keeps that fiber, and a spare fiber becomes the runner (worker_algorithm.hpp). A fiber stays
// on the worker that started it (no migration), so thread-local state such as the current
// CUDA device stays right across suspensions. Idle workers sleep on a condition variable: an
// idle runtime uses no CPU.
//
// Stacks are reserved, not committed: the kernel gives a page when it is first touched, so a
// deep stack costs address space only until it is used. Below each stack lies a guard page;
// a task that runs into it is reported on stderr by name and stack size before the process
// aborts.
#pragma once

#include <atomic>
#include <boost/context/stack_context.hpp>
#include <cstddef>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "spindle/detail/thread_annotations.hpp"
#include "spindle/topology.hpp"

namespace spindle::detail {

class Scheduler;
struct Admitted;

/// Fiber stacks of one size with a guard page, kept for reuse: a fiber costs no mmap once
/// warm.
class StackPool {
 public:
  explicit StackPool(std::size_t stack_bytes);
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  boost::context::stack_context allocate();
  void deallocate(boost::context::stack_context& stack) noexcept;
  [[nodiscard]] std::size_t usable_bytes() const noexcept { return usable_bytes_; }

 private:
  static constexpr std::size_t kSlabStacks = 64;
  [[nodiscard]] bool in_slab(const void* base) const SPINDLE_REQUIRES(mutex_);
  void* carve_slab_stack_locked() SPINDLE_REQUIRES(mutex_);

  std::size_t usable_bytes_;
  std::size_t page_bytes_;
  Mutex mutex_;
  std::vector<void*> free_ SPINDLE_GUARDED_BY(mutex_);
  std::vector<char*> slabs_ SPINDLE_GUARDED_BY(mutex_);   // stacks past the map count's budget
  std::size_t slab_used_ SPINDLE_GUARDED_BY(mutex_) = 0;  // stacks carved from the last slab
};

/// The StackAllocator concept of Boost.Context, over a shared StackPool.
struct PooledStack {
  StackPool* pool;
  boost::context::stack_context allocate() { return pool->allocate(); }
  void deallocate(boost::context::stack_context& stack) noexcept { pool->deallocate(stack); }
};

/// A stack of its own for one fiber (a task asking for more than the pool's size).
struct GuardedStack {
  std::size_t bytes;
  boost::context::stack_context allocate();
  void deallocate(boost::context::stack_context& stack) noexcept;
};

class Executor {
 public:
  /// Starts `workers` threads; with `pin`, worker i is bound to core i (mod the cores).
  /// Tasks run on stacks of `stack_bytes` unless they ask for more.
  Executor(Scheduler& scheduler, const Topology& topology, unsigned workers, bool pin,
           std::size_t stack_bytes);
  /// Joins the workers: call after Scheduler::stop.
  void join();
  ~Executor();

  [[nodiscard]] unsigned size() const { return static_cast<unsigned>(threads_.size()); }

 private:
  struct Worker;
  void run_worker(unsigned index, std::vector<unsigned> pus);
  void run_runner(Worker& worker);
  /// Starts a runner fiber; a spare is parked until the runner blocks. False if no stack
  /// could be had (said once on stderr).
  bool start_runner(Worker& worker, bool spare) noexcept;
  void run_admitted(Worker& worker, Admitted admitted);
  static void fiber_ended(Worker& worker);

  Scheduler& scheduler_;
  StackPool stacks_;
  std::atomic<int> spinning_{0};  // which worker spins (see WorkerAlgorithm)
  std::vector<std::thread> threads_;
};

}  // namespace spindle::detail
