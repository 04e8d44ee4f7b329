// The scheduler: dependency resolution, admission against resources, blocking in get,
// deadlock detection, retries, cancellation, and the records behind timeline and status.
//
// One mutex guards its state; it is never held while a fiber is suspended or while an
// object completes (completions run waiters' code).
#pragma once

#include <algorithm>
#include <atomic>
#include <boost/fiber/context.hpp>
#include <concurrentqueue/concurrentqueue.h>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <typeindex>
#include <unordered_map>
#include <vector>

#include "placement/placer.hpp"
#include "runtime/actor_core.hpp"
#include "runtime/task_record.hpp"
#include "spindle/detail/remote.hpp"
#include "spindle/detail/thread_annotations.hpp"
#include "spindle/runtime.hpp"

namespace spindle::detail {

class Event;
class WorkerAlgorithm;

/// A task, or the main thread, blocked in get or wait.
struct BlockedWait {
  TaskRecord* task = nullptr;
  std::shared_ptr<Event> event;
  bool timed = false;     // a deadline or another runtime may end it: never a deadlock
  bool remote = false;    // another rank completes what it waits for (see Scheduler::stillness)
  bool reported = false;  // already failed by a deadlock check
  std::span<ObjectStateBase* const> objects;
  std::size_t index = 0;  // in the scheduler's list of blocked waits
};

/// Work for a worker: a task admitted with what it was granted, or a runner of an actor.
struct Admitted {
  std::shared_ptr<TaskRecord> task;
  Allocation allocation;
  std::shared_ptr<ActorCore> actor;
};

/// How many finished records a busy worker keeps before it frees them (Lane::retired).
inline constexpr std::size_t kRetiredBatch = 32;

/// A worker's lane: tasks whose demand is one CPU (the default), queued and taken without any
/// lock, run on the worker's credit: a CPU it takes from the pool while it has such work and
/// gives back when it has none. Other workers take from it when theirs is empty.
struct alignas(64) Lane {
  Lane() = default;
  Lane(const Lane&) = delete;
  Lane& operator=(const Lane&) = delete;
  /// Drops what is still listed (each entry owns its task; see TaskRecord::queued_self).
  ~Lane();

