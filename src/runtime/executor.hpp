// The executor: worker threads, each running Boost.Fiber with spindle's own algorithm.
//
// A worker's main fiber asks the scheduler for admitted tasks and starts a fiber for each;
// a fiber stays on the worker that started it (no migration), so thread-local state such as
// the current CUDA device stays right across suspensions. Idle workers sleep on a condition
// variable: an idle runtime uses no CPU.
#pragma once

#include <sys/mman.h>

#include <boost/context/stack_context.hpp>
#include <cstddef>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "spindle/topology.hpp"

namespace spindle::detail {

class Scheduler;

/// Fiber stacks with a guard page, kept for reuse: a fiber costs no mmap once warm.
class StackPool {
 public:
  explicit StackPool(std::size_t stack_bytes);
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  boost::context::stack_context allocate();
  void deallocate(boost::context::stack_context& stack) noexcept;

 private:
  std::size_t usable_bytes_;
  std::size_t page_bytes_;
  std::mutex mutex_;
  std::vector<void*> free_;
};

/// The StackAllocator concept of Boost.Context, over a shared StackPool.
struct PooledStack {
  StackPool* pool;
  boost::context::stack_context allocate() { return pool->allocate(); }
  void deallocate(boost::context::stack_context& stack) noexcept { pool->deallocate(stack); }
};

class Executor {
 public:
  /// Starts `workers` threads; with `pin`, worker i is bound to core i (mod the cores).
  Executor(Scheduler& scheduler, const Topology& topology, unsigned workers, bool pin,
           std::size_t stack_bytes);
  /// Joins the workers: call after Scheduler::stop.
  void join();
  ~Executor();

  [[nodiscard]] unsigned size() const { return static_cast<unsigned>(threads_.size()); }

 private:
  void run_worker(unsigned index, std::vector<unsigned> pus);

  Scheduler& scheduler_;
  StackPool stacks_;
  std::vector<std::thread> threads_;
};

}  // namespace spindle::detail
