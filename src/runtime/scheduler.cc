// The scheduler: see scheduler.hpp.
#include "runtime/scheduler.hpp"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "device/device_runtime.hpp"
#include "fibers/event.hpp"
#include "fibers/spin.hpp"
#include "fibers/worker_algorithm.hpp"
#include "runtime/assert.hpp"

namespace spindle::detail {
namespace {

ResourceSet without_cpu(ResourceSet demand) {
  demand.set(ResourceSet::kCpu, Quantity());
  return demand;
}

}  // namespace

// Every context the runtime sets is a task's.
TaskRecord* current_task() noexcept { return static_cast<TaskRecord*>(current_context()); }
void set_current_task(TaskRecord* task) noexcept { set_current_context(task); }

void TaskRecord::on_complete() noexcept {
  if (pending_dependencies.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (is_actor_call()) {
    actor->call_resolved();
  } else {
    scheduler().dependencies_resolved(*this);
  }
}

std::string describe_task(const TaskRecord& task) {
  std::string id = std::to_string(task.id);
  if (task.is_actor_call()) return "call #" + id + " of actor '" + task.spec->name + "'";
  if (task.creates_actor) return "creation of actor '" + task.spec->name + "' (#" + id + ")";
  return "task '" + task.spec->name + "' (#" + id + ")";
}

std::string what_of(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

std::exception_ptr cancelled_error(const TaskRecord& task, const std::string& why) {
  return std::make_exception_ptr(CancelledError(describe_task(task) + " was cancelled: " + why));
}

std::exception_ptr task_error(const TaskRecord& task, std::exception_ptr cause,
                              const std::string& context) {
  std::string message = describe_task(task) + " failed" + context + ": " + what_of(cause);
  return with_nested(TaskError(task.spec->name, message), cause);
}

// A task of this runtime that waits on another runtime's object is told of it through a
// ForeignLink, which owns the task as the object's waiter list would (so a task nobody holds
// a ref to still runs) but reaches this scheduler only while it lives: stop() marks it gone,
// waits for callbacks already inside, and fails the tasks still waiting, which it lists
// weakly. (The other runtime may complete the object long after this one is destroyed.)
struct ForeignWaits {
  Mutex mutex;
  bool alive SPINDLE_GUARDED_BY(mutex) = true;
  std::size_t inside SPINDLE_GUARDED_BY(mutex) = 0;  // callbacks running into the scheduler
  std::vector<std::weak_ptr<TaskRecord>> tasks SPINDLE_GUARDED_BY(mutex);
  std::size_t sweep_at SPINDLE_GUARDED_BY(mutex) = 64;
};

namespace {

class ForeignLink final : public Waiter {
 public:
  ForeignLink(std::shared_ptr<TaskRecord> task, std::shared_ptr<ForeignWaits> waits)
      : task_(std::move(task)), waits_(std::move(waits)) {}

  void on_complete() noexcept override {
    {
      MutexLock lock(waits_->mutex);
      if (!waits_->alive) return;
      ++waits_->inside;
    }
    task_->on_complete();
    MutexLock lock(waits_->mutex);
    --waits_->inside;
  }

 private:
  const std::shared_ptr<TaskRecord> task_;  // released with the link, by the object
  const std::shared_ptr<ForeignWaits> waits_;
};

}  // namespace

Scheduler::Scheduler(ResourceSet totals, std::size_t max_timeline_events,
                     std::optional<std::size_t> buffer_memory_limit)
    : pool_(std::move(totals)),
      max_timeline_events_(max_timeline_events),
      memory_budget_(buffer_memory_limit ? std::make_shared<MemoryBudget>(*buffer_memory_limit)
                                         : nullptr) {
  foreign_ = std::make_shared<ForeignWaits>();
  ResourceSet unit = ResourceSet().set(ResourceSet::kCpu, Quantity::whole(1));
  if (pool_.totals().contains(unit)) {
    unit_request_ = pool_.prepare(unit);
    requests_.push_back(unit_request_);  // request_for hands out this one for {cpu: 1}
  }
}

void Scheduler::set_workers(unsigned workers) {
  workers_ = workers;
  lanes_ = std::make_unique<Lane[]>(workers);
  // Reserved now: retire must not allocate, after a task's result is published.
  for (unsigned i = 0; i < workers; ++i) lanes_[i].retired.reserve(kRetiredBatch);
}

std::shared_ptr<const ResourceRequest> Scheduler::request_for(const ResourceSet& demand) {
  MutexLock lock(mutex_);
  for (const auto& request : requests_) {
    if (request->demand() == demand) return request;
  }
  requests_.push_back(pool_.prepare(demand));
  return requests_.back();
}

void Scheduler::submit(std::shared_ptr<TaskRecord> task) {
  if (!task->spec->infeasible.empty()) throw InfeasibleError(task->spec->infeasible);
  std::vector<ObjectStateBase*> dependencies;
  task->dependencies(dependencies);
  task->id = next_id();
  task->lane = lane_eligible(*task);
  if (stopping()) {
    task->phase = TaskRecord::Phase::finished;
    cancelled_.fetch_add(1, std::memory_order_relaxed);
    task->fail_unrun(cancelled_error(*task, "the runtime is shutting down"));
    return;
  }
  if (dependencies.empty() && task->lane) {  // the common case: straight to a lane
    task->phase.store(TaskRecord::Phase::queued, std::memory_order_relaxed);
    push_lane(std::move(task));
    return;
  }
  // Dependencies another runtime (or no task) completes reach it through one link, made
  // before anything is registered: a runtime stopping meanwhile refuses it.
  auto foreign = [this](const ObjectStateBase& dependency) {
    return dependency.look_at_producer(
        [this](const TaskRecord& producer) { return &producer.scheduler() != this; }, true);
  };
  std::shared_ptr<Waiter> link;
  for (ObjectStateBase* dependency : dependencies) {
    if (foreign(*dependency) && !dependency->done()) {
      link = foreign_link(task);
      if (!link) {
        task->phase = TaskRecord::Phase::finished;
        cancelled_.fetch_add(1, std::memory_order_relaxed);
        task->fail_unrun(cancelled_error(*task, "the runtime is shutting down"));
        return;
      }
      break;
    }
  }
  waiting_.fetch_add(1, std::memory_order_relaxed);
  task->pending_dependencies.store(static_cast<std::int32_t>(dependencies.size()) + 1);
  for (ObjectStateBase* dependency : dependencies) {
    std::shared_ptr<Waiter> waiter = task;
    if (link && foreign(*dependency)) waiter = link;  // else it was done when looked at
    if (!dependency->add_waiter(std::move(waiter))) task->pending_dependencies.fetch_sub(1);
  }
  task->on_complete();  // the +1 above: all are registered
}

std::shared_ptr<Waiter> Scheduler::foreign_link(const std::shared_ptr<TaskRecord>& task) {
  std::vector<std::shared_ptr<TaskRecord>> swept;  // released after the lock
  MutexLock lock(foreign_->mutex);
  if (!foreign_->alive) return nullptr;
  std::vector<std::weak_ptr<TaskRecord>>& tasks = foreign_->tasks;
  if (tasks.size() >= foreign_->sweep_at) {  // drop those no longer waiting, now and then
    std::erase_if(tasks, [&](const std::weak_ptr<TaskRecord>& weak) {
      std::shared_ptr<TaskRecord> listed = weak.lock();
      if (!listed) return true;
      const bool gone = listed->phase.load(std::memory_order_acquire) != TaskRecord::Phase::waiting;
      swept.push_back(std::move(listed));
      return gone;
    });
    foreign_->sweep_at = std::max<std::size_t>(64, 2 * tasks.size());
  }
  tasks.push_back(task);
  return std::make_shared<ForeignLink>(task, foreign_);
}

void Scheduler::fail_foreign_waits() {
  std::vector<std::weak_ptr<TaskRecord>> tasks;
  {
    MutexLock lock(foreign_->mutex);
    foreign_->alive = false;
    tasks.swap(foreign_->tasks);
  }
  for (;;) {  // a callback inside finishes in microseconds; none starts any more
    {
      MutexLock lock(foreign_->mutex);
      if (foreign_->inside == 0) break;
    }
    std::this_thread::yield();
  }
  for (const auto& weak : tasks) {
    std::shared_ptr<TaskRecord> task = weak.lock();
    if (!task) continue;
    {
      MutexLock lock(mutex_);
      auto waiting = TaskRecord::Phase::waiting;
      if (!task->phase.compare_exchange_strong(waiting, TaskRecord::Phase::finished)) continue;
      waiting_.fetch_sub(1, std::memory_order_relaxed);
      cancelled_.fetch_add(1, std::memory_order_relaxed);
    }
    // A dependency of this runtime may still complete and read the arguments: they stay
    // until it does (dependencies_resolved drops them) or the record goes.
    task->fail_unrun(cancelled_error(*task, "the runtime shut down before it ran, while it "
                                            "waited for another runtime's object"),
                     false);
  }
}

void Scheduler::set_placement(placement::Policy policy, PerfModel& model) {
  model_ = &model;
  unsigned gpus = 0;
  {
    MutexLock lock(mutex_);
    gpus = static_cast<unsigned>(std::ceil(pool_.totals().gpu().to_double()));
  }
  placer_ = std::make_unique<Placer>(policy, model, workers_, gpus);
}

// A codelet's arguments are measured, and placement chooses its implementation, before it
// queues. Only the thread resolving the task writes what this sets; the spec itself is
// swapped under the lock (see dependencies_resolved), since cancel() and the deadlock report
// read a waiting task's spec.
void Scheduler::place(TaskRecord& task) {
  std::vector<DataInput> inputs;
  task.inputs(inputs);
  task.input_bytes = 0;
  for (const DataInput& input : inputs) task.input_bytes += input.bytes;
  if (!task.spec->gpu_variant || !placer_) return;
  task.placed_on = placer_->choose(task.spec->name, inputs, task.expected_seconds);
}

void Scheduler::unplace_locked(TaskRecord& task) {
  if (!task.placed_on) return;
  placer_->finished(task.spec->name, task.input_bytes, *task.placed_on, task.expected_seconds);
  task.placed_on.reset();
}

void Scheduler::dependencies_resolved(TaskRecord& task) {
  std::optional<ArgumentFailure> failure = task.failed_argument();
  if (!failure && task.lane && !stopping()) {
    auto waiting = TaskRecord::Phase::waiting;
    if (!task.phase.compare_exchange_strong(waiting, TaskRecord::Phase::queued)) {
      task.release_arguments();  // cancelled meanwhile; this was the last reader
      return;
    }
    waiting_.fetch_sub(1, std::memory_order_relaxed);
    push_lane(task.shared_from_this());
    return;
  }
  if (!failure && task.spec->codelet) place(task);
  std::exception_ptr error;
  {
    MutexLock lock(mutex_);
    if (task.phase != TaskRecord::Phase::waiting) {  // cancelled meanwhile
      unplace_locked(task);
      lock.unlock();
      task.release_arguments();  // this was the last reader
      return;
    }
    waiting_.fetch_sub(1, std::memory_order_relaxed);
    if (!stopping() && !failure) {
      // The spec it queues with asks for the resources of the chosen implementation.
      if (task.placed_on == DeviceKind::gpu) task.spec = task.spec->gpu_variant;
      enqueue_locked(task.shared_from_this());
      return;
    }
    unplace_locked(task);
    task.phase = TaskRecord::Phase::finished;
    if (stopping()) {
      cancelled_.fetch_add(1, std::memory_order_relaxed);
      error = cancelled_error(task, "the runtime shut down before it ran");
    } else {
      failed_.fetch_add(1, std::memory_order_relaxed);
      error = task_error(task, failure->cause,
                         " because its argument " + std::to_string(failure->index) + " failed");
    }
  }
  task.fail_unrun(error);  // finished under the lock: cancel() no longer touches it
}

void Scheduler::enqueue_locked(std::shared_ptr<TaskRecord> task) {
  task->phase = TaskRecord::Phase::queued;
  ++queued_;
  note_queued_locked();
  const auto& request = task->spec->request;
  auto shape =
      std::ranges::find_if(shapes_, [&](const ShapeQueue& q) { return q.request == request; });
  if (shape == shapes_.end()) {
    shapes_.push_back({request, {}});
    shape = shapes_.end() - 1;
  }
  shape->tasks.push_back(std::move(task));
  wake_worker_locked();
}

// Under the lock, which orders it with every change of a task outside the lanes; a lane
// task may be taken meanwhile, so its phase changes by compare-and-swap.
void Scheduler::cancel(TaskRecord& task) {
  TaskRecord::Phase phase;
  {
    MutexLock lock(mutex_);
    task.cancel_requested = true;
    phase = task.phase.load(std::memory_order_acquire);
    do {
      if (phase == TaskRecord::Phase::running || phase == TaskRecord::Phase::finished) return;
    } while (!task.phase.compare_exchange_weak(phase, TaskRecord::Phase::finished));
    if (phase == TaskRecord::Phase::waiting) {
      waiting_.fetch_sub(1, std::memory_order_relaxed);
    } else if (task.lane) {
      // Its lane entry is dropped when taken.
      lane_tasks_left_.fetch_add(1, std::memory_order_relaxed);
    } else {
      --queued_;  // its queue entry is dropped when it reaches the front
      note_queued_locked();
      unplace_locked(task);
    }
    cancelled_.fetch_add(1, std::memory_order_relaxed);
  }
  // A queued task's arguments are read by no one now; a waiting one's may still be, by the
  // completion of its last dependency, which drops them (dependencies_resolved).
  task.fail_unrun(cancelled_error(task, "cancel() was called before it ran"),
                  phase != TaskRecord::Phase::waiting);
}

Scheduler::ShapeQueue* Scheduler::best_admissible_locked() {
  if (!reacquire_.empty()) return nullptr;  // tasks taking their CPU back go first
  ShapeQueue* best = nullptr;
  for (ShapeQueue& shape : shapes_) {
    while (!shape.tasks.empty() && shape.tasks.front()->phase != TaskRecord::Phase::queued) {
      shape.tasks.pop_front();
    }
    if (shape.tasks.empty()) continue;
    if (best && best->tasks.front()->id < shape.tasks.front()->id) continue;
    if (pool_.can_acquire(*shape.request)) best = &shape;
  }
  return best;
}

void Scheduler::wake_worker_locked() {
  if (idle_workers_.empty() ||
      (actor_runs_.empty() && !best_admissible_locked() && !lane_work_admissible_locked())) {
    return;
  }
  // The latest to go idle may still be spinning; one on another core than the caller's can
  // start at once, where one sharing the caller's core would wait for it to yield.
  auto chosen = idle_workers_.end() - 1;
  const int here = sched_getcpu();
  for (auto it = idle_workers_.rbegin(); it != idle_workers_.rend(); ++it) {
    if (it->cpu != here) {
      chosen = std::prev(it.base());
      break;
    }
  }
  IdleWorker worker = *chosen;
  idle_workers_.erase(chosen);
  idle_count_.store(idle_workers_.size(), std::memory_order_relaxed);
  worker.algorithm->wake(worker.fiber);
}

// Lane tasks first, with no lock while the worker holds its credit; the locked path when
// other work waits (actors' runners, tasks of other demands, blocked tasks taking their CPU
// back) or none is left. A worker going idle gives its credit back, announces itself, and
// looks at the lanes once more (a submit raises a lane's size and then reads idle_count_, both
// sequentially consistent: one of the two sees the other), so a wake-up is never lost.
std::optional<Admitted> Scheduler::next_task() {
  WorkerAlgorithm* algorithm = worker_algorithm();
  const unsigned index = algorithm->index() % workers_;
  Lane& own = lanes_[index];
  for (;;) {
    if (queued_work_.load(std::memory_order_relaxed) == 0 && lanes_hold_tasks() &&
        (own.credit || acquire_credit(own))) {
      if (std::optional<Admitted> admitted = take_lane_task(own, index)) {
        wake_another_if_more();  // submits a poller took in did not wake anyone
        return admitted;
      }
    }
    if (own.credit) {
      if (std::optional<Admitted> admitted = poll_lanes(own, *algorithm)) return admitted;
    }
    own.retired.clear();
    MutexLock lock(mutex_);
    if (own.credit) release_credit_locked(own);  // for the work below, or for others
    if (!actor_runs_.empty()) {  // actors hold their resources already: they go first
      std::shared_ptr<ActorCore> actor = std::move(actor_runs_.front());
      actor_runs_.pop_front();
      note_queued_locked();
      ++running_;
      wake_worker_locked();
      return Admitted{nullptr, {}, std::move(actor)};
    }
    if (ShapeQueue* shape = best_admissible_locked()) {
      std::optional<Allocation> allocation = pool_.try_acquire(shape->request);
      std::shared_ptr<TaskRecord> task = std::move(shape->tasks.front());
      shape->tasks.pop_front();
      start_locked(*task);
      wake_worker_locked();
      return Admitted{std::move(task), std::move(*allocation), nullptr};
    }
    if (lane_work_admissible_locked()) {
      // Other work waits but does not fit: a lane task may go first, as a younger task that
      // fits goes before an older one that does not.
      const bool credit = acquire_credit_locked(own);  // admissible: a CPU is free
      lock.unlock();
      if (credit) {
        if (std::optional<Admitted> admitted = take_lane_task(own, index)) return admitted;
      }
      continue;
    }
    if (stopping() && actors_ == 0) {
      if (!lanes_hold_tasks()) return std::nullopt;
      lock.unlock();
      cancel_lanes();  // queued by a task that raced the stop
      continue;
    }
    // Suspended until a waker takes it off the list; a wake before the suspension is kept.
    boost::fibers::context* self = boost::fibers::context::active();
    idle_workers_.push_back({self, algorithm, sched_getcpu()});
    idle_count_.store(idle_workers_.size());
    if (lane_work_admissible_locked()) {  // a submit that did not see this worker idle
      idle_workers_.pop_back();
      idle_count_.store(idle_workers_.size());
      continue;
    }
    check_deadlock_locked();  // the lanes are clean now: entries left behind were dropped
    lock.unlock();
    self->suspend();
  }
}

// The next task often comes within microseconds (a caller's next submit), so one worker at a
// time keeps its credit and polls the lanes briefly before it gives the credit back and goes
// idle: the submit then wakes no one and takes no lock. It polls as long as nothing else
// waits for a CPU (queued_work_) and no other fiber of its own is ready. A submit that sees
// it polling wakes no worker; the poller, once it has taken a task, wakes one if more wait.
// Its count is lowered before its last look at the lanes, and a submit raises a lane's size
// before it reads the count, all sequentially consistent: one of the two sees the other.
// A poller on the core of a thread outside the workers that submits (your main) would take
// turns with it there while another core sleeps: it does not poll, and the submitter wakes a
// worker elsewhere, which then polls.
std::optional<Admitted> Scheduler::poll_lanes(Lane& own, WorkerAlgorithm& algorithm) {
  const int cpu = sched_getcpu();
  auto others_wait = [&] {
    return queued_work_.load(std::memory_order_relaxed) > 0 || stopping() ||
           algorithm.others_waiting() || outside_cpu_.load(std::memory_order_relaxed) == cpu;
  };
  if (others_wait() || !algorithm.try_spin()) return std::nullopt;
  poller_cpu_.store(cpu, std::memory_order_relaxed);
  lane_pollers_.fetch_add(1);
  own.retired.clear();  // a submit from now on finds this worker polling
  // Now and then the worker's dispatcher runs (the runner yields, keeping its role), so that
  // sleeping fibers whose time has come are made ready and end the poll.
  unsigned polls = 0;
  spin_briefly([&] {
    if (++polls % 64 == 0) yield_fiber();
    return lanes_hold_tasks() || others_wait();
  });
  lane_pollers_.fetch_sub(1);
  algorithm.stop_spinning();
  if (others_wait() || !lanes_hold_tasks()) return std::nullopt;
  std::optional<Admitted> admitted = take_lane_task(own, algorithm.index() % workers_);
  if (admitted) wake_another_if_more();
  return admitted;
}

void Scheduler::retire(Lane& own, std::shared_ptr<TaskRecord> task) {
  task->detach_result();  // a value nobody refers to is freed now, not with the batch
  // A fiber that is not the runner (a task that blocked, or one with a stack of its own) may
  // not pass by the lanes again for a long time: it frees the record now.
  if (worker_algorithm()->runner() != boost::fibers::context::active()) return;
  own.retired.push_back(std::move(task));
  if (own.retired.size() == kRetiredBatch) own.retired.clear();
}

void Scheduler::drop_finished(std::shared_ptr<TaskRecord> task) {
  WorkerAlgorithm* algorithm = worker_algorithm();
  if (algorithm && algorithm->owner() == this) retire(own_lane(), std::move(task));
}

void Scheduler::wake_another_if_more() {
  if (idle_count_.load(std::memory_order_relaxed) == 0 || !lanes_hold_tasks()) return;
  MutexLock lock(mutex_);
  wake_worker_locked();
}

bool Scheduler::lane_eligible(const TaskRecord& task) const noexcept {
  return unit_request_ && task.spec->request == unit_request_ && !task.actor && !task.spec->codelet;
}

void Scheduler::push_lane(std::shared_ptr<TaskRecord> task) {
  // A worker of this runtime keeps what it makes; other threads spread what they submit.
  WorkerAlgorithm* algorithm = worker_algorithm();
  const bool own = algorithm && algorithm->owner() == this;
  // Round robin per submitting thread: no locked instruction, no line another thread writes.
  thread_local unsigned next_lane = 0;
  const unsigned index = own ? algorithm->index() : next_lane++;
  int here = -1;  // a worker's submit never shares its core with the poller
  if (!own) {
    here = sched_getcpu();
    if (outside_cpu_.load(std::memory_order_relaxed) != here) {
      outside_cpu_.store(here, std::memory_order_relaxed);
    }
  }
  list_in_lane(lanes_[index % workers_], std::move(task), own);
  // A poller takes it, unless it shares this core (see poll_lanes).
  if (idle_count_.load() > 0 &&
      (lane_pollers_.load() == 0 || poller_cpu_.load(std::memory_order_relaxed) == here)) {
    MutexLock lock(mutex_);
    wake_worker_locked();
  }
}

void Scheduler::list_in_lane(Lane& lane, std::shared_ptr<TaskRecord> task, bool own) {
  TaskRecord* entry = task.get();
  entry->queued_self = std::move(task);
  const bool listed =
      own ? lane.tasks.enqueue(lane.own_producer, entry) : lane.tasks.enqueue(entry);
  if (!listed) {  // no memory for the queue's block
    task = std::move(entry->queued_self);
    throw std::bad_alloc();
  }
  // Raised once the entry can be taken, so that no worker spins on an entry not there yet;
  // a taker may lower it first, so it may read below zero for a moment.
  lane.size.fetch_add(1);
}

std::shared_ptr<TaskRecord> Scheduler::claim(Lane& lane, bool own, TaskRecord::Phase to) {
  // Null when none is left, being listed still, or taken by another worker.
  while (std::shared_ptr<TaskRecord> task = unlist(lane, own)) {
    auto queued = TaskRecord::Phase::queued;  // else cancelled, or run inline: dropped
    if (task->phase.compare_exchange_strong(queued, to)) return task;
    lane.dropped.fetch_add(1, std::memory_order_relaxed);
  }
  return nullptr;
}

std::shared_ptr<TaskRecord> Scheduler::unlist(Lane& lane, bool own) {
  TaskRecord* entry = nullptr;
  if (!(own ? lane.tasks.try_dequeue(lane.own_consumer, entry) : lane.tasks.try_dequeue(entry))) {
    return nullptr;
  }
  lane.size.fetch_sub(1, std::memory_order_relaxed);
  return std::move(entry->queued_self);
}

Lane::~Lane() {
  TaskRecord* entry = nullptr;
  while (tasks.try_dequeue(entry)) entry->queued_self.reset();
}

std::optional<Admitted> Scheduler::take_lane_task(Lane& own, unsigned worker) {
  std::shared_ptr<TaskRecord> task = take_from_lanes(worker);
  if (!task) return std::nullopt;
  Allocation allocation = std::move(*own.credit);
  own.credit.reset();
  set_idle_credit(own, false);  // the task holds it now
  ++task->attempts;
  return Admitted{std::move(task), std::move(allocation), nullptr};
}

std::shared_ptr<TaskRecord> Scheduler::take_from_lanes(unsigned worker) {
  if (stopping()) return nullptr;  // what is queued now is cancelled, not run
  for (unsigned k = 0; k < workers_; ++k) {
    Lane& lane = lanes_[(worker + k) % workers_];
    if (lane.size.load(std::memory_order_relaxed) <= 0) continue;
    if (std::shared_ptr<TaskRecord> task = claim(lane, k == 0, TaskRecord::Phase::running)) {
      return task;
    }
  }
  return nullptr;
}

bool Scheduler::acquire_credit(Lane& lane) {
  MutexLock lock(mutex_);
  return acquire_credit_locked(lane);
}

bool Scheduler::acquire_credit_locked(Lane& lane) {
  if (!reacquire_.empty()) return false;  // tasks taking their CPU back go first
  std::optional<Allocation> credit = pool_.try_acquire(unit_request_);
  if (!credit) return false;
  lane.credit = std::move(credit);
  set_idle_credit(lane, true);
  ++running_;
  return true;
}

void Scheduler::release_credit_locked(Lane& lane) {
  SPINDLE_ASSERT(lane.credit && running_ > 0);
  pool_.release(*lane.credit);
  lane.credit.reset();
  set_idle_credit(lane, false);
  --running_;
  serve_reacquire_locked();
  wake_worker_locked();
  check_deadlock_locked();
}

bool Scheduler::lane_work_admissible_locked() const {
  return !stopping() && reacquire_.empty() && lanes_hold_tasks() &&
         pool_.can_acquire(*unit_request_);
}

// Sequentially consistent loads: an idle worker that has announced itself must see a size
// raised before the submitter looked for idle workers (see next_task).
bool Scheduler::lanes_hold_tasks() const noexcept {
  for (unsigned i = 0; i < workers_; ++i) {
    if (lanes_[i].size.load() > 0) return true;
  }
  return false;
}

// An entry counts in its lane's size until taken. A task that left the queued phase while
// listed is counted out where it left (ran_inline, lane_tasks_left_), and counted back in
// `dropped` once its entry is taken: each task counts once, and not once it has left.
std::size_t Scheduler::lane_tasks_queued() const noexcept {
  std::int64_t queued = -lane_tasks_left_.load(std::memory_order_relaxed);
  for (unsigned i = 0; i < workers_; ++i) {
    queued += lanes_[i].size.load(std::memory_order_relaxed) +
              lanes_[i].dropped.load(std::memory_order_relaxed) -
              lanes_[i].ran_inline.load(std::memory_order_relaxed);
  }
  return static_cast<std::size_t>(std::max<std::int64_t>(0, queued));
}

Lane& Scheduler::own_lane() const noexcept {
  return lanes_[worker_algorithm()->index() % workers_];
}

void Scheduler::cancel_lanes() {
  for (unsigned i = 0; i < workers_; ++i) {
    while (std::shared_ptr<TaskRecord> task =
               claim(lanes_[i], false, TaskRecord::Phase::finished)) {
      cancelled_.fetch_add(1, std::memory_order_relaxed);
      task->fail_unrun(cancelled_error(*task, "the runtime shut down before it ran"));
    }
  }
}

void Scheduler::start_locked(TaskRecord& task) {
  SPINDLE_ASSERT(task.phase == TaskRecord::Phase::queued && queued_ > 0);
  task.phase = TaskRecord::Phase::running;
  ++task.attempts;
  --queued_;
  note_queued_locked();
  ++running_;
}

namespace {

// Below this much free stack a caller waits instead of running a task inline on its stack.
constexpr std::size_t kInlineStackReserve = 256 * 1024;

bool enough_stack_to_inline() noexcept {
  const FiberStack& stack = active_fiber_stack();
  if (!stack.top) return false;
  const char* here = static_cast<const char*>(__builtin_frame_address(0));
  return here - (stack.top - stack.usable_bytes) > static_cast<std::ptrdiff_t>(kInlineStackReserve);
}

// What the caller holds covers the task's demand, and the task needs no GPU (it would need
// the caller's device and stream to be its own).
bool lends(const TaskRecord& caller, const TaskSpec& task) {
  if (task.request == caller.spec->request) return task.request->demand().gpu().is_zero();
  const ResourceSet& demand = task.request->demand();
  return demand.gpu().is_zero() && caller.spec->request->demand().contains(demand);
}

}  // namespace

bool Scheduler::run_inline(TaskRecord& caller, ObjectStateBase& object) {
  const std::shared_ptr<TaskRecord> task = object.producer();
  // Another runtime's task is that runtime's to run.
  if (!task || &task->scheduler() != this || task->creates_actor || task->actor ||
      task->spec->codelet ||
      !lends(caller, *task->spec) || task->phase != TaskRecord::Phase::queued ||
      !enough_stack_to_inline()) {
    return false;  // phase is read without the lock here: a hint, checked again below
  }
  // The caller's count in running_ passes to the task: the caller waits under it. A lane task
  // has none of its own (its CPU is the caller's); another gives up the one it starts with.
  if (task->lane) {
    auto queued = TaskRecord::Phase::queued;
    if (stopping() || !task->phase.compare_exchange_strong(queued, TaskRecord::Phase::running)) {
      return false;
    }
    count_ran_inline(own_lane());  // a caller is a task: this is one of the workers
    ++task->attempts;  // its lane entry is dropped when taken
  } else {
    MutexLock lock(mutex_);
    if (task->phase != TaskRecord::Phase::queued || stopping()) return false;
    start_locked(*task);  // its queue entry is dropped when it reaches the front
    --running_;
  }
  WorkerAlgorithm* algorithm = worker_algorithm();
  std::exception_ptr error;
  // Retries run here too: its stale queue entry must not look queued again.
  for (;;) {
    error = run_task(*task, algorithm ? algorithm->index() : 0, caller.allocation);
    if (!should_retry(*task, error) || task->cancel_requested || stopping()) break;
    ++task->attempts;
  }
  enter_task(&caller);
  if (caller.device >= 0) make_current(caller.device);
  if (task->lane) {
    settle_inline_lane(*task, error);
  } else {
    settle(*task, nullptr, error, false);
  }
  return true;
}

bool Scheduler::should_retry(const TaskRecord& task, std::exception_ptr error) const {
  const TaskSpec& spec = *task.spec;
  return error && spec.retry_exceptions &&
         (spec.max_retries < 0 || task.attempts <= spec.max_retries);
}

void Scheduler::execute(Admitted admitted, unsigned worker) {
  if (admitted.actor) {
    admitted.actor->run(worker);
    return;
  }
  TaskRecord& task = *admitted.task;
  std::exception_ptr error = run_task(task, worker, &admitted.allocation);
  if (task.lane) {
    if (settle_lane(task, admitted.allocation, error, should_retry(task, error))) {
      retire(own_lane(), std::move(admitted.task));
    }
  } else {
    settle(task, &admitted.allocation, error, should_retry(task, error));
  }
}

void Scheduler::execute_failed(Admitted admitted, const std::string& why) {
  if (admitted.actor) {  // its calls cannot run anywhere else, and must not hang unseen
    std::cerr << "spindle: actor '" << admitted.actor->spec->name << "' cannot run: " << why
              << ". Aborting.\n";
    std::abort();
  }
  settle(*admitted.task, &admitted.allocation, std::make_exception_ptr(Error(why)), false);
}

void begin_run(TaskRecord& task, const Allocation* allocation) noexcept {
  task.allocation = allocation;
  task.device = task_device(task);
  if (task.device >= 0) make_current(task.device);
  enter_task(&task);
}

std::exception_ptr end_run(TaskRecord& task, std::exception_ptr error) noexcept {
  try {
    finish_task_stream(task);
  } catch (...) {
    if (!error) error = std::current_exception();
  }
  enter_task(nullptr);
  task.device = -1;
  task.allocation = nullptr;
  return error;
}

std::exception_ptr Scheduler::run_task(TaskRecord& task, unsigned worker,
                                       const Allocation* allocation) {
  begin_run(task, allocation);
  // The clock is read only for an observer: the timeline, or the model for a codelet.
  const bool timed = recording_timeline() || (task.spec->codelet && model_);
  const Clock::time_point start = timed ? Clock::now() : Clock::time_point();
  std::exception_ptr error;
  try {
    task.run();
  } catch (...) {
    error = std::current_exception();
  }
  error = end_run(task, error);
  if (!timed) return error;
  const Clock::time_point end = Clock::now();
  if (task.spec->codelet && !error && model_) {
    model_->record(task.spec->name, task.input_bytes, task.spec->device_kind,
                   std::chrono::duration<double>(end - start).count());
    model_updated_.store(true, std::memory_order_relaxed);
  }
  if (recording_timeline()) {
    TimelineEvent event;
    event.task_id = task.id;
    event.spec = task.spec;
    event.start_ns = (start - epoch_).count();
    event.end_ns = (end - epoch_).count();
    event.worker = worker;
    event.attempt = task.attempts;
    event.failed = error != nullptr;
    if (allocation) event.gpus = allocation->gpu_ids();
    record(std::move(event));
  }
  return error;
}

// The task counts as running until its object is complete: a task blocked on that object
// must not look deadlocked in the moment between the release and the completion.
// An actor's creation that succeeded passes its allocation to the actor instead. A task run
// inline (no allocation) ran on what its caller lent, and its count in running_ passes back
// to the caller, who runs on.
void Scheduler::settle(TaskRecord& task, Allocation* allocation, std::exception_ptr error,
                       bool retry) {
  SPINDLE_ASSERT(task.phase == TaskRecord::Phase::running);
  bool requeued = false;
  {
    MutexLock lock(mutex_);
    if (allocation && task.creates_actor && !error) {
      task.actor->adopt(std::move(*allocation));
    } else if (allocation) {
      pool_.release(*allocation);
    }
    if (allocation) settling_.fetch_add(1, std::memory_order_relaxed);
    requeued = error && retry && !stopping() && !task.cancel_requested;
    if (requeued) {
      enqueue_locked(task.shared_from_this());
    } else {
      task.phase = TaskRecord::Phase::finished;
      (error ? failed_ : finished_).fetch_add(1, std::memory_order_relaxed);
      unplace_locked(task);
    }
    if (allocation) {
      serve_reacquire_locked();
      wake_worker_locked();
    }
  }
  if (!requeued) publish_outcome(task, error);
  if (!allocation) return;
  MutexLock lock(mutex_);
  --running_;
  settling_.fetch_sub(1, std::memory_order_relaxed);
  check_deadlock_locked();
}

// Without the lock when the task ran on the worker's runner, which takes the CPU back as its
// credit and goes on to the next task; through it when the task blocked and lost the runner's
// role (the runner may be idle, and a credit left with it would be stranded).
bool Scheduler::settle_lane(TaskRecord& task, Allocation& allocation, std::exception_ptr error,
                            bool retry) {
  SPINDLE_ASSERT(task.lane && task.phase == TaskRecord::Phase::running);
  WorkerAlgorithm& algorithm = *worker_algorithm();
  Lane& own = lanes_[algorithm.index() % workers_];
  const bool to_pool =
      own.credit.has_value() || algorithm.runner() != boost::fibers::context::active();
  if (to_pool) {
    settling_.fetch_add(1, std::memory_order_relaxed);  // running until its object completes
  } else {
    own.credit = std::move(allocation);
    set_idle_credit(own, true);
  }
  const bool finished = !(error && retry && !stopping() && !task.cancel_requested);
  if (!finished) {
    task.phase = TaskRecord::Phase::queued;
    push_lane(task.shared_from_this());
  } else {
    task.phase.store(TaskRecord::Phase::finished, std::memory_order_release);
    count_settled(own, error != nullptr);
    publish_outcome(task, error);
  }
  if (!to_pool) return finished;
  MutexLock lock(mutex_);
  pool_.release(allocation);
  --running_;
  settling_.fetch_sub(1, std::memory_order_relaxed);
  serve_reacquire_locked();
  wake_worker_locked();
  check_deadlock_locked();
  return finished;
}

void Scheduler::settle_inline_lane(TaskRecord& task, std::exception_ptr error) {
  SPINDLE_ASSERT(task.lane && task.phase == TaskRecord::Phase::running);
  task.phase.store(TaskRecord::Phase::finished, std::memory_order_release);
  count_settled(own_lane(), error != nullptr);
  publish_outcome(task, error);
}

// The arguments go first: a consumer that sees the result sees them released too.
void Scheduler::publish_outcome(TaskRecord& task, std::exception_ptr error) {
  task.release_arguments();
  if (!error) {
    task.publish();
    return;
  }
  std::string context = task.attempts > 1 ? " on attempt " + std::to_string(task.attempts) : "";
  task.result().fail(task_error(task, error, context));
}

void Scheduler::record(TimelineEvent event) {
  if (!recording_timeline()) return;
  MutexLock lock(timeline_mutex_);
  if (timeline_.size() == max_timeline_events_) {
    timeline_.pop_front();
    ++timeline_dropped_;
  }
  timeline_.push_back(std::move(event));
}

void Scheduler::record_transfer(std::string label, DeviceKind from, DeviceKind to,
                                std::size_t bytes, Clock::time_point start, Clock::time_point end) {
  if (model_ && from != to) {
    model_->record_transfer(from, to, bytes, std::chrono::duration<double>(end - start).count());
    model_updated_.store(true, std::memory_order_relaxed);
  }
  TimelineEvent event;
  event.start_ns = (start - epoch_).count();
  event.end_ns = (end - epoch_).count();
  event.worker = kTransferRow;
  event.label = std::move(label);
  event.bytes = bytes;
  record(std::move(event));
}

void Scheduler::block(BlockedWait& wait) {
  MutexLock lock(mutex_);
  SPINDLE_ASSERT(running_ > 0);
  --running_;
  ++blocked_count_locked(wait);
  wait.index = blocked_.size();
  blocked_.push_back(&wait);
  if (const auto& cpu = wait.task->spec->cpu_request) pool_.release(Allocation{cpu, {}});
  serve_reacquire_locked();
  wake_worker_locked();
  check_deadlock_locked();
}

void Scheduler::unblock(BlockedWait& wait) {
  std::shared_ptr<Event> granted;
  {
    MutexLock lock(mutex_);
    SPINDLE_ASSERT(wait.index < blocked_.size() && blocked_[wait.index] == &wait);
    blocked_[wait.index] = blocked_.back();  // swap-remove: thousands may be blocked at once
    blocked_[wait.index]->index = wait.index;
    blocked_.pop_back();
    --blocked_count_locked(wait);
    const auto& cpu = wait.task->spec->cpu_request;
    if (!cpu || (reacquire_.empty() && pool_.try_acquire(cpu))) {
      ++running_;
      return;
    }
    granted = std::make_shared<Event>(1);
    reacquire_.push_back({wait.task, granted});
    note_queued_locked();
  }
  granted->wait(std::nullopt);
}

void Scheduler::serve_reacquire_locked() {
  while (!reacquire_.empty() && pool_.try_acquire(reacquire_.front().task->spec->cpu_request)) {
    ++running_;
    reacquire_.front().granted->on_complete();
    reacquire_.pop_front();
    note_queued_locked();
  }
}

// Nothing can progress when no task runs, none is about to take its CPU back, no wait can
// end by a timeout or has already ended, and no queued task fits in what is free. Only a
// running task could complete what the blocked ones wait for, or free what the queued
// ones need.
// A wait on another rank's answer may end when that rank moves: the cluster's check (rank 0
// asks every rank whether it is still, see cluster.cc) reports those.
void Scheduler::check_deadlock_locked() {
  if (blocked_.empty() || blocked_remote_ > 0 || !still_locked() || !any_unreported_locked()) {
    return;
  }
  fail_blocked_locked(std::make_exception_ptr(DeadlockError(describe_deadlock_locked())));
}

bool Scheduler::still_locked() {
  if (running_ > 0 || blocked_timed_ > 0 || !reacquire_.empty() || !actor_runs_.empty() ||
      best_admissible_locked() || lane_work_admissible_locked()) {
    return false;
  }
  return std::ranges::none_of(blocked_,
                              [](const BlockedWait* wait) { return wait->event->settled(); });
}

bool Scheduler::any_unreported_locked() const {
  return std::ranges::any_of(blocked_, [](const BlockedWait* wait) { return !wait->reported; });
}

void Scheduler::fail_blocked_locked(const std::exception_ptr& error) {
  for (BlockedWait* wait : blocked_) {
    if (wait->reported) continue;
    wait->reported = true;
    wait->event->fail(error);
  }
}

Stillness Scheduler::stillness() {
  MutexLock lock(mutex_);
  Stillness here;
  here.still = still_locked();
  here.waits = any_unreported_locked();
  if (here.still && (!blocked_.empty() || queued_ > 0 || lane_tasks_queued() > 0)) {
    here.described = describe_blocked_locked();
  }
  return here;
}

void Scheduler::fail_cluster_deadlock(const std::string& message) {
  MutexLock lock(mutex_);
  if (still_locked()) fail_blocked_locked(std::make_exception_ptr(DeadlockError(message)));
}

std::string Scheduler::describe_deadlock_locked() const {
  return "deadlock: no task can make progress, so the blocked gets fail instead of hanging. " +
         describe_blocked_locked();
}

std::string Scheduler::describe_blocked_locked() const {
  constexpr std::size_t kMostListed = 8;
  std::ostringstream out;
  out << "Blocked in get:";
  if (blocked_.empty()) out << " none";
  for (std::size_t i = 0; i < blocked_.size() && i < kMostListed; ++i) {
    const BlockedWait& wait = *blocked_[i];
    out << (i ? ";" : "") << ' ' << describe_task(*wait.task) << " holding "
        << without_cpu(wait.task->spec->request->demand()).to_string() << " waits for";
    std::size_t listed = 0;
    for (ObjectStateBase* object : wait.objects) {
      if (object->done() || listed == kMostListed) continue;
      const std::shared_ptr<TaskRecord> producer = object->producer();
      out << (listed++ ? ", " : " ")
          << (producer                 ? describe_task(*producer)
              : object->made_by_task() ? "a task that just finished"
                                       : "an answer from another rank");
    }
  }
  out << ". Waiting for resources:";
  std::size_t listed = 0;
  for (const ShapeQueue& shape : shapes_) {
    for (const auto& task : shape.tasks) {
      if (task->phase != TaskRecord::Phase::queued || listed == kMostListed) continue;
      out << (listed++ ? ";" : "") << ' ' << describe_task(*task) << " needs "
          << shape.request->demand().to_string();
    }
  }
  // Lane tasks sit in lock-free queues, which cannot be read through: they are counted.
  if (const std::size_t lane_tasks = lane_tasks_queued(); lane_tasks > 0) {
    out << (listed++ ? ";" : "") << ' ' << lane_tasks
        << (lane_tasks == 1 ? " task needs " : " tasks need ")
        << unit_request_->demand().to_string();
  }
  if (listed == 0) out << " none";
  out << ". Free: " << pool_.available().to_string() << '.';
  return out.str();
}

void Scheduler::stop() {
  std::vector<std::shared_ptr<TaskRecord>> cancelled;
  std::vector<std::shared_ptr<ActorCore>> actors;
  {
    MutexLock lock(mutex_);
    stopping_.store(true);  // running tasks see this_task::cancelled()
    for (ActorCore* actor = live_actors_; actor; actor = actor->live_next) {
      if (auto alive = actor->weak_from_this().lock()) actors.push_back(std::move(alive));
    }
    for (ShapeQueue& shape : shapes_) {
      for (auto& task : shape.tasks) {
        if (task->phase != TaskRecord::Phase::queued) continue;
        task->phase = TaskRecord::Phase::finished;
        --queued_;
        note_queued_locked();
        cancelled_.fetch_add(1, std::memory_order_relaxed);
        cancelled.push_back(std::move(task));
      }
      shape.tasks.clear();
    }
    if (actors_ == 0) wake_all_idle_locked();
  }
  for (const auto& task : cancelled) {
    task->fail_unrun(cancelled_error(*task, "the runtime shut down before it ran"));
  }
  fail_foreign_waits();  // before the lanes: a callback inside may still queue its task
  cancel_lanes();
  // Each actor then destroys its instance on a worker, and the last one to die lets the
  // idle workers go.
  for (const auto& actor : actors) actor->shutdown();
}

void Scheduler::wake_all_idle_locked() {
  for (const IdleWorker& worker : idle_workers_) worker.algorithm->wake(worker.fiber);
  idle_workers_.clear();
  idle_count_.store(0, std::memory_order_relaxed);
}

std::shared_ptr<ActorCore> Scheduler::add_actor(ActorCore& actor,
                                                const std::shared_ptr<ActorCore>& handle,
                                                const std::type_info& type) {
  const std::string& name = actor.spec->registered_name;
  // Declared before the lock: dropping the last handle tells the actor, which may post a
  // runner, under this mutex (and the last handle of one on another rank tells that rank).
  std::shared_ptr<ActorCore> existing;
  std::shared_ptr<const RemoteActor> remote;
  MutexLock lock(mutex_);
  if (!name.empty()) {
    auto named = names_.find(name);
    if (named != names_.end()) existing = named->second.handle.lock();
    if (existing) {
      if (named->second.type != std::type_index(type)) {
        throw InvalidArgumentError("actor name '" + name + "' is taken by a live actor of class " +
                                   type_name(named->second.type) + ", not " + type_name(type));
      }
      if (actor.spec->get_if_exists) return existing;
      throw name_taken(name);
    }
    if (named != names_.end()) remote = named->second.remote.lock();
    if (alive(remote)) throw name_taken(name);
    names_.insert_or_assign(name, NamedActor{&actor, handle, std::type_index(type)});
  }
  actor.live_next = live_actors_;
  if (live_actors_) live_actors_->live_prev = &actor;
  live_actors_ = &actor;
  ++actors_;
  return nullptr;
}

FoundActor Scheduler::find_named_actor(const std::string& name, const std::type_info& type) {
  FoundActor found;  // before the lock, as in add_actor
  std::shared_ptr<const RemoteActor> remote;
  MutexLock lock(mutex_);
  auto named = names_.find(name);
  if (named == names_.end()) return found;
  found.local = named->second.handle.lock();
  remote = named->second.remote.lock();
  if (alive(remote)) found.remote = remote;
  if (found && named->second.type != std::type_index(type)) {
    throw InvalidArgumentError("actor '" + name + "' is of class " + type_name(named->second.type) +
                               ", not " + type_name(type));
  }
  return found;
}

FoundActor Scheduler::claim_remote_name(const std::string& name, const std::type_info& type,
                                        const std::shared_ptr<const RemoteActor>& remote) {
  FoundActor live;  // before the lock, as in add_actor
  std::shared_ptr<const RemoteActor> held;
  MutexLock lock(mutex_);
  auto named = names_.find(name);
  if (named != names_.end()) {
    live.local = named->second.handle.lock();
    held = named->second.remote.lock();
    if (alive(held)) live.remote = held;
    if (live) return live;
  }
  names_.insert_or_assign(name,
                          NamedActor{nullptr, {}, std::type_index(type), remote, remote.get()});
  return live;
}

bool Scheduler::alive(const std::shared_ptr<const RemoteActor>& remote) {
  // One whose creation failed there is not alive: its name is free.
  return remote && remote->created->status() != ObjectStateBase::Status::failed;
}

void Scheduler::release_remote_name(const RemoteActor& remote) {
  MutexLock lock(mutex_);
  auto named = names_.find(remote.name);
  // Compared by address: no handle is made (or dropped) under the lock.
  if (named != names_.end() && !named->second.actor && !named->second.remote.expired() &&
      named->second.remote_address == &remote) {
    names_.erase(named);
  }
}

void Scheduler::keep_cluster_name(ActorCore& actor, std::shared_ptr<ClusterName> claim) {
  MutexLock lock(mutex_);
  auto named = names_.find(actor.spec->registered_name);
  if (named != names_.end() && named->second.actor == &actor) {
    named->second.cluster_name = std::move(claim);
    return;
  }
  lock.unlock();
  claim->release();  // the actor lost its name already
}

void Scheduler::drop_cluster_name(ActorCore& actor) noexcept {
  std::shared_ptr<ClusterName> claim;  // released after the lock
  {
    MutexLock lock(mutex_);
    if (actor.spec->registered_name.empty()) return;
    auto named = names_.find(actor.spec->registered_name);
    if (named == names_.end() || named->second.actor != &actor) return;
    claim = std::move(named->second.cluster_name);
  }
  if (claim) claim->release();
}

void Scheduler::release_name(ActorCore& actor) {
  MutexLock lock(mutex_);
  release_name_locked(actor);
}

void Scheduler::release_name_locked(ActorCore& actor) {
  if (actor.spec->registered_name.empty()) return;
  auto named = names_.find(actor.spec->registered_name);
  if (named != names_.end() && named->second.actor == &actor) names_.erase(named);
}

void Scheduler::post_actor(std::shared_ptr<ActorCore> actor) {
  MutexLock lock(mutex_);
  actor_runs_.push_back(std::move(actor));
  note_queued_locked();
  wake_worker_locked();
}

void Scheduler::actor_run_done() {
  MutexLock lock(mutex_);
  --running_;
  check_deadlock_locked();
}

void Scheduler::actor_died(ActorCore& actor, std::optional<Allocation> allocation) {
  MutexLock lock(mutex_);
  if (allocation) pool_.release(*allocation);
  if (actor.live_prev || live_actors_ == &actor) {  // registered
    (actor.live_prev ? actor.live_prev->live_next : live_actors_) = actor.live_next;
    if (actor.live_next) actor.live_next->live_prev = actor.live_prev;
    actor.live_prev = actor.live_next = nullptr;
    --actors_;
  }
  release_name_locked(actor);
  if (stopping() && actors_ == 0) wake_all_idle_locked();
  serve_reacquire_locked();
  wake_worker_locked();
  check_deadlock_locked();
}

RuntimeStatus Scheduler::status() const {
  RuntimeStatus status;
  MutexLock lock(mutex_);
  status.total = pool_.totals();
  status.available = pool_.available();
  const std::size_t lane_queued = lane_tasks_queued();
  std::size_t idle_credits = 0, lane_finished = 0, lane_failed = 0;
  for (unsigned i = 0; i < workers_; ++i) {
    idle_credits += lanes_[i].idle_credit.load(std::memory_order_relaxed);
    lane_finished += lanes_[i].finished.load(std::memory_order_relaxed);
    lane_failed += lanes_[i].failed.load(std::memory_order_relaxed);
  }
  status.waiting_for_dependencies = waiting_.load();
  status.waiting_for_resources = queued_ + lane_queued;
  // A snapshot: runners between calls (read without the lock) are running_ but run nothing, and
  // workers' credits are CPUs held for tasks to come.
  auto running = static_cast<std::int64_t>(running_ + reacquire_.size()) -
                 static_cast<std::int64_t>(settling_.load() + idle_credits) -
                 lingering_.load(std::memory_order_relaxed);
  status.running = static_cast<std::size_t>(std::max<std::int64_t>(0, running));
  status.blocked = blocked_timed_ + blocked_untimed_ + blocked_remote_;
  status.finished = finished_.load() + lane_finished;
  status.failed = failed_.load() + lane_failed;
  status.cancelled = cancelled_.load();
  std::size_t lane_queued_local = lane_queued;
  status.actors = actors_;
  status.actor_calls_finished = calls_finished_.load(std::memory_order_relaxed);
  status.actor_calls_failed = calls_failed_.load(std::memory_order_relaxed);
  for (const ShapeQueue& shape : shapes_) {
    std::size_t count = std::ranges::count_if(
        shape.tasks, [](const auto& task) { return task->phase == TaskRecord::Phase::queued; });
    if (shape.request == unit_request_) count += std::exchange(lane_queued_local, 0);
    if (count > 0) status.pending_demands.emplace_back(shape.request->demand(), count);
  }
  if (lane_queued_local > 0)
    status.pending_demands.emplace_back(unit_request_->demand(), lane_queued_local);
  return status;
}

namespace {

void write_transfer(std::ostream& out, const TimelineEvent& event, bool first) {
  char number[64];
  std::snprintf(number, sizeof number, "%.3f,\"dur\":%.3f", event.start_ns / 1e3,
                (event.end_ns - event.start_ns) / 1e3);
  out << (first ? "" : ",") << "\n{\"name\":" << nlohmann::json(event.label).dump()
      << ",\"cat\":\"transfer\",\"ph\":\"X\",\"pid\":1,\"tid\":" << event.worker
      << ",\"ts\":" << number << ",\"args\":{\"bytes\":" << event.bytes << "}}";
}

}  // namespace

void Scheduler::write_timeline(std::ostream& out) const {
  MutexLock lock(timeline_mutex_);
  std::vector<unsigned> workers;
  // Timestamps count from the scheduler's start, `epoch_ns` on the steady clock (which a
  // cluster's timeline aligns ranks by).
  out << "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"dropped_events\":" << timeline_dropped_
      << ",\"epoch_ns\":" << epoch_.time_since_epoch().count() << "},\"traceEvents\":[";
  bool first = true;
  char number[64];
  for (const TimelineEvent& event : timeline_) {
    if (!event.spec) {
      write_transfer(out, event, first);
      first = false;
      if (std::ranges::find(workers, event.worker) == workers.end())
        workers.push_back(event.worker);
      continue;
    }
    std::string device = "cpu";
    for (int gpu : event.gpus) device += (device == "cpu" ? ",gpu:" : "+") + std::to_string(gpu);
    std::snprintf(number, sizeof number, "%.3f,\"dur\":%.3f", event.start_ns / 1e3,
                  (event.end_ns - event.start_ns) / 1e3);
    out << (first ? "" : ",") << "\n{\"name\":" << nlohmann::json(event.spec->name).dump()
        << ",\"cat\":\"task\",\"ph\":\"X\",\"pid\":1,\"tid\":" << event.worker
        << ",\"ts\":" << number << ",\"args\":{\"id\":" << event.task_id
        << ",\"attempt\":" << event.attempt << ",\"failed\":" << (event.failed ? "true" : "false")
        << ",\"resources\":" << nlohmann::json(event.spec->request->demand().to_string()).dump()
        << ",\"device\":\"" << device << "\"}}";
    first = false;
    if (std::ranges::find(workers, event.worker) == workers.end()) workers.push_back(event.worker);
  }
  for (unsigned worker : workers) {
    out << (first ? "" : ",")
        << "\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":" << worker
        << ",\"args\":{\"name\":\""
        << (worker == kTransferRow ? std::string("transfers") : "worker " + std::to_string(worker))
        << "\"}}";
    first = false;
  }
  out << "\n]}\n";
}

}  // namespace spindle::detail