  /// A lock-free queue (moodycamel's): FIFO for each thread that submits. An entry holds its
  /// task through TaskRecord::queued_self until it is taken; an entry whose task was
  /// cancelled or run inline meanwhile is dropped by whoever takes it.
  moodycamel::ConcurrentQueue<TaskRecord*> tasks;
  /// For the lane's own worker only (tokens are not shared between threads): its pushes and
  /// takes skip the queue's lookup of the calling thread's producer.
  moodycamel::ProducerToken own_producer{tasks};
  moodycamel::ConsumerToken own_consumer{tasks};
  /// Entries listed; a hint, raised once an entry is listed and lowered once it is taken.
  /// The one counter a submit moves, alone on its line with `dropped` (rarely written): the
  /// worker's own fields below are not invalidated by each submit.
  alignas(64) std::atomic<std::int64_t> size{0};
  /// Entries taken whose task had left the queued phase already (run inline, or cancelled):
  /// with `size`, counts the lane's queued tasks (see Scheduler::lane_tasks_queued).
  std::atomic<std::int64_t> dropped{0};
  /// The worker's credit; touched only by that worker's fibers.
  alignas(64) std::optional<Allocation> credit;
  /// Records of finished tasks this worker's runner ran, freed once it looks for work again,
  /// or kRetiredBatch at a time while it is busy (see Scheduler::retire); their arguments,
  /// function and result are gone already. Touched only by the worker's fibers.
  std::vector<std::shared_ptr<TaskRecord>> retired;
  // Written only by the lane's worker, summed by status(): no line is shared on the way.
  alignas(64) std::atomic<std::size_t> finished{0};
  std::atomic<std::size_t> failed{0};
  std::atomic<std::size_t> idle_credit{0};  // 1 while the credit waits for the next task
  std::atomic<std::int64_t> ran_inline{0};   // lane tasks this worker ran inline
};

/// The timeline row of transfers (workers are rows 0 to n-1).
inline constexpr unsigned kTransferRow = 1000;

/// One span of the timeline.
struct TimelineEvent {
  std::uint64_t task_id = 0;
  std::shared_ptr<const TaskSpec> spec;
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  unsigned worker = 0;
  int attempt = 0;
  bool failed = false;
  std::vector<int> gpus;
  /// Set for a transfer (no spec): what was copied where, and how many bytes.
  std::string label;
  std::size_t bytes = 0;
};

/// "task 'name' (#7)", "call #7 of actor 'name'" or "creation of actor 'name' (#7)".
std::string describe_task(const TaskRecord& task);
/// `error` with `cause` nested in it (std::rethrow_if_nested gives the cause back).
template <typename Error>
std::exception_ptr with_nested(Error error, std::exception_ptr cause) {
  try {
    std::rethrow_exception(cause);
  } catch (...) {
    try {
      std::throw_with_nested(std::move(error));
    } catch (...) {
      return std::current_exception();
    }
  }
}
/// A TaskError for the task, with `cause` nested and its message after `context`.
std::exception_ptr task_error(const TaskRecord& task, std::exception_ptr cause,
                              const std::string& context);
std::exception_ptr cancelled_error(const TaskRecord& task, const std::string& why);
/// The message of an exception, or a note that it is not a std::exception.
std::string what_of(std::exception_ptr error);
/// Checks a count option where -1 means no limit (max_retries, max_restarts, ...).
void check_limit(std::string_view option, int value);
/// Checks TaskOptions::rank against the cluster (or the lone process); a codelet stays here.
void check_rank(int rank, bool codelet);

/// Makes `task` the context of the calling fiber, with `allocation` granted and its GPU (if
/// it has a real one) current: before its body runs, and before an actor's instance is
/// destroyed or rebuilt under its creation.
void begin_run(TaskRecord& task, const Allocation* allocation) noexcept;
/// Ends what begin_run began: waits for the GPU work its streams hold (a result is ready
/// only once that work has finished), then leaves the task. Returns `error`, or else what
/// that GPU work failed with.
std::exception_ptr end_run(TaskRecord& task, std::exception_ptr error) noexcept;

struct ForeignWaits;

class Scheduler final : public ContextOwner {
 public:
  /// With max_timeline_events = 0 nothing is recorded for the timeline. A buffer memory
  /// limit makes the Buffers of its tasks count against it.
  Scheduler(ResourceSet totals, std::size_t max_timeline_events,
            std::optional<std::size_t> buffer_memory_limit = std::nullopt);

  [[nodiscard]] std::uint64_t next_id() noexcept {
    return next_id_.fetch_add(1, std::memory_order_relaxed) + 1;
  }

  /// A spec's request, shared with every spec of the same demand so tasks queue together.
  std::shared_ptr<const ResourceRequest> request_for(const ResourceSet& demand);

  void submit(std::shared_ptr<TaskRecord> task);
  /// Every dependency of a submitted task completed.
  void dependencies_resolved(TaskRecord& task);
  void cancel(TaskRecord& task);

  /// Registers a new actor, and its name; with get_if_exists, returns the handle pointer of
  /// the live actor of that name instead (and registers nothing).
  /// @throws InvalidArgumentError for a name taken by a live actor, or one of another class.
  std::shared_ptr<ActorCore> add_actor(ActorCore& actor, const std::shared_ptr<ActorCore>& handle,
                                       const std::type_info& type);
  FoundActor find_named_actor(const std::string& name, const std::type_info& type);
  FoundActor claim_remote_name(const std::string& name, const std::type_info& type,
                               const std::shared_ptr<const RemoteActor>& remote);
  void release_remote_name(const RemoteActor& remote);
  /// Keeps `claim` (the actor's name across the cluster) while the actor has its name here.
  void keep_cluster_name(ActorCore& actor, std::shared_ptr<ClusterName> claim);
  /// Frees the actor's name across the cluster (its last handle is gone), if it holds one.
  void drop_cluster_name(ActorCore& actor) noexcept;
  /// Frees the actor's name, if it still has it.
  void release_name(ActorCore& actor);
  /// Queues a runner of the actor for some worker.
  void post_actor(std::shared_ptr<ActorCore> actor);
  /// A runner of an actor returned.
  void actor_run_done();
  /// The actor died: gives back what it held and forgets it (and its name).
  void actor_died(ActorCore& actor, std::optional<Allocation> allocation);
  /// An actor's runner is between calls (+1) or starts one again (-1): not counted as running.
  void count_lingering(int change) noexcept {
    lingering_.fetch_add(change, std::memory_order_relaxed);
  }
  void count_call(bool failed) noexcept {
    (failed ? calls_failed_ : calls_finished_).fetch_add(1, std::memory_order_relaxed);
  }
  /// Drops a finished task's record: on one of this scheduler's workers, with the lane
  /// tasks it ran (see retire); elsewhere at once.
  void drop_finished(std::shared_ptr<TaskRecord> task);

