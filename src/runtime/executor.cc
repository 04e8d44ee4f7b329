// Worker threads, their Boost.Fiber algorithm, and pooled fiber stacks.
#include "runtime/executor.hpp"

#include <hwloc.h>
#include <unistd.h>

#include <boost/fiber/all.hpp>
#include <iostream>

#include "runtime/scheduler.hpp"
#include "runtime/worker_algorithm.hpp"
#include "topology/hwloc_handles.hpp"

namespace spindle::detail {
namespace {

const TopologyHandle& shared_topology() {
  static const TopologyHandle topology = load_topology();  // read-only after load: shareable
  return topology;
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

}  // namespace

StackPool::StackPool(std::size_t stack_bytes)
    : page_bytes_(static_cast<std::size_t>(sysconf(_SC_PAGESIZE))) {
  usable_bytes_ = (stack_bytes + page_bytes_ - 1) / page_bytes_ * page_bytes_;
}

StackPool::~StackPool() {
  for (void* base : free_) munmap(base, usable_bytes_ + page_bytes_);
}

boost::context::stack_context StackPool::allocate() {
  void* base = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (!free_.empty()) {
      base = free_.back();
      free_.pop_back();
    }
  }
  if (base == nullptr) {
    base = mmap(nullptr, usable_bytes_ + page_bytes_, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) throw std::bad_alloc();
    mprotect(base, page_bytes_, PROT_NONE);  // the guard: overflowing the stack faults
  }
  boost::context::stack_context stack;
  stack.size = usable_bytes_;
  stack.sp = static_cast<char*>(base) + page_bytes_ + usable_bytes_;
  return stack;
}

void StackPool::deallocate(boost::context::stack_context& stack) noexcept {
  constexpr std::size_t kMostKept = 16384;
  void* base = static_cast<char*>(stack.sp) - usable_bytes_ - page_bytes_;
  {
    std::lock_guard lock(mutex_);
    if (free_.size() < kMostKept) {
      free_.push_back(base);
      return;
    }
  }
  munmap(base, usable_bytes_ + page_bytes_);
}

Executor::Executor(Scheduler& scheduler, const Topology& topology, unsigned workers, bool pin,
                   std::size_t stack_bytes)
    : scheduler_(scheduler), stacks_(stack_bytes) {
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
  boost::fibers::use_scheduling_algorithm<WorkerAlgorithm>();
  // Fibers of this worker only ever run on this thread, one at a time.
  std::size_t live = 0;
  boost::fibers::mutex mutex;
  boost::fibers::condition_variable all_done;
  while (std::optional<Admitted> admitted = scheduler_.next_task()) {
    ++live;
    boost::fibers::fiber(std::allocator_arg, PooledStack{&stacks_},
                         [&, admitted = std::move(*admitted)]() mutable {
                           // pick_next makes this the current task whenever the fiber resumes
                           auto& properties = boost::this_fiber::properties<TaskFiberProperties>();
                           properties.task = admitted.task.get();
                           scheduler_.execute(std::move(admitted), index);
                           properties.task = nullptr;
                           std::lock_guard lock(mutex);
                           if (--live == 0) all_done.notify_all();
                         })
        .detach();
    boost::this_fiber::yield();  // run it now: admitted work starts before more is taken
  }
  std::unique_lock lock(mutex);
  all_done.wait(lock, [&] { return live == 0; });
}

}  // namespace spindle::detail
