// Actors: the queue of calls, runners, crashes, restarts and death. See actor.hpp.
#include "spindle/actor.hpp"

#include <algorithm>
#include <boost/fiber/operations.hpp>
#include <cstdint>
#include <utility>

#include "fibers/spin.hpp"
#include "fibers/worker_algorithm.hpp"
#include "runtime/actor_core.hpp"
#include "runtime/scheduler.hpp"
#include "spindle/runtime.hpp"

namespace spindle::detail {
namespace {

// A runner lets the other fibers of its worker run after this many calls in a row.
constexpr int kCallsBetweenYields = 32;

bool is_crash(std::exception_ptr error, bool crash_on_exception) {
  if (crash_on_exception) return true;
  try {
    std::rethrow_exception(error);
  } catch (const ActorCrash&) {
    return true;
  } catch (...) {
    return false;
  }
}

// The creation's TaskError nests what the constructor threw: that is the cause to report.
std::exception_ptr constructor_exception(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const TaskError& task_error) {
    if (const auto* nested = dynamic_cast<const std::nested_exception*>(&task_error)) {
      if (nested->nested_ptr()) return nested->nested_ptr();
    }
  } catch (...) {
  }
  return error;
}

std::string limit_text(int limit) { return limit < 0 ? "no limit" : std::to_string(limit); }

// The intake's value once closed: no record is at this address.
TaskRecord* closed_intake() noexcept { return reinterpret_cast<TaskRecord*>(std::uintptr_t{1}); }

}  // namespace