  /// For workers: the next task to run, admitted with its resources; nullopt once the
  /// runtime stops. Suspends the calling fiber while there is nothing to run.
  std::optional<Admitted> next_task();
  /// Runs an admitted task on the calling fiber and settles its outcome.
  void execute(Admitted admitted, unsigned worker);
  /// Settles an admitted task that could not be started (no stack for it) as failed with
  /// `why`; an actor's runner that cannot start aborts the process with `why` on stderr.
  void execute_failed(Admitted admitted, const std::string& why);
  /// Runs the task's function as the current task, holding `allocation`, and records its
  /// span in the timeline; returns what it threw.
  std::exception_ptr run_task(TaskRecord& task, unsigned worker, const Allocation* allocation);

  /// Runs the task computing `object` on the calling fiber, within what `caller` holds, if
  /// it has not started, is a plain task (not an actor's, not a codelet) needing no GPU, its
  /// demand is within the caller's, and the fiber has stack to spare; returns whether it
  /// ran. The caller stays running meanwhile (TBB's wait does the same).
  bool run_inline(TaskRecord& caller, ObjectStateBase& object);
  /// Called around a blocking wait inside a task: gives back and takes again its CPU.
  void block(BlockedWait& wait);
  void unblock(BlockedWait& wait);

  /// Cancels what has not started and lets next_task return nullopt once idle.
  void stop();
  /// Once the workers have left: cancels lane tasks listed after the last one looked (a
  /// task's submit that raced the stop), so that no get on them waits forever.
  void cancel_leftovers() { cancel_lanes(); }

  [[nodiscard]] RuntimeStatus status() const;
  /// For the cluster's deadlock check: whether nothing here can move until a message comes
  /// from another rank, whether a task here blocks in get not yet reported, and, if still,
  /// what blocks and waits.
  [[nodiscard]] Stillness stillness();
  /// Fails the gets that tasks block in, not yet reported, with `message` (a deadlock across
  /// the cluster), if nothing here can move still.
  void fail_cluster_deadlock(const std::string& message);
  /// How many worker threads run tasks (set once by the runtime, before any task).
  void set_workers(unsigned workers);
  [[nodiscard]] unsigned workers() const noexcept { return workers_; }
  /// The runtime that owns this scheduler (set once by it, before any task).
  void set_runtime(Runtime& runtime) noexcept { runtime_ = &runtime; }
  [[nodiscard]] Runtime* runtime() const noexcept { return runtime_; }
  /// Records a copy made for a consumer (a Buffer's replica) in the timeline, and in the
  /// performance model when it crossed between kinds of device.
  void record_transfer(std::string label, DeviceKind from, DeviceKind to, std::size_t bytes,
                       Clock::time_point start, Clock::time_point end) override;
  [[nodiscard]] MemoryBudget* memory_budget() noexcept override { return memory_budget_.get(); }
  /// Places codelets by `policy`, and measures their runs and transfers into `model`
  /// (which must outlive the scheduler). Set once, after set_workers, before any task.
  void set_placement(placement::Policy policy, PerfModel& model);
  /// Whether a codelet's run or a transfer was recorded in the model.
  [[nodiscard]] bool model_updated() const noexcept {
    return model_updated_.load(std::memory_order_relaxed);
  }

  /// Whether tasks or actor runners wait to be taken; read without the lock, so only a hint.
  [[nodiscard]] bool has_queued_work() const noexcept {
    return queued_work_.load(std::memory_order_relaxed) > 0 || lanes_hold_tasks();
  }
  /// Whether the runtime is shutting down: running tasks see this_task::cancelled().
  [[nodiscard]] bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }
  /// Whether some worker waits or polls for work; read without the lock, so only a hint.
  [[nodiscard]] bool has_idle_worker() const noexcept {
    return idle_count_.load(std::memory_order_relaxed) > 0 ||
           lane_pollers_.load(std::memory_order_relaxed) > 0;
  }
  void write_timeline(std::ostream& out) const;
  /// Whether task spans and transfers are recorded (max_timeline_events > 0).
  [[nodiscard]] bool recording_timeline() const noexcept { return max_timeline_events_ > 0; }

