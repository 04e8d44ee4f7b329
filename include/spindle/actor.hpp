// Actors: stateful workers. An actor is one instance of a class that lives on the runtime;
// its methods run as calls, in the order they were made, as fibers on the runtime's workers.
//
//   struct Counter { int n = 0; int add(int k) { return n += k; } };
//   spindle::ActorHandle<Counter> c = rt.actor<Counter>().options({.name = "counter"}).remote();
//   spindle::ObjectRef<int> r = c.call(&Counter::add, 5);   // r.get() == 5
//
// Contract:
// - Creation is asynchronous: remote() returns at once; the constructor runs once the actor's
//   resources are free, and calls made meanwhile wait for it. The actor holds its resources
//   (cpu, gpu share, memory, custom) from creation to destruction; a method that blocks in
//   get keeps them.
// - Calls start in the order they were made (across all callers). ObjectRef arguments are
//   resolved before the method runs; a call whose arguments are not ready holds back the
//   calls after it. With max_concurrency = 1 (the default) one call runs at a time; with N, up
//   to N run at once, on any workers, and the class must then be safe for concurrent use.
// - A method's exception fails that call only (TaskError, the exception nested), unless it is
//   an ActorCrash or crash_on_exception is set: then the actor crashes, and within
//   max_restarts it is destroyed and built again from its constructor's arguments.
// - Handles are cheap to copy and may be passed to tasks and other actors. When the last
//   handle is gone and no call is pending, the instance is destroyed on a worker and the
//   resources return to the pool. A self-reference (a handle held by the instance) keeps
//   the actor alive until kill() or the runtime's end.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "spindle/detail/thread_annotations.hpp"
#include "spindle/object_ref.hpp"
#include "spindle/resources.hpp"
#include "spindle/task.hpp"

namespace spindle {

/// @brief How an actor runs: what it holds, how many calls run at once, restarts, its name.
struct ActorOptions {
  /// Held for the actor's life. Ray places a default actor with 1 CPU and then holds 0;
  /// spindle holds what is asked, and 0 by default, so thousands of actors fit on a few cores.
  double num_cpus = 0;
  double num_gpus = 0;
  /// Bytes.
  double memory = 0;
  std::map<std::string, double> resources;
  /// Calls that may run at once, at least 1.
  int max_concurrency = 1;
  /// Times a crashed actor is built again; -1 means without limit.
  int max_restarts = 0;
  /// Times a call interrupted by a crash runs again on the rebuilt instance; -1: no limit.
  int max_task_retries = 0;
  /// Calls that may wait (queued, not yet started) before call() throws
  /// PendingCallsLimitError; -1 means without limit.
  int max_pending_calls = -1;
  /// Any exception from a method crashes the actor, not only ActorCrash.
  bool crash_on_exception = false;
  /// A name to find the actor by (Runtime::get_actor); unique among live actors.
  std::string name;
  /// With a name: return the live actor of that name, if there is one, instead of failing.
  bool get_if_exists = false;
  /// Bytes of stack its constructor and methods need, when more than the runtime's
  /// (RuntimeOptions::stack_bytes). 0 means the runtime's.
  std::size_t stack_bytes = 0;
};

/// @brief Options of Runtime::kill.
struct KillOptions {
  /// Stay dead; otherwise the kill counts as a crash and max_restarts may rebuild the actor.
  bool no_restart = true;
};

namespace detail {

/// What every actor made with the same options shares: checked options and requests.
struct ActorSpec {
  std::string name;             // in messages: options.name, or the class's name
  std::string registered_name;  // options.name; empty when unnamed
  int max_concurrency = 1;
  int max_restarts = 0;
  int max_task_retries = 0;
  int max_pending_calls = -1;
  bool crash_on_exception = false;
  bool get_if_exists = false;
  std::shared_ptr<const TaskSpec> creation;  // the actor's demand, granted once for its life
  std::shared_ptr<const TaskSpec> call;      // the same demand, for this_task and messages
};

/// The untyped part of an actor: its queue of calls, its state, and its upkeep.
///
/// Calls, creation and upkeep (destroying the instance, building it again) run on "runner"
/// fibers: the scheduler starts one when a call is ready or upkeep is due; a runner takes
/// calls in order until none may start, and the last runner out does the upkeep once no call
/// runs. One mutex guards the state; it is never held while user code runs or an object
/// completes (completions run waiters' code, which may call this actor).
class ActorCore : public Waiter, public std::enable_shared_from_this<ActorCore> {
 public:
  ActorCore(Scheduler& scheduler, std::shared_ptr<const ActorSpec> spec);
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
  /// Builds the instance; run again to rebuild it after a crash.
  std::shared_ptr<TaskRecord> creation;
  /// The creation's object: ready once the instance was first built.
  std::shared_ptr<ObjectState<void>> created;
  std::uint64_t id = 0;
  // The scheduler's list of live actors, guarded by its mutex.
  ActorCore* live_prev = nullptr;
  ActorCore* live_next = nullptr;

