// The task record: what the scheduler keeps of a submitted task and mutates as it runs.
//
// A record and the task's body (the typed function, its arguments and a share of the result
// object, which task.hpp builds) share one allocation: the body sits right after the record.
// The result is a block of its own, shared with the refs. The scheduler alone owns the
// record, which is freed once the task has run for good: a kept ref keeps the result only.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "runtime/assert.hpp"
#include "spindle/detail/execution_context.hpp"
#include "spindle/object_ref.hpp"
#include "spindle/task.hpp"

namespace spindle::detail {

class TaskRecord final : public ExecutionContext,
                         public Waiter,
                         public std::enable_shared_from_this<TaskRecord> {
 public:
  enum class Phase : std::uint8_t { waiting, queued, running, finished };

  TaskRecord(Scheduler& scheduler, std::shared_ptr<const TaskSpec> spec);
  ~TaskRecord() override;
  TaskRecord(const TaskRecord&) = delete;
  TaskRecord& operator=(const TaskRecord&) = delete;

  /// Made by allocate_task, once placed in the block after the record.
  void attach(TaskBody& body) noexcept;

  /// Runs the function on resolved arguments and keeps its result aside; may throw.
  void run() { body_->run(); }
  /// Makes the kept result the value of the task's object (see TaskBody::publish).
  void publish() { body_->publish(); }
  /// The task's object; not after detach_result.
  [[nodiscard]] ObjectStateBase& result() noexcept {
    SPINDLE_ASSERT(!result_detached_);
    return body_->result();
  }
  /// Lets go of the result of a task that finished for good: the record no longer reaches
  /// it, nor it the record. Called by the thread that finished it, or by the destructor;
  /// others may still hold the record, but read its result only while it is not finished.
  void detach_result() noexcept;
  void dependencies(std::vector<ObjectStateBase*>& out) const { body_->dependencies(out); }
  void inputs(std::vector<DataInput>& out) const { body_->inputs(out); }
  [[nodiscard]] std::optional<ArgumentFailure> failed_argument() const {
    return body_->failed_argument();
  }
  /// Drops the arguments of a task that will not run again. Only its settling thread may call
  /// it, once nothing else reads them: an actor's creation keeps them to build it again.
  void release_arguments() noexcept {
    if (!creates_actor) body_->release_arguments();
  }
  /// Drops the arguments even of an actor's creation: its actor is dead for good.
  void release_creation_arguments() noexcept { body_->release_arguments(); }
  /// Fails a task that will never run. With `drop_arguments` (when nothing else can be
  /// reading them), its arguments go first.
  void fail_unrun(std::exception_ptr error, bool drop_arguments = true) noexcept {
    if (drop_arguments) release_arguments();
    result().fail(std::move(error));
  }

  /// A dependency completed.
  void on_complete() noexcept override;
  /// A call of an actor's method (not its creation). creates_actor is read first: it never
  /// changes once the task is made, while a creation's `actor` is reset on a worker when the
  /// actor dies (Runtime::cancel may ask from another thread at that moment).
  [[nodiscard]] bool is_actor_call() const noexcept { return !creates_actor && actor; }

  /// The scheduler it was made for, which is also its context's owner.
  [[nodiscard]] Scheduler& scheduler() const noexcept;

  // Fields are ordered so that the small ones share words: a queued task costs its record.

  /// Fixed once the task is queued; placement swaps a codelet's for its GPU variant, under
  /// the scheduler's mutex, as it queues.
  std::shared_ptr<const TaskSpec> spec;
  std::uint64_t id = 0;
  std::atomic<std::int32_t> pending_dependencies{0};
  /// Runs started; written only by whoever starts the task.
  int attempts = 0;
  /// Moves forward only (a retry queues it again); changed by compare-and-swap where a
  /// cancel may race (the scheduler's lanes), else under the owner's mutex (scheduler, actor).
  std::atomic<Phase> phase{Phase::waiting};
  std::atomic<bool> cancel_requested{false};
  /// An actor call's caller cancelled it (not a kill): it is never run again. Under the
  /// actor's mutex.
  bool cancelled_by_caller = false;
  /// Set on an actor's creation: on success its allocation passes to the actor.
  bool creates_actor = false;
  /// Its demand is one CPU: it queues in a worker's lane and runs on that worker's credit.
  bool lane = false;
  /// The kind placement chose, counted by it until the task finishes; guarded by the
  /// scheduler's mutex once the task is resolved.
  std::optional<DeviceKind> placed_on;
  /// The actor this task creates, or whose method it calls; null for plain tasks. A creation
  /// drops it once it completes, so that actor and creation do not own each other.
  std::shared_ptr<ActorCore> actor;
  /// While it is listed in a lane, or in an actor's intake or mailbox (whose entries are plain
  /// pointers), the record owns itself through this; whoever takes the entry takes the
  /// ownership.
  std::shared_ptr<TaskRecord> queued_self;
  /// An actor call in its actor's intake (ActorCore::submit): the next one, pushed before it;
  /// in its mailbox (CallList): the next one in call order.
  TaskRecord* next_call = nullptr;
  /// A codelet's: the bytes of its arguments, and the run time placement expected (0 when
  /// the model had no estimate).
  std::size_t input_bytes = 0;
  double expected_seconds = 0;

 private:
  TaskBody* body_ = nullptr;  // in the same block, after the record; null until attached
  bool result_detached_ = false;
};

}  // namespace spindle::detail