 private:
  struct ShapeQueue {
    std::shared_ptr<const ResourceRequest> request;
    std::deque<std::shared_ptr<TaskRecord>> tasks;
  };
  /// A worker's runner, suspended in next_task until there is work.
  struct IdleWorker {
    boost::fibers::context* fiber;
    WorkerAlgorithm* algorithm;
    int cpu;  // where its thread last ran (workers are pinned)
  };
  struct Reacquire {
    TaskRecord* task;
    std::shared_ptr<Event> granted;
  };

  void place(TaskRecord& task);
  /// Tells placement that a placed task is done (or will never run).
  void unplace_locked(TaskRecord& task) SPINDLE_REQUIRES(mutex_);
  void enqueue_locked(std::shared_ptr<TaskRecord> task) SPINDLE_REQUIRES(mutex_);
  ShapeQueue* best_admissible_locked() SPINDLE_REQUIRES(mutex_);
  void serve_reacquire_locked() SPINDLE_REQUIRES(mutex_);
  void wake_worker_locked() SPINDLE_REQUIRES(mutex_);
  void check_deadlock_locked() SPINDLE_REQUIRES(mutex_);
  std::string describe_deadlock_locked() const SPINDLE_REQUIRES(mutex_);
  /// What blocks in get, what waits for resources, and what is free.
  std::string describe_blocked_locked() const SPINDLE_REQUIRES(mutex_);
  /// Nothing here can move on its own: nothing runs or is about to, no wait may end by a
  /// timeout or has already ended, no queued task fits.
  bool still_locked() SPINDLE_REQUIRES(mutex_);
  /// Whether a blocked wait was not yet failed by a deadlock check.
  bool any_unreported_locked() const SPINDLE_REQUIRES(mutex_);
  /// Fails the waits not yet reported with `error`.
  void fail_blocked_locked(const std::exception_ptr& error) SPINDLE_REQUIRES(mutex_);
  void settle(TaskRecord& task, Allocation* allocation, std::exception_ptr error, bool retry);
  /// Settles a task taken from a lane: its CPU goes back to the worker's credit (or the pool).
  /// Returns whether the task finished (false when it was queued again).
  bool settle_lane(TaskRecord& task, Allocation& allocation, std::exception_ptr error, bool retry);
  /// Settles a lane task run inline: what it ran on stays the caller's.
  void settle_inline_lane(TaskRecord& task, std::exception_ptr error);
  void publish_outcome(TaskRecord& task, std::exception_ptr error);
  [[nodiscard]] bool should_retry(const TaskRecord& task, std::exception_ptr error) const;
  /// Moves a queued task to running.
  void start_locked(TaskRecord& task) SPINDLE_REQUIRES(mutex_);
  [[nodiscard]] bool lane_eligible(const TaskRecord& task) const noexcept;
  void push_lane(std::shared_ptr<TaskRecord> task);
  /// A lane task admitted on the worker's credit (which it must hold), if one is queued.
  std::optional<Admitted> take_lane_task(Lane& own, unsigned worker);
  /// Polls the lanes briefly, holding the worker's credit, for a task to take.
  std::optional<Admitted> poll_lanes(Lane& own, WorkerAlgorithm& algorithm);
  /// After a worker took a lane task: wakes an idle worker if more are listed (the submits
  /// that a poller took in woke no one).
  void wake_another_if_more();
  /// Keeps the record of a finished task this worker ran, for a while, without its result
  /// (TaskRecord::detach_result), which its refs alone keep: freeing the record at once would
  /// delay the worker's next look at the lanes past the caller's next submit, and records
  /// freed in a batch share the lines they touch (their spec's count, the allocator's).
  void retire(Lane& own, std::shared_ptr<TaskRecord> task);
  /// A queued lane task: the calling worker's oldest, else another lane's newest.
  std::shared_ptr<TaskRecord> take_from_lanes(unsigned worker);
  /// Takes a CPU from the pool as the worker's credit; false if none is free.
  bool acquire_credit(Lane& lane);
  bool acquire_credit_locked(Lane& lane) SPINDLE_REQUIRES(mutex_);
  void release_credit_locked(Lane& lane) SPINDLE_REQUIRES(mutex_);
  /// Whether a lane task could start: a lane holds one and a CPU is free for it.
  [[nodiscard]] bool lane_work_admissible_locked() const SPINDLE_REQUIRES(mutex_);
  /// Whether some lane holds an entry (a hint: it may be one left by a cancelled task).
  [[nodiscard]] bool lanes_hold_tasks() const noexcept;
  /// Lists a lane task (its phase is queued) in `lane`; `own` when the calling worker is the
  /// lane's.
  void list_in_lane(Lane& lane, std::shared_ptr<TaskRecord> task, bool own);
  /// Takes an entry of `lane` and the ownership it held; null when none. `own` as above.
  static std::shared_ptr<TaskRecord> unlist(Lane& lane, bool own);
  /// Takes `lane`'s next entry whose task is still queued, moving it to phase `to`; entries
  /// of tasks that left the queued phase meanwhile are dropped, and counted in `dropped`.
  static std::shared_ptr<TaskRecord> claim(Lane& lane, bool own, TaskRecord::Phase to);
  /// Lane tasks in the queued phase now.
  [[nodiscard]] std::size_t lane_tasks_queued() const noexcept;
  /// Counts in the lane of the worker that ran it a lane task run inline (one writer).
  static void count_ran_inline(Lane& own) noexcept {
    own.ran_inline.store(own.ran_inline.load(std::memory_order_relaxed) + 1,
                         std::memory_order_relaxed);
  }
  /// The calling worker's lane, where it counts what it settles.
  Lane& own_lane() const noexcept;
  /// Counts a lane task's outcome in the settling worker's lane: one writer per counter.
  static void count_settled(Lane& lane, bool failed) noexcept {
    auto& counter = failed ? lane.failed : lane.finished;
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void set_idle_credit(Lane& lane, bool idle) noexcept {
    lane.idle_credit.store(idle ? 1 : 0, std::memory_order_relaxed);
  }
  /// Fails every queued lane task as cancelled (the runtime stops).
  void cancel_lanes();
  void record(TimelineEvent event);
  void wake_all_idle_locked() SPINDLE_REQUIRES(mutex_);
  std::size_t& blocked_count_locked(const BlockedWait& wait) SPINDLE_REQUIRES(mutex_) {
    return wait.timed ? blocked_timed_ : wait.remote ? blocked_remote_ : blocked_untimed_;
  }
  void note_queued_locked() noexcept SPINDLE_REQUIRES(mutex_) {
    queued_work_.store(queued_ + actor_runs_.size() + reacquire_.size(), std::memory_order_relaxed);
  }
  void release_name_locked(ActorCore& actor) SPINDLE_REQUIRES(mutex_);

  ResourcePool pool_ SPINDLE_GUARDED_BY(mutex_);
  unsigned workers_ = 1;
  Runtime* runtime_ = nullptr;
  PerfModel* model_ = nullptr;
  std::unique_ptr<Placer> placer_;
  std::atomic<bool> model_updated_{false};
  const std::size_t max_timeline_events_;
  const std::shared_ptr<MemoryBudget> memory_budget_;  // null without a limit
  const std::chrono::steady_clock::time_point epoch_ = std::chrono::steady_clock::now();

  mutable Mutex mutex_;
  std::vector<std::shared_ptr<const ResourceRequest>> requests_ SPINDLE_GUARDED_BY(mutex_);
  std::vector<ShapeQueue> shapes_ SPINDLE_GUARDED_BY(mutex_);
  std::deque<Reacquire> reacquire_ SPINDLE_GUARDED_BY(mutex_);
  std::vector<BlockedWait*> blocked_ SPINDLE_GUARDED_BY(mutex_);
  std::deque<std::shared_ptr<ActorCore>> actor_runs_ SPINDLE_GUARDED_BY(mutex_);
  ActorCore* live_actors_ SPINDLE_GUARDED_BY(mutex_) = nullptr;  // intrusive list, to stop them
  std::size_t actors_ SPINDLE_GUARDED_BY(mutex_) = 0;
  struct NamedActor {
    ActorCore* actor;  // null for one on another rank
    std::weak_ptr<ActorCore> handle;
    std::type_index type;
    std::weak_ptr<const RemoteActor> remote = {};  // one made from here on another rank
    const RemoteActor* remote_address = nullptr;   // the same, to compare without locking
    std::shared_ptr<ClusterName> cluster_name = nullptr;  // freed with the entry
  };
  std::unordered_map<std::string, NamedActor> names_ SPINDLE_GUARDED_BY(mutex_);
  // Whether a remote actor an entry names (locked) is alive: its creation there did not fail.
  static bool alive(const std::shared_ptr<const RemoteActor>& remote);
  std::vector<IdleWorker> idle_workers_
      SPINDLE_GUARDED_BY(mutex_);           // a stack: the most recently idle is woken first
  // Guarded by mutex_: running_ counts tasks that hold their CPU and run, and workers' credits.
  std::size_t queued_ SPINDLE_GUARDED_BY(mutex_) = 0;
  std::size_t running_ SPINDLE_GUARDED_BY(mutex_) = 0;
  std::size_t blocked_timed_ SPINDLE_GUARDED_BY(mutex_) = 0;
  std::size_t blocked_untimed_ SPINDLE_GUARDED_BY(mutex_) = 0;
  std::size_t blocked_remote_ SPINDLE_GUARDED_BY(mutex_) = 0;  // on other ranks' answers
  std::shared_ptr<const ResourceRequest> unit_request_;  // {cpu: 1}; null below one CPU
  std::unique_ptr<Lane[]> lanes_;

  // The atomics a task or a call moves, grouped by who writes them, each group on lines of its
  // own: a line that one side writes for every task is not one that the other side reads for
  // every task, nor one that holds what both only read (the lanes, the unit request).
  // Written by submits: each one's id, and where a thread outside the workers submits from
  // when that changes.
  alignas(64) std::atomic<std::uint64_t> next_id_{0};
  std::atomic<int> outside_cpu_{-1};  // where the latest submit from outside the workers ran
  // Read by each submit; written when a worker goes idle, polls, or other work queues.
  alignas(64) std::atomic<std::size_t> idle_count_{0};  // idle_workers_.size()
  std::atomic<int> lane_pollers_{0};  // workers polling the lanes (see poll_lanes)
  std::atomic<int> poller_cpu_{-1};   // where the latest poller polls
  // queued_ + actor_runs_ + reacquire_: work a lane-running worker should look at
  std::atomic<std::size_t> queued_work_{0};
  std::atomic<bool> stopping_{false};
  // Written as tasks wait, end or are cancelled, and as calls end. Kept without the lock, so
  // that a lane task takes it nowhere.
  alignas(64) std::atomic<std::size_t> waiting_{0}, finished_{0}, failed_{0}, cancelled_{0};
  std::atomic<std::size_t> settling_{0};  // counted in running_ until their objects complete
  std::atomic<std::size_t> calls_finished_{0}, calls_failed_{0};
  std::atomic<int> lingering_{0};
  // Lane tasks that left the queued phase neither through a lane nor inline on a worker:
  // cancelled (see lane_tasks_queued).
  std::atomic<std::int64_t> lane_tasks_left_{0};

  // Tasks waiting on objects another runtime (or no task) will complete: that runtime may
  // outlive this one, so such objects reach the task through a link that stop() cuts before
  // it fails the task (see ForeignWaits).
  alignas(64) std::shared_ptr<ForeignWaits> foreign_;  // on a line after the atomics above
  std::shared_ptr<Waiter> foreign_link(const std::shared_ptr<TaskRecord>& task);
  void fail_foreign_waits();

  mutable Mutex timeline_mutex_;
  std::deque<TimelineEvent> timeline_ SPINDLE_GUARDED_BY(timeline_mutex_);
  std::size_t timeline_dropped_ SPINDLE_GUARDED_BY(timeline_mutex_) = 0;
};

inline Scheduler& TaskRecord::scheduler() const noexcept {
  return *static_cast<Scheduler*>(owner);
}

/// Whether the calling code runs inside a task, and which.
TaskRecord* current_task() noexcept;
void set_current_task(TaskRecord* task) noexcept;

}  // namespace spindle::detail