CallList::CallList(CallList&& other) noexcept
    : head_(std::exchange(other.head_, nullptr)),
      tail_(std::exchange(other.tail_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

CallList& CallList::operator=(CallList&& other) noexcept {
  if (this == &other) return *this;
  CallList dropped(std::move(*this));
  head_ = std::exchange(other.head_, nullptr);
  tail_ = std::exchange(other.tail_, nullptr);
  size_ = std::exchange(other.size_, 0);
  return *this;
}

CallList::~CallList() {
  while (pop_front()) {
  }
}

void CallList::push_back(std::shared_ptr<TaskRecord> call) noexcept {
  TaskRecord* record = call.get();
  record->queued_self = std::move(call);
  append_owned(record, record, 1);
}

void CallList::append_owned(TaskRecord* oldest, TaskRecord* newest, std::size_t count) noexcept {
  if (!oldest) return;
  newest->next_call = nullptr;
  (tail_ ? tail_->next_call : head_) = oldest;
  tail_ = newest;
  size_ += count;
}

std::shared_ptr<TaskRecord> CallList::pop_front() noexcept {
  if (!head_) return nullptr;
  TaskRecord* record = std::exchange(head_, head_->next_call);
  if (!head_) tail_ = nullptr;
  --size_;
  record->next_call = nullptr;
  return std::move(record->queued_self);
}

void CallList::insert_by_id(std::shared_ptr<TaskRecord> call) noexcept {
  TaskRecord* record = call.get();
  TaskRecord** link = &head_;  // past every call whose id is not greater
  while (*link && (*link)->id <= record->id) link = &(*link)->next_call;
  record->queued_self = std::move(call);
  record->next_call = *link;
  *link = record;
  if (!record->next_call) tail_ = record;
  ++size_;
}

std::shared_ptr<TaskRecord> CallList::remove(const TaskRecord& call) noexcept {
  TaskRecord* before = nullptr;
  for (TaskRecord* at = head_; at; before = at, at = at->next_call) {
    if (at != &call) continue;
    (before ? before->next_call : head_) = at->next_call;
    if (tail_ == at) tail_ = before;
    --size_;
    at->next_call = nullptr;
    return std::move(at->queued_self);
  }
  return nullptr;
}

ActorCore::ActorCore(Scheduler& scheduler, std::shared_ptr<const ActorSpec> spec,
                     std::unique_ptr<ActorInstance> instance)
    : scheduler(scheduler),
      spec(std::move(spec)),
      instance(std::move(instance)),
      id(scheduler.next_id()) {}

// Each call in the intake holds the actor (TaskRecord::actor): it is empty by now.
ActorCore::~ActorCore() { SPINDLE_ASSERT(!intake_holds_calls()); }

std::exception_ptr ActorCore::died_error(const std::string& why, std::exception_ptr cause) const {
  std::string message = "actor '" + spec->name + "' (#" + std::to_string(id) + ") " + why;
  if (!cause) return std::make_exception_ptr(ActorDiedError(message));
  return with_nested(ActorDiedError(message + ": " + what_of(cause)), cause);
}

void ActorCore::submit(std::shared_ptr<TaskRecord> call) {
  std::vector<ObjectStateBase*> dependencies;
  call->dependencies(dependencies);  // throws for an empty ref, before anything is queued
  call->actor = shared_from_this();
  call->id = scheduler.next_id();
  const bool resolved = dependencies.empty();
  call->pending_dependencies.store(
      resolved ? 0 : static_cast<std::int32_t>(dependencies.size()) + 1, std::memory_order_relaxed);
  // Without the mutex when nothing needs counting or waiting for (see the class comment).
  // Once pushed, the call may run and be gone at any moment: only counts are read after.
  if (resolved && spec->max_pending_calls < 0 && push_intake(call)) {
    // A runner between calls takes it; so does a busy one, once no other call may start.
    const int runners = runners_.load();
    const int busy = busy_.load();
    if (runners > busy || (runners > 0 && busy >= spec->max_concurrency)) return;
    MutexLock lock(mutex_);
    wake_locked();
    return;
  }
  std::exception_ptr refused;
  {
    MutexLock lock(mutex_);
    drain_intake_locked();  // calls pushed before this one go first, and count
    if (state_ == State::dead) {
      refused = cause_;  // what it died of
    } else if (killed_ && no_restart_) {
      refused = died_error("was killed", nullptr);
    } else if (stopping_) {
      refused = cancelled_error(*call, "the runtime is shutting down");
    } else {
      if (spec->max_pending_calls >= 0 &&
          mailbox_.size() >= static_cast<std::size_t>(spec->max_pending_calls)) {
        throw PendingCallsLimitError(
            "actor '" + spec->name +
            "': max_pending_calls = " + std::to_string(spec->max_pending_calls) +
            " calls already wait; the call was not queued (wait for some results first)");
      }
      call->phase = TaskRecord::Phase::waiting;
      mailbox_.push_back(call);
      if (resolved) wake_locked();
    }
  }
  if (refused) {
    call->phase = TaskRecord::Phase::finished;
    scheduler.count_call(true);
    call->fail_unrun(refused);
    return;
  }
  if (resolved) return;
  for (ObjectStateBase* dependency : dependencies) {
    if (!dependency->add_waiter(call)) call->pending_dependencies.fetch_sub(1);
  }
  call->on_complete();  // the +1 above: all are registered
}

bool ActorCore::push_intake(std::shared_ptr<TaskRecord>& call) noexcept {
  TaskRecord* record = call.get();
  record->queued_self = std::move(call);  // the intake's ownership, before a drain can see it
  TaskRecord* head = intake_.load(std::memory_order_relaxed);
  do {
    if (head == closed_intake()) {
      call = std::move(record->queued_self);
      return false;
    }
    record->next_call = head;
  } while (!intake_.compare_exchange_weak(head, record, std::memory_order_seq_cst,
                                          std::memory_order_relaxed));
  return true;
}

void ActorCore::drain_intake_locked(bool close) {
  // Sequentially consistent: it follows a change of runners_ or busy_ (see submit).
  TaskRecord* newest = intake_.load();
  if (newest == closed_intake() || (newest == nullptr && !close)) return;
  // Only pushes change it meanwhile, and they leave it a list: closing is done here.
  newest = intake_.exchange(close ? closed_intake() : nullptr, std::memory_order_acq_rel);
  TaskRecord* const last = newest;
  TaskRecord* oldest = nullptr;
  std::size_t count = 0;
  while (newest) {  // newest first: reversed, into call order
    TaskRecord* next = std::exchange(newest->next_call, oldest);
    oldest = std::exchange(newest, next);
    ++count;
  }
  mailbox_.append_owned(oldest, last, count);
}

bool ActorCore::intake_holds_calls() const noexcept {
  TaskRecord* newest = intake_.load();
  return newest != nullptr && newest != closed_intake();
}

void ActorCore::call_resolved() noexcept {
  MutexLock lock(mutex_);
  wake_locked();
}

bool ActorCore::upkeep_due_locked() const {
  if (state_ != State::alive || upkeep_running_ || !running_.empty()) return false;
  return crashed_ || stopping_ || (orphaned_ && mailbox_.empty());
}

bool ActorCore::may_start_locked() const {
  return state_ == State::alive && !crashed_ && !upkeep_running_ &&
         running_.size() < static_cast<std::size_t>(spec->max_concurrency) && !mailbox_.empty() &&
         mailbox_.front().pending_dependencies.load(std::memory_order_acquire) == 0;
}

// A runner is started only when every runner is busy in a call: an idle one (queued, or
// between calls) looks at the queue again before it leaves.
void ActorCore::wake_locked() {
  events_.fetch_add(1, std::memory_order_release);  // a lingering runner looks again
  if (static_cast<std::size_t>(runners_.load(std::memory_order_relaxed)) > running_.size()) return;
  drain_intake_locked();
  if (!upkeep_due_locked() && !may_start_locked()) return;
  runners_.fetch_add(1);
  scheduler.post_actor(shared_from_this());
}

std::shared_ptr<TaskRecord> ActorCore::take_locked() {
  drain_intake_locked();
  if (!may_start_locked()) return nullptr;
  std::shared_ptr<TaskRecord> call = mailbox_.pop_front();
  call->phase = TaskRecord::Phase::running;
  ++call->attempts;
  running_.push_back(call.get());
  busy_.store(static_cast<int>(running_.size()));  // before wake_locked reads the intake
  wake_locked();  // with max_concurrency > 1, the next call may start on another worker
  return call;
}

// Between calls a runner runs nothing: status() counts it idle (the scheduler's lingering
// count) from before its call's result is published until it starts another call or upkeep,
// or has left, so that a caller that got every result sees nothing running.
void ActorCore::run(unsigned worker) {
  MutexLock lock(mutex_);
  int calls = 0;
  bool idle = false;
  auto set_idle = [&](bool now) {
    if (now != idle) scheduler.count_lingering(now ? 1 : -1);
    idle = now;
  };
  for (;;) {
    if (std::shared_ptr<TaskRecord> call = take_locked()) {
      set_idle(false);
      lock.unlock();
      // The call is released here, outside the lock; once its result is out, the runner is
      // idle.
      idle = finish(std::move(call), worker);
      if (++calls % kCallsBetweenYields == 0) yield_fiber();
      lock.lock();
    } else if (upkeep_due_locked()) {
      set_idle(false);
      upkeep();
    } else {
      set_idle(true);
      if (linger()) continue;
      // Leaves only if no call was pushed meanwhile (see the class comment).
      runners_.fetch_sub(1);
      if (intake_holds_calls()) {
        runners_.fetch_add(1);
        continue;
      }
      lock.unlock();
      scheduler.actor_run_done();
      set_idle(false);  // after: it may count below what runs for a moment, never above
      return;
    }
  }
}

// A caller that waits for each result makes its next call within microseconds. A runner that
// waits that long for it (yielding, so its worker's other fibers run) takes the call at once;
// one that left would make the call go through the scheduler and often wake a sleeping worker.
bool ActorCore::linger() {
  if (state_ != State::alive) return false;
  const std::uint64_t seen = events_.load(std::memory_order_acquire);
  mutex_.unlock();
  // It runs on its worker's runner: other queued work ends the wait.
  spin_briefly([&] {
    yield_fiber();
    return intake_holds_calls() || events_.load(std::memory_order_acquire) != seen ||
           scheduler.has_queued_work();
  });
  mutex_.lock();
  drain_intake_locked();
  return may_start_locked() || upkeep_due_locked();
}

// run_task makes the call the fiber's current task, restored whenever the fiber resumes.
std::exception_ptr ActorCore::execute(TaskRecord& call, unsigned worker) {
  return scheduler.run_task(call, worker, allocation_ ? &*allocation_ : nullptr);
}

bool ActorCore::finish(std::shared_ptr<TaskRecord> call, unsigned worker) {
  std::exception_ptr error;   // what the method threw
  std::exception_ptr result;  // what the caller sees instead of a value
  if (std::optional<ArgumentFailure> failure = call->failed_argument()) {
    result = task_error(*call, failure->cause,
                        " because its argument " + std::to_string(failure->index) + " failed");
  } else {
    error = execute(*call, worker);
  }
  bool retried = false;
  {
    MutexLock lock(mutex_);
    std::erase(running_, call.get());
    busy_.store(static_cast<int>(running_.size()));  // before this runner's next drain
    bool crash = error && is_crash(error, spec->crash_on_exception);
    if (crash && !crashed_) {
      crashed_ = true;
      cause_ = error;
    }
    if (killed_ || crash) {
      // A kill with no_restart = false counts as a crash: the call may run again.
      bool retry = (spec->max_task_retries < 0 || call->attempts <= spec->max_task_retries) &&
                   !call->cancelled_by_caller;
      if (may_rebuild_locked() && retry) {
        call->phase = TaskRecord::Phase::waiting;
        call->cancel_requested = false;  // what the kill asked of the last attempt
        // First in line for the rebuilt instance, among the other retried calls by call order.
        mailbox_.insert_by_id(call);
        retried = true;
      } else if (killed_) {
        result = died_error("was killed while this call ran", nullptr);
      } else if (may_rebuild_locked()) {
        result = died_error(
            "crashed during call #" + std::to_string(call->id) +
                "; it restarts, but max_task_retries = " + limit_text(spec->max_task_retries) +
                " allows no further attempt of the call",
            error);
      } else {
        result = died_error(
            "crashed with no restarts left (max_restarts = " + limit_text(spec->max_restarts) + ")",
            error);
      }
    } else if (error) {
      std::string context =
          call->attempts > 1 ? " on attempt " + std::to_string(call->attempts) : "";
      result = task_error(*call, error, context);
    }
    if (!retried) call->phase = TaskRecord::Phase::finished;
  }
  if (retried) return false;
  scheduler.count_call(result != nullptr);
  call->release_arguments();
  scheduler.count_lingering(1);  // idle from now on (see run)
  if (result) {
    call->result().fail(result);
  } else {
    call->publish();
  }
  scheduler.drop_finished(std::move(call));
  return true;
}

bool ActorCore::may_rebuild_locked() const {
  return !no_restart_ && !stopping_ && (spec->max_restarts < 0 || restarts() < spec->max_restarts);
}

// Destroys the instance and builds it again, or lets the actor die, on this runner's fiber
// and with the creation as the current task: its resources and GPU are the actor's, the GPU
// is current, and the GPU work of the rebuild has finished before the next call starts.
void ActorCore::upkeep() {
  upkeep_running_ = true;
  const bool rebuild = crashed_ && may_rebuild_locked();
  if (rebuild) restarts_.fetch_add(1, std::memory_order_relaxed);
  mutex_.unlock();
  begin_run(*creation, allocation_ ? &*allocation_ : nullptr);
  instance->destroy();
  std::exception_ptr failure;
  if (rebuild) {
    try {
      creation->run();
    } catch (...) {
      failure = std::current_exception();
    }
  }
  // A rebuild whose GPU work failed failed; a dying actor keeps the cause it dies of.
  std::exception_ptr ended = end_run(*creation, failure);
  if (rebuild) failure = ended;
  mutex_.lock();
  upkeep_running_ = false;
  if (rebuild && !failure) {
    // A kill for good that came during the rebuild leaves crashed_ set: the next upkeep
    // destroys the new instance and the actor dies.
    if (!no_restart_) {
      crashed_ = killed_ = false;
      cause_ = nullptr;
    }
    wake_locked();
    return;
  }
  std::exception_ptr cause;
  if (failure) {
    cause =
        died_error("failed in its constructor on restart " + std::to_string(restarts()), failure);
  } else if (stopping_) {
    cause = died_error("was stopped: the runtime shut down", nullptr);
  } else if (killed_) {
    cause = died_error("was killed", nullptr);
  } else if (crashed_) {
    cause = died_error(
        "crashed with no restarts left (max_restarts = " + limit_text(spec->max_restarts) + ")",
        cause_);
  } else {
    cause = died_error("was destroyed: no handle to it was left", nullptr);
  }
  CallList unstarted = die_locked(cause);
  mutex_.unlock();
  bury(std::move(unstarted), cause);
  mutex_.lock();
}

// Closes the intake: later calls take the locked path, which refuses them if they may not
// queue, so that none is left in the intake unseen.
CallList ActorCore::take_mailbox_locked() {
  drain_intake_locked(true);
  CallList calls(std::move(mailbox_));
  calls.for_each([](TaskRecord& call) { call.phase = TaskRecord::Phase::finished; });
  return calls;
}

CallList ActorCore::die_locked(std::exception_ptr cause) {
  state_ = State::dead;
  cause_ = std::move(cause);
  return take_mailbox_locked();
}

void ActorCore::fail_unstarted(CallList calls, std::exception_ptr error) noexcept {
  while (std::shared_ptr<TaskRecord> call = calls.pop_front()) fail_call(*call, error);
}

// After death: fails what never started, returns the resources, and breaks the link from
// the creation back to the actor.
void ActorCore::bury(CallList unstarted, std::exception_ptr cause) noexcept {
  fail_unstarted(std::move(unstarted), cause);
  std::optional<Allocation> allocation = std::move(allocation_);
  allocation_.reset();
  scheduler.actor_died(*this, std::move(allocation));
  creation->actor.reset();
  // No rebuild follows: a kept ref to a call must not keep the constructor's arguments.
  if (creation->phase.load(std::memory_order_acquire) == TaskRecord::Phase::finished) {
    creation->release_creation_arguments();
  }
}

// A call that will never run. Its arguments go unless it still waits for one of them: then
// its submit may still be registering on them (it drops to 0 only once submit is done).
void ActorCore::fail_call(TaskRecord& call, std::exception_ptr error) noexcept {
  scheduler.count_call(true);
  call.fail_unrun(std::move(error),
                  call.pending_dependencies.load(std::memory_order_acquire) == 0);
}

void ActorCore::adopt(Allocation allocation) noexcept { allocation_ = std::move(allocation); }

void ActorCore::on_complete() noexcept {
  std::exception_ptr error = created->error();
  CallList unstarted;
  std::exception_ptr cause;
  {
    MutexLock lock(mutex_);
    if (!error) {
      state_ = State::alive;
      wake_locked();
      return;
    }
    cause = killed_ ? died_error("was killed before it was built", nullptr)
                    : died_error("failed in its constructor", constructor_exception(error));
    unstarted = die_locked(cause);
  }
  bury(std::move(unstarted), cause);
}

void ActorCore::cancel(TaskRecord& call) noexcept {
  std::shared_ptr<TaskRecord> removed;
  {
    MutexLock lock(mutex_);
    call.cancel_requested = true;
    call.cancelled_by_caller = true;
    if (call.phase != TaskRecord::Phase::waiting) return;
    drain_intake_locked();
    removed = mailbox_.remove(call);
    if (!removed) return;
    call.phase = TaskRecord::Phase::finished;
    wake_locked();  // the next call may now be first in line
  }
  scheduler.count_call(true);
  // Its ref was returned, so its submit is over: nothing else reads its arguments.
  removed->fail_unrun(cancelled_error(call, "cancel() was called before it ran"));
}

void ActorCore::kill(bool no_restart) noexcept {
  CallList unstarted;
  std::exception_ptr error;
  bool cancel_creation = false;
  {
    MutexLock lock(mutex_);
    if (state_ == State::dead) return;
    killed_ = crashed_ = true;
    no_restart_ = no_restart_ || no_restart;
    if (!cause_) cause_ = std::make_exception_ptr(ActorCrash("killed"));
    error = died_error("was killed before this call ran", nullptr);
    // As after a crash, calls not started wait for the rebuilt instance, if there is one.
    if (!may_rebuild_locked()) unstarted = take_mailbox_locked();
    for (TaskRecord* call : running_) call->cancel_requested = true;
    cancel_creation = state_ == State::creating && no_restart_;
    wake_locked();
  }
  fail_unstarted(std::move(unstarted), error);
  if (no_restart) scheduler.release_name(*this);     // free for a new actor at once
  if (cancel_creation) scheduler.cancel(*creation);  // if it has not started
}

void ActorCore::handles_gone() noexcept {
  scheduler.drop_cluster_name(*this);  // free across the cluster, as the name is here
  MutexLock lock(mutex_);
  orphaned_ = true;
  wake_locked();
}

void ActorCore::shutdown() noexcept {
  CallList unstarted;
  {
    MutexLock lock(mutex_);
    if (state_ == State::dead) return;
    stopping_ = true;
    unstarted = take_mailbox_locked();
    for (TaskRecord* call : running_) call->cancel_requested = true;
    wake_locked();
  }
  while (std::shared_ptr<TaskRecord> call = unstarted.pop_front()) {
    fail_call(*call, cancelled_error(*call, "the runtime shut down before it ran"));
  }
}

std::shared_ptr<const ActorSpec> make_actor_spec(Runtime& runtime, const ActorOptions& options,
                                                 std::string default_name) {
  if (options.max_concurrency < 1) {
    throw InvalidArgumentError("max_concurrency = " + std::to_string(options.max_concurrency) +
                               ": at least 1 is needed");
  }
  check_limit("max_restarts", options.max_restarts);
  check_limit("max_task_retries", options.max_task_retries);
  if (options.max_pending_calls == 0 || options.max_pending_calls < -1) {
    throw InvalidArgumentError("max_pending_calls = " + std::to_string(options.max_pending_calls) +
                               ": must be -1 (no limit) or at least 1");
  }
  if (options.get_if_exists && options.name.empty()) {
    throw InvalidArgumentError("get_if_exists = true: the actor needs a name to be found by");
  }
  check_rank(options.rank, false);
  auto spec = std::make_shared<ActorSpec>();
  spec->name = options.name.empty() ? std::move(default_name) : options.name;
  spec->registered_name = options.name;
  spec->max_concurrency = options.max_concurrency;
  spec->max_restarts = options.max_restarts;
  spec->max_task_retries = options.max_task_retries;
  spec->max_pending_calls = options.max_pending_calls;
  spec->crash_on_exception = options.crash_on_exception;
  spec->get_if_exists = options.get_if_exists;
  TaskOptions task{.num_cpus = options.num_cpus,
                   .num_gpus = options.num_gpus,
                   .memory = options.memory,
                   .resources = options.resources,
                   .name = spec->name,
                   .device = std::nullopt,
                   .stack_bytes = options.stack_bytes};
  std::shared_ptr<const TaskSpec> creation = make_task_spec(runtime, task, spec->name, "actor");
  auto call = std::make_shared<TaskSpec>(*creation);
  call->cpu_request = nullptr;  // a call keeps the actor's CPU while it waits in get
  spec->creation = std::move(creation);
  spec->call = std::move(call);
  if (cluster_link() || options.rank >= 0) spec->options = std::make_shared<ActorOptions>(options);
  return spec;
}

std::shared_ptr<ActorCore> make_actor(Runtime& runtime, std::shared_ptr<const ActorSpec> spec,
                                      std::unique_ptr<ActorInstance> instance) {
  return std::make_shared<ActorCore>(scheduler_of(runtime), std::move(spec), std::move(instance));
}

std::shared_ptr<ActorCore> launch_actor(Runtime& runtime, std::shared_ptr<ActorCore> core,
                                        std::shared_ptr<TaskRecord> creation,
                                        std::shared_ptr<ObjectState<void>> created,
                                        const std::type_info& type) {
  if (!core->spec->creation->infeasible.empty()) {
    throw InfeasibleError(core->spec->creation->infeasible);
  }
  std::vector<ObjectStateBase*> dependencies;
  creation->dependencies(dependencies);  // throws for an empty ref: nothing registered yet
  core->creation = std::move(creation);
  core->created = std::move(created);
  // Handles share a count of their own: when it drops to zero the actor is told.
  std::shared_ptr<ActorCore> handle(core.get(), [core](ActorCore*) mutable {
    core->handles_gone();
    core.reset();
  });
  Scheduler& scheduler = scheduler_of(runtime);
  if (auto existing = scheduler.add_actor(*core, handle, type)) return existing;
  core->creation->actor = core;  // until it completes or the actor dies
  core->creation->creates_actor = true;
  core->created->add_waiter(core);
  scheduler.submit(core->creation);
  return handle;
}

FoundActor find_named_actor(Runtime& runtime, const std::string& name,
                            const std::type_info& type) {
  return scheduler_of(runtime).find_named_actor(name, type);
}

FoundActor find_actor(Runtime& runtime, const std::string& name, const std::type_info& type) {
  FoundActor found = find_named_actor(runtime, name, type);
  if (!found) found = find_cluster_actor(name, type);  // made from another rank
  if (!found) throw InvalidArgumentError("no live actor is named '" + name + "'");
  return found;
}

FoundActor claim_remote_name(Runtime& runtime, const std::string& name,
                             const std::type_info& type,
                             const std::shared_ptr<const RemoteActor>& remote) {
  return scheduler_of(runtime).claim_remote_name(name, type, remote);
}

void release_remote_name(Runtime& runtime, const RemoteActor& remote) {
  scheduler_of(runtime).release_remote_name(remote);
  if (remote.cluster_name) remote.cluster_name->release();
  ClusterLink* link = cluster_link();
  if (remote.borrowed && link) {  // free at once for this rank's next claim (the host frees it too)
    link->settle_name(remote.name, {remote.rank, remote.owner, remote.id, remote.type->name()},
                      false);
  }
}

InvalidArgumentError name_taken(const std::string& name) {
  return InvalidArgumentError("actor name '" + name +
                              "' is taken by a live actor; names are unique among live "
                              "actors (get_if_exists = true returns the live one)");
}

ActorInstance& instance_of(ActorCore& actor) noexcept { return *actor.instance; }
Scheduler& scheduler_of(ActorCore& actor) noexcept { return actor.scheduler; }
const std::shared_ptr<const TaskSpec>& call_spec_of(const ActorCore& actor) noexcept {
  return actor.spec->call;
}
const std::string& name_of(const ActorCore& actor) noexcept { return actor.spec->name; }
std::uint64_t id_of(const ActorCore& actor) noexcept { return actor.id; }
std::shared_ptr<ObjectState<void>> created_of(const ActorCore& actor) { return actor.created; }
void submit_call(ActorCore& actor, std::shared_ptr<TaskRecord> call) {
  actor.submit(std::move(call));
}
void kill(ActorCore& actor, bool no_restart) noexcept { actor.kill(no_restart); }

}  // namespace spindle::detail

namespace spindle::this_actor {
namespace {

detail::ActorCore* current_actor() {
  detail::TaskRecord* task = detail::current_task();
  return task ? task->actor.get() : nullptr;
}

}  // namespace

bool in_actor() { return current_actor() != nullptr; }

std::uint64_t id() {
  detail::ActorCore* actor = current_actor();
  return actor ? actor->id : 0;
}

std::string name() {
  detail::ActorCore* actor = current_actor();
  return actor ? actor->spec->name : std::string();
}

int restarts() {
  detail::ActorCore* actor = current_actor();
  return actor ? actor->restarts() : 0;
}

bool was_restarted() { return restarts() > 0; }

}  // namespace spindle::this_actor
