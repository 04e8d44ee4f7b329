// The actor's core: what the scheduler keeps of an actor and mutates (its queue of calls,
// state, runners and upkeep). The typed instance lives in an ActorInstance it owns (actor.hpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/task_record.hpp"
#include "spindle/actor.hpp"
#include "spindle/detail/thread_annotations.hpp"

namespace spindle::detail {

/// Calls not started, in call order: a list linked through TaskRecord::next_call, each record
/// owning itself through its queued_self while listed (as in the intake). Queuing, draining the
/// intake into it, and handing it all over allocate nothing: the mailbox never throws inside a
/// kill or a shutdown, which may not (their error texts still allocate).
class CallList {
 public:
  CallList() = default;
  CallList(CallList&& other) noexcept;  // takes the other's calls
  CallList& operator=(CallList&& other) noexcept;  // drops its own calls first
  CallList(const CallList&) = delete;
  CallList& operator=(const CallList&) = delete;
  ~CallList();  // drops the calls still listed

  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] TaskRecord& front() const noexcept { return *head_; }
  void push_back(std::shared_ptr<TaskRecord> call) noexcept;
  /// Appends a chain, oldest first, of `count` records that own themselves already.
  void append_owned(TaskRecord* oldest, TaskRecord* newest, std::size_t count) noexcept;
  /// Null when empty.
  std::shared_ptr<TaskRecord> pop_front() noexcept;
  /// Before the first call with a greater id: retried calls go back in call order.
  void insert_by_id(std::shared_ptr<TaskRecord> call) noexcept;
  /// Takes `call` out; null if it is not listed.
  std::shared_ptr<TaskRecord> remove(const TaskRecord& call) noexcept;
  template <typename Visit>
  void for_each(Visit visit) const {
    for (TaskRecord* call = head_; call; call = call->next_call) visit(*call);
  }

 private:
  TaskRecord* head_ = nullptr;
  TaskRecord* tail_ = nullptr;
  std::size_t size_ = 0;
};

/// The untyped part of an actor: its queue of calls, its state, and its upkeep.
///
/// Calls, creation and upkeep (destroying the instance, building it again) run on "runner"
/// fibers: the scheduler starts one when a call is ready or upkeep is due; a runner takes
/// calls in order until none may start, and the last runner out does the upkeep once no call
/// runs. One mutex guards the state; it is never held while user code runs or an object
/// completes (completions run waiters' code, which may call this actor).
///
/// A call whose arguments are ready, to an actor with no limit of pending calls, is pushed
/// on a lock-free intake, which whoever holds the mutex moves into the mailbox, in order,
/// before looking at it. The caller then reads `runners_` and `busy_`: if a runner is between
/// calls, or every call the actor may run at once is running, a runner takes the call, and
/// the caller takes no lock; otherwise it takes the locked path, which starts a runner. A
/// runner lowers `runners_` before its last look at the intake, and a call's start or end
/// changes `busy_` before the runner's next look, all sequentially consistent with the push
/// and the reads: either the runner sees the call, or the caller sees the change. An actor
/// that dies or stops closes the intake, so that later calls take the locked path and are
/// refused there.
class ActorCore final : public Waiter, public std::enable_shared_from_this<ActorCore> {
 public:
  ActorCore(Scheduler& scheduler, std::shared_ptr<const ActorSpec> spec,
            std::unique_ptr<ActorInstance> instance);
  ~ActorCore() override;
  ActorCore(const ActorCore&) = delete;
  ActorCore& operator=(const ActorCore&) = delete;

  /// Queues a call made by ActorHandle::call; a dead actor fails it at once.
  /// @throws PendingCallsLimitError when max_pending_calls calls already wait.
  void submit(std::shared_ptr<TaskRecord> call);
  /// The last dependency of a queued call completed.
  void call_resolved() noexcept;
  /// Fails a call that has not started; flags a running one (this_task::cancelled).
  void cancel(TaskRecord& call) noexcept;
  void kill(bool no_restart) noexcept;
  /// Every handle is gone: the actor is destroyed once no call is pending.
  void handles_gone() noexcept;
  /// The runtime stops: calls not started are cancelled, the instance is destroyed.
  void shutdown() noexcept;
  /// The creation completed (as a Waiter of its object).
  void on_complete() noexcept override;
  /// A runner: runs calls and upkeep on the calling fiber while there is any it may do.
  void run(unsigned worker);
  /// Takes over what the creation was granted; given back when the actor dies.
  void adopt(Allocation allocation) noexcept;

  [[nodiscard]] int restarts() const noexcept { return restarts_.load(std::memory_order_relaxed); }