 protected:
  virtual void destroy_instance() noexcept = 0;

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
  /// Runs a taken call and completes its object (or queues it again after a crash).
  void finish(std::shared_ptr<TaskRecord> call, unsigned worker);
  /// Called and left with mutex_ held; releases it while the instance is built or destroyed.
  void upkeep() SPINDLE_REQUIRES(mutex_);
  /// Waits briefly for more work before a runner leaves; true if there is some.
  bool linger() SPINDLE_REQUIRES(mutex_);
  std::vector<std::shared_ptr<TaskRecord>> die_locked(std::exception_ptr cause) SPINDLE_REQUIRES(mutex_);
  void bury(std::vector<std::shared_ptr<TaskRecord>> unstarted, std::exception_ptr cause) noexcept;
  void fail_unstarted(std::vector<std::shared_ptr<TaskRecord>> calls,
                      std::exception_ptr error) noexcept;
  std::vector<std::shared_ptr<TaskRecord>> take_mailbox_locked() SPINDLE_REQUIRES(mutex_);
  [[nodiscard]] std::exception_ptr died_error(const std::string& why,
                                              std::exception_ptr cause) const;

  Mutex mutex_;
  State state_ SPINDLE_GUARDED_BY(mutex_) = State::creating;
  std::deque<std::shared_ptr<TaskRecord>> mailbox_ SPINDLE_GUARDED_BY(mutex_);  // not started, in order
  std::vector<TaskRecord*> running_ SPINDLE_GUARDED_BY(mutex_);                 // calls running now
  int runners_ SPINDLE_GUARDED_BY(mutex_) = 0;  // runner fibers started or queued
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
};

template <typename T>
class ActorState final : public ActorCore {
 public:
  using ActorCore::ActorCore;
  [[nodiscard]] T& instance() noexcept { return *instance_; }
  std::unique_ptr<T> instance_;

 private:
  void destroy_instance() noexcept override { instance_.reset(); }
};

/// The invoker of an actor's creation: builds the instance from the resolved arguments.
template <typename T>
struct ConstructActor {
  ActorState<T>* actor;
  template <typename... Args>
  void operator()(const Args&... args) const {
    actor->instance_ = std::make_unique<T>(args...);
  }
};

/// The invoker of a call: the method (or any callable taking T&) on the instance.
template <typename T, typename Method>
struct BoundMethod {
  ActorState<T>* actor;
  Method method;
  template <typename... Args>
    requires std::is_invocable_v<const Method&, T&, Args...>
  decltype(auto) operator()(Args&&... args) const {
    return std::invoke(method, actor->instance(), std::forward<Args>(args)...);
  }
};

std::shared_ptr<const ActorSpec> make_actor_spec(Runtime& runtime, const ActorOptions& options,
                                                 std::string default_name);
/// Registers the actor (and its name) and submits its creation. With get_if_exists and a
/// live actor of that name, returns that actor's handle pointer instead and drops this one.
/// @throws InvalidArgumentError for a name taken by a live actor (or one of another class).
std::shared_ptr<ActorCore> launch_actor(Runtime& runtime, const std::shared_ptr<ActorCore>& core,
                                        const std::shared_ptr<ActorCore>& handle,
                                        const std::type_info& type);
/// The handle pointer of the live actor called `name`.
/// @throws InvalidArgumentError if there is none, or it is not of class `type`.
std::shared_ptr<ActorCore> find_actor(Runtime& runtime, const std::string& name,
                                      const std::type_info& type);

}  // namespace detail

/// @brief A handle to an actor: submits calls to its methods. Cheap to copy, safe to share
/// across threads, tasks and actors. The actor lives while a handle (or a pending call) does.
/// @tparam T the actor's class.
template <typename T>
class ActorHandle {
 public:
  /// An empty handle; valid() is false.
  ActorHandle() = default;