  Scheduler& scheduler;
  const std::shared_ptr<const ActorSpec> spec;
  /// The instance's typed holder; built by the creation, destroyed by upkeep.
  const std::unique_ptr<ActorInstance> instance;
  /// Builds the instance; run again to rebuild it after a crash.
  std::shared_ptr<TaskRecord> creation;
  /// The creation's object: ready once the instance was first built.
  std::shared_ptr<ObjectState<void>> created;
  std::uint64_t id = 0;
  // The scheduler's list of live actors, guarded by its mutex.
  ActorCore* live_prev = nullptr;
  ActorCore* live_next = nullptr;

 private:
  enum class State : std::uint8_t { creating, alive, dead };

  /// The next call, taken from the queue, if one may start now.
  std::shared_ptr<TaskRecord> take_locked() SPINDLE_REQUIRES(mutex_);
  [[nodiscard]] bool may_start_locked() const SPINDLE_REQUIRES(mutex_);
  [[nodiscard]] bool upkeep_due_locked() const SPINDLE_REQUIRES(mutex_);
  [[nodiscard]] bool may_rebuild_locked() const SPINDLE_REQUIRES(mutex_);
  /// Starts a runner if there is work and no idle runner to do it.
  void wake_locked() SPINDLE_REQUIRES(mutex_);
  /// Runs the method; returns what it threw.
  std::exception_ptr execute(TaskRecord& call, unsigned worker);
  /// Runs a taken call and completes its object (or queues it again after a crash). True when
  /// it completed it: the runner was counted idle before (see run).
  bool finish(std::shared_ptr<TaskRecord> call, unsigned worker);
  /// Called and left with mutex_ held; releases it while the instance is built or destroyed.
  void upkeep() SPINDLE_REQUIRES(mutex_);
  /// Waits briefly for more work before a runner leaves; true if there is some.
  bool linger() SPINDLE_REQUIRES(mutex_);
  CallList die_locked(std::exception_ptr cause) SPINDLE_REQUIRES(mutex_);
  void bury(CallList unstarted, std::exception_ptr cause) noexcept;
  void fail_unstarted(CallList calls, std::exception_ptr error) noexcept;
  void fail_call(TaskRecord& call, std::exception_ptr error) noexcept;
  CallList take_mailbox_locked() SPINDLE_REQUIRES(mutex_);
  /// Pushes a call on the intake; false once it is closed.
  bool push_intake(std::shared_ptr<TaskRecord>& call) noexcept;
  /// Moves the intake's calls to the end of the mailbox, oldest first; `close` closes it.
  void drain_intake_locked(bool close = false) SPINDLE_REQUIRES(mutex_);
  /// Whether calls wait in the intake.
  [[nodiscard]] bool intake_holds_calls() const noexcept;
  [[nodiscard]] std::exception_ptr died_error(const std::string& why,
                                              std::exception_ptr cause) const;

  Mutex mutex_;
  State state_ SPINDLE_GUARDED_BY(mutex_) = State::creating;
  CallList mailbox_ SPINDLE_GUARDED_BY(mutex_);                  // not started, in order
  std::vector<TaskRecord*> running_ SPINDLE_GUARDED_BY(mutex_);  // calls running now
  bool upkeep_running_ SPINDLE_GUARDED_BY(mutex_) = false;
  bool crashed_ SPINDLE_GUARDED_BY(mutex_) = false;     // rebuild (or die) once no call runs
  bool killed_ SPINDLE_GUARDED_BY(mutex_) = false;      // running calls fail; set with crashed_
  bool no_restart_ SPINDLE_GUARDED_BY(mutex_) = false;  // killed for good
  bool orphaned_ SPINDLE_GUARDED_BY(mutex_) = false;    // no handle is left
  bool stopping_ SPINDLE_GUARDED_BY(mutex_) = false;    // the runtime stops
  std::exception_ptr cause_ SPINDLE_GUARDED_BY(mutex_);  // of a crash or death
  // Written by adopt (the creation's settle) before the actor is alive and by bury after it
  // died; read by its runners in between.
  std::optional<Allocation> allocation_;
  std::atomic<int> restarts_{0};
  std::atomic<std::uint64_t> events_{0};  // counts wake_locked calls, for a lingering runner
  // What a call made without the mutex moves (the intake) and reads (the counts, which the
  // runner changes as calls start and end), together on a line of their own: away from the
  // mutex, the mailbox and the rest of what only the runner touches for every call.
  // Calls pushed without the mutex, newest first, linked by TaskRecord::next_call; each
  // owns itself through its queued_self. closed_intake() (actor.cc) once closed.
  alignas(64) std::atomic<TaskRecord*> intake_{nullptr};
  // Runner fibers started or queued: changed under mutex_, read without it by submit.
  std::atomic<int> runners_{0};
  // running_.size(), written under mutex_ as it changes, read without it by submit.
  std::atomic<int> busy_{0};
};

}  // namespace spindle::detail