  /// @brief Calls `method` (a member function pointer, or any callable taking T&) with
  /// `args`; ObjectRef arguments are resolved first. Calls start in the order they are made.
  /// @return a ref to the result; failed with ActorDiedError if the actor is dead.
  /// @throws PendingCallsLimitError when max_pending_calls calls already wait.
  template <typename Method, typename... Args>
  [[nodiscard]] auto call(Method method, Args&&... args) const {
    using Invoker = detail::BoundMethod<T, Method>;
    detail::check_callable<Invoker, std::decay_t<Args>...>();
    using Call = detail::TypedTask<Invoker, std::decay_t<Args>...>;
    detail::ActorState<T>& actor = checked();
    auto [call, body] =
        detail::make_task<Call>(actor.scheduler, actor.spec->call,
                                Invoker{&actor, std::move(method)}, std::forward<Args>(args)...);
    auto ref = detail::result_ref(call, *body);
    actor.submit(std::move(call));
    return ref;
  }

  /// @brief Ready once the constructor has run; failed if it threw or the actor was killed
  /// before it was built.
  [[nodiscard]] ObjectRef<void> ready() const { return ObjectRef<void>(checked().created); }

  [[nodiscard]] bool valid() const noexcept { return state_ != nullptr; }
  /// The actor's name: its options' name, or its class's.
  [[nodiscard]] const std::string& name() const { return checked().spec->name; }
  [[nodiscard]] std::uint64_t id() const { return checked().id; }

  friend bool operator==(const ActorHandle& a, const ActorHandle& b) {
    return a.state_ == b.state_;
  }

  /// For spindle's use: the handle-counting pointer to the actor's state.
  [[nodiscard]] const std::shared_ptr<detail::ActorState<T>>& state() const noexcept {
    return state_;
  }
  explicit ActorHandle(std::shared_ptr<detail::ActorState<T>> state) : state_(std::move(state)) {}

 private:
  detail::ActorState<T>& checked() const {
    if (!state_) {
      throw InvalidArgumentError(
          "this ActorHandle is empty: default-constructed or moved from, it refers to no actor");
    }
    return *state_;
  }

  std::shared_ptr<detail::ActorState<T>> state_;
};

/// @brief Creates actors of class T. Cheap to copy; made by Runtime::actor.
template <typename T>
class ActorFactory {
 public:
  ActorFactory(Runtime& runtime, std::shared_ptr<const detail::ActorSpec> spec)
      : runtime_(&runtime), spec_(std::move(spec)) {}

  /// @brief The same class with other options.
  /// @throws InvalidArgumentError naming the first option that breaks a rule.
  [[nodiscard]] ActorFactory options(const ActorOptions& options) const {
    return ActorFactory(*runtime_, detail::make_actor_spec(*runtime_, options, spec_->name));
  }

  /// @brief Creates an actor; its constructor runs with `args` (ObjectRefs resolved) once
  /// its resources are free. The arguments are kept to build it again after a crash.
  /// @throws InfeasibleError if the demand exceeds the runtime's totals;
  ///         InvalidArgumentError if the name is taken by a live actor.
  template <typename... Args>
  [[nodiscard]] ActorHandle<T> remote(Args&&... args) const {
    using State = detail::ActorState<T>;
    using Creation = detail::TypedTask<detail::ConstructActor<T>, std::decay_t<Args>...>;
    detail::Scheduler& scheduler = detail::scheduler_of(*runtime_);
    auto actor = std::make_shared<State>(scheduler, spec_);
    auto [creation, body] = detail::make_task<Creation>(
        scheduler, spec_->creation, detail::ConstructActor<T>{actor.get()},
        std::forward<Args>(args)...);
    actor->created = detail::result_ref(creation, *body).state();
    actor->creation = std::move(creation);
    // Handles share a count of their own: when it drops to zero the actor is told.
    std::shared_ptr<State> handle(actor.get(), [actor](State*) mutable {
      actor->handles_gone();
      actor.reset();
    });
    std::shared_ptr<detail::ActorCore> existing =
        detail::launch_actor(*runtime_, actor, handle, typeid(T));
    if (existing) return ActorHandle<T>(std::static_pointer_cast<State>(std::move(existing)));
    return ActorHandle<T>(std::move(handle));
  }

 private:
  Runtime* runtime_;
  std::shared_ptr<const detail::ActorSpec> spec_;
};

/// @brief What an actor's method (or constructor) can learn about its actor. Outside an
/// actor, in_actor() is false and the others return empty values.
namespace this_actor {

[[nodiscard]] bool in_actor();
[[nodiscard]] std::uint64_t id();
[[nodiscard]] std::string name();
/// How many times the actor was built again after a crash.
[[nodiscard]] int restarts();
/// True in an instance built again after a crash (in its constructor too).
[[nodiscard]] bool was_restarted();

}  // namespace this_actor
}  // namespace spindle
