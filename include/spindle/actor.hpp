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

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

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
  /// Times a call interrupted by a crash (or a kill with no_restart = false) runs again on
  /// the rebuilt instance; -1: no limit.
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
  /// The rank it lives on in cluster mode (spindle/cluster.hpp): a class registered with
  /// SPINDLE_REMOTE_ACTOR may live on any rank; -1 lets placement choose one whose totals
  /// fit its demand. Without a cluster only -1 and 0 (this process) are allowed.
  int rank = -1;
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
  /// The options as given, kept where the actor may live on another rank (see TaskSpec).
  std::shared_ptr<const ActorOptions> options;
};

/// Where an actor of class `type` with `spec` lives in cluster mode: the rank and the
/// registered class when on another rank, else -1 and null (here).
/// @throws InvalidArgumentError for a class pinned to another rank but not registered.
std::pair<int, const RemoteActorClass*> remote_actor_placement(const ActorSpec& spec,
                                                               std::type_index type);
/// Checks that a registered class's constructor (or method) takes `arguments`, decayed and
/// resolved: a std::tuple of their types.
void check_remote_constructor(const RemoteActorClass& type, std::type_index arguments);
void check_remote_parameters(const RemoteMethod& method, std::type_index arguments);

/// The scheduler's part of an actor (src/runtime): its queue of calls, state and upkeep.
class ActorCore;
template <typename T, typename... A>
class TypedRemoteActorClass;  // spindle/cluster.hpp
struct HandleAccess;          // spindle/cluster.hpp: a handle sent to another rank

/// While one lives on a thread, actors made there claim no name across the cluster: the rank
/// that hosts an actor for another makes it so, and its creator claimed the name.
class HostingActor {
 public:
  HostingActor();
  ~HostingActor();
  HostingActor(const HostingActor&) = delete;
  HostingActor& operator=(const HostingActor&) = delete;
};

/// The typed part of an actor: its instance, built by the creation, destroyed by the runtime.
class ActorInstance {
 public:
  ActorInstance() = default;
  ActorInstance(const ActorInstance&) = delete;
  ActorInstance& operator=(const ActorInstance&) = delete;
  virtual ~ActorInstance() = default;
  virtual void destroy() noexcept = 0;
};

template <typename T>
class ActorState final : public ActorInstance {
 public:
  [[nodiscard]] T& instance() noexcept { return *instance_; }
  void destroy() noexcept override { instance_.reset(); }
  std::unique_ptr<T> instance_;
};

/// The invoker of an actor's creation: builds the instance from the resolved arguments.
template <typename T>
struct ConstructActor {
  ActorState<T>* actor;
  template <typename... Args>
  void operator()(const Args&... args) const {
    if constexpr (std::is_constructible_v<T, const Args&...>) {
      actor->instance_ = std::make_unique<T>(args...);
    } else {  // an aggregate: Clang before 16 has no parenthesised aggregate initialisation
      actor->instance_.reset(new T{args...});
    }
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
/// A new actor's core, holding `instance` (not yet built).
std::shared_ptr<ActorCore> make_actor(Runtime& runtime, std::shared_ptr<const ActorSpec> spec,
                                      std::unique_ptr<ActorInstance> instance);
/// Registers the actor (and its name) and submits its creation; returns the handle pointer:
/// a count of handles that tells the actor when the last is gone. With get_if_exists and a
/// live actor of that name, returns that actor's handle pointer instead and drops this one.
/// @throws InvalidArgumentError for a name taken by a live actor (or one of another class).
std::shared_ptr<ActorCore> launch_actor(Runtime& runtime, std::shared_ptr<ActorCore> core,
                                        std::shared_ptr<TaskRecord> creation,
                                        std::shared_ptr<ObjectState<void>> created,
                                        const std::type_info& type);
/// A live actor found by its name: here, or made from here on another rank.
struct FoundActor {
  std::shared_ptr<ActorCore> local;  // a handle pointer (see launch_actor)
  std::shared_ptr<const RemoteActor> remote;
  explicit operator bool() const { return local || remote; }
};
/// A named actor's name across the cluster: the live actor that has it, or the claim made.
struct ClusterClaim {
  FoundActor found;                    // here, or borrowed: made by another process
  std::shared_ptr<ClusterName> claim;  // null where no claim is needed
};
/// In a cluster of more than one rank, claims the name of a named actor of a registered
/// class about to be made with `spec` on `host` (-1: this rank). Nothing is claimed for an
/// unnamed actor, an unregistered class, or one made for another rank (HostingActor).
ClusterClaim claim_cluster_name(const ActorSpec& spec, std::type_index type, int host);
/// Lets other ranks call a local actor just made under `claim` (its handle pointer
/// `handle`), and settles the claim; `made` is the core made for it (launch_actor may have
/// returned another actor of that name instead: then the claim is released).
void expose_cluster_name(std::shared_ptr<ClusterName> claim,
                         const std::shared_ptr<ActorCore>& handle, const ActorCore* made,
                         std::type_index type);
/// Where another rank calls the actor a handle refers to (local: `handle`, its handle
/// pointer; else `remote`), for the handle to travel there; a local actor is shown to other
/// ranks for as long as it lives. A default address (host -1) for an empty handle.
/// @throws Error outside a cluster, or for a class not registered with SPINDLE_REMOTE_ACTOR.
NamedAddress address_to_send(const std::shared_ptr<ActorCore>& handle,
                             const std::shared_ptr<const RemoteActor>& remote,
                             std::type_index type);
/// The actor a handle that arrived refers to (none for an empty one): borrowed, unless it is
/// one of this process's own.
/// @throws InvalidArgumentError for an actor of another class than `type`.
FoundActor received_actor(const NamedAddress& address, const std::string& name,
                          std::type_index type);
/// The live actor called `name` made by another process of the cluster, borrowed (or none).
/// @throws InvalidArgumentError if it is not of class `type`.
FoundActor find_cluster_actor(const std::string& name, std::type_index type);
/// The live actor called `name`, or none.
/// @throws InvalidArgumentError if it is not of class `type`.
FoundActor find_named_actor(Runtime& runtime, const std::string& name,
                            const std::type_info& type);
/// As find_named_actor. @throws InvalidArgumentError if there is none.
FoundActor find_actor(Runtime& runtime, const std::string& name, const std::type_info& type);
/// Claims `name` for `remote`, an actor of class `type` made on another rank, so that
/// find_actor finds it while a handle here holds it and its creation has not failed. Returns
/// the live actor that has the name instead, if there is one (nothing is claimed then).
FoundActor claim_remote_name(Runtime& runtime, const std::string& name,
                             const std::type_info& type,
                             const std::shared_ptr<const RemoteActor>& remote);
/// Frees the name of an actor on another rank (it was killed).
void release_remote_name(Runtime& runtime, const RemoteActor& remote);
/// The error for a name taken by a live actor.
InvalidArgumentError name_taken(const std::string& name);

// What a handle asks of its actor (defined with the runtime).
ActorInstance& instance_of(ActorCore& actor) noexcept;
Scheduler& scheduler_of(ActorCore& actor) noexcept;
const std::shared_ptr<const TaskSpec>& call_spec_of(const ActorCore& actor) noexcept;
const std::string& name_of(const ActorCore& actor) noexcept;
std::uint64_t id_of(const ActorCore& actor) noexcept;
std::shared_ptr<ObjectState<void>> created_of(const ActorCore& actor);
/// Queues a call made by ActorHandle::call; a dead actor fails it at once.
/// @throws PendingCallsLimitError when max_pending_calls calls already wait.
void submit_call(ActorCore& actor, std::shared_ptr<TaskRecord> call);
void kill(ActorCore& actor, bool no_restart) noexcept;

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
    if (remote_) return call_there(method, args...);
    using Call = detail::TypedTask<Invoker, std::decay_t<Args>...>;
    detail::ActorCore& actor = checked();
    auto [call, body] = detail::make_task<Call>(detail::scheduler_of(actor),
                                                detail::call_spec_of(actor),
                                                Invoker{state_, std::move(method)},
                                                std::forward<Args>(args)...);
    auto ref = detail::result_ref(*body);
    detail::submit_call(actor, std::move(call));
    return ref;
  }

  /// @brief Ready once the constructor has run; failed if it threw or the actor was killed
  /// before it was built.
  [[nodiscard]] ObjectRef<void> ready() const {
    if (remote_) return ObjectRef<void>(remote_->created);
    return ObjectRef<void>(detail::created_of(checked()));
  }

  [[nodiscard]] bool valid() const noexcept { return core_ != nullptr || remote_ != nullptr; }
  /// The actor's name: its options' name, or its class's.
  [[nodiscard]] const std::string& name() const {
    return remote_ ? remote_->name : detail::name_of(checked());
  }
  /// Its id, unique in the process that holds it (for an actor on another rank: in this one).
  [[nodiscard]] std::uint64_t id() const {
    return remote_ ? remote_->id : detail::id_of(checked());
  }
  /// The rank it lives on: this one's, unless it was created on another.
  [[nodiscard]] int rank() const;

  friend bool operator==(const ActorHandle& a, const ActorHandle& b) {
    return a.core_ == b.core_ && a.remote_ == b.remote_;
  }

 private:
  friend class Runtime;
  template <typename>
  friend class ActorFactory;
  template <typename, typename...>
  friend class detail::TypedRemoteActorClass;
  friend struct detail::HandleAccess;

  /// `core` counts handles (see detail::launch_actor).
  explicit ActorHandle(std::shared_ptr<detail::ActorCore> core)
      : core_(std::move(core)),
        state_(&static_cast<detail::ActorState<T>&>(detail::instance_of(*core_))) {}

  explicit ActorHandle(std::shared_ptr<const detail::RemoteActor> remote)
      : remote_(std::move(remote)) {}

  explicit ActorHandle(detail::FoundActor found) {
    if (found.remote) {
      remote_ = std::move(found.remote);
    } else {
      *this = ActorHandle(std::move(found.local));
    }
  }

  // A call of an actor on another rank: its method must be registered, and its arguments are
  // sent at once (refs among them waited for here, so that calls keep their order).
  template <typename Method, typename... Args>
  auto call_there(const Method& method, const Args&... args) const {
    using Value = std::remove_cvref_t<
        std::invoke_result_t<const detail::BoundMethod<T, Method>&,
                             typename detail::Resolved<std::decay_t<Args>>::type...>>;
    const detail::RemoteMethod* registered = nullptr;
    if constexpr (std::is_member_function_pointer_v<Method>) {
      registered = detail::find_remote_method(typeid(T), typeid(Method), &method);
    }
    if (!registered) {
      throw InvalidArgumentError(
          "actor '" + remote_->name + "' lives on rank " + std::to_string(remote_->rank) +
          ": only its methods registered with SPINDLE_REMOTE_METHOD(" + remote_->type->name() +
          ", method) can be called there");
    }
    detail::check_remote_parameters(
        *registered, typeid(std::tuple<std::remove_cvref_t<
                         typename detail::Resolved<std::decay_t<Args>>::type>...>));
    using Views = std::tuple<const std::remove_cvref_t<
        typename detail::Resolved<std::decay_t<Args>>::type>&...>;
    Views views(detail::resolve_waiting(args)...);
    auto state = std::make_shared<detail::ObjectState<Value>>();
    detail::ClusterLink& link = detail::live_cluster_link(registered->name());
    detail::RemoteReply reply = remote_->counted(detail::reply_into(state, *registered));
    try {
      link.call_actor(*remote_, *registered, &views, reply);
    } catch (...) {  // not sent: it is not counted
      reply({}, std::current_exception());
      throw;
    }
    return ObjectRef<Value>(std::move(state));
  }

  detail::ActorCore& checked() const {
    if (!core_) {
      throw InvalidArgumentError(
          "this ActorHandle is empty: default-constructed or moved from, it refers to no actor");
    }
    return *core_;
  }

  std::shared_ptr<detail::ActorCore> core_;
  detail::ActorState<T>* state_ = nullptr;
  std::shared_ptr<const detail::RemoteActor> remote_;  // set for an actor on another rank
};

template <typename T>
int ActorHandle<T>::rank() const {
  if (remote_) return remote_->rank;
  detail::ClusterLink* link = detail::cluster_link();
  return link ? link->rank() : 0;
}

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
    static_assert(std::is_nothrow_destructible_v<T>,
                  "spindle: an actor class must not throw from its destructor: the instance is "
                  "destroyed on a worker (at its end, or before a rebuild), where no caller "
                  "could catch the exception. Make the destructor noexcept");
    detail::check_storable<std::decay_t<Args>...>();
    if (spec_->options) {  // cluster mode, or a rank given
      if (!spec_->registered_name.empty()) {  // it may live here or on another rank
        detail::FoundActor live =
            detail::find_named_actor(*runtime_, spec_->registered_name, typeid(T));
        if (live && spec_->get_if_exists) return ActorHandle<T>(std::move(live));
        if (live) throw detail::name_taken(spec_->registered_name);
      }
      auto [rank, type] = detail::remote_actor_placement(*spec_, typeid(T));
      if (type) return create_there(rank, *type, args...);
    }
    // In a cluster, the name is claimed across it first (a round trip to rank 0).
    std::shared_ptr<detail::ClusterName> claim;
    if (spec_->options && !spec_->registered_name.empty()) {
      detail::ClusterClaim named = detail::claim_cluster_name(*spec_, typeid(T), -1);
      if (named.found && spec_->get_if_exists) return ActorHandle<T>(std::move(named.found));
      if (named.found) throw detail::name_taken(spec_->registered_name);
      claim = std::move(named.claim);
    }
    using Creation = detail::TypedTask<detail::ConstructActor<T>, std::decay_t<Args>...>;
    auto state = std::make_unique<detail::ActorState<T>>();
    detail::ActorState<T>* instance = state.get();
    std::shared_ptr<detail::ActorCore> core = detail::make_actor(*runtime_, spec_, std::move(state));
    const detail::ActorCore* made = core.get();
    auto [creation, body] = detail::make_task<Creation>(
        detail::scheduler_of(*core), spec_->creation, detail::ConstructActor<T>{instance},
        std::forward<Args>(args)...);
    std::shared_ptr<detail::ObjectState<void>> created = detail::result_ref(*body).state();
    ActorHandle<T> handle(detail::launch_actor(*runtime_, std::move(core), std::move(creation),
                                               std::move(created), typeid(T)));
    if (claim) detail::expose_cluster_name(std::move(claim), handle.core_, made, typeid(T));
    return handle;
  }

 private:
  // An actor on another rank: its constructor's arguments are sent at once (refs among them
  // waited for here); the handle's ready() tells when it is built there.
  template <typename... Args>
  ActorHandle<T> create_there(int rank, const detail::RemoteActorClass& type,
                              const Args&... args) const {
    using Views = std::tuple<const std::remove_cvref_t<
        typename detail::Resolved<std::decay_t<Args>>::type>&...>;
    detail::check_remote_constructor(
        type, typeid(std::tuple<std::remove_cvref_t<
                  typename detail::Resolved<std::decay_t<Args>>::type>...>));
    Views views(detail::resolve_waiting(args)...);
    detail::ClusterLink& link = detail::live_cluster_link(spec_->name);
    auto remote = std::make_shared<detail::RemoteActor>();
    if (!spec_->registered_name.empty()) {  // claimed across the cluster first
      detail::ClusterClaim named = detail::claim_cluster_name(*spec_, typeid(T), rank);
      if (named.found && spec_->get_if_exists) return ActorHandle<T>(std::move(named.found));
      if (named.found) throw detail::name_taken(spec_->registered_name);
      remote->cluster_name = std::move(named.claim);
    }
    remote->rank = rank;
    remote->id = remote->cluster_name ? remote->cluster_name->address().actor
                                      : link.next_actor_id();
    remote->name = spec_->name;
    remote->type = &type;
    remote->created = std::make_shared<detail::ObjectState<void>>();
    remote->max_pending_calls = spec_->max_pending_calls;
    link.create_actor(rank, remote->id, type, &views, *spec_->options,
                      detail::reply_created(remote->created, remote->cluster_name));
    // The name is claimed once the actor has its id, so that whoever finds it can call it.
    if (!spec_->registered_name.empty()) {
      detail::FoundActor live =
          detail::claim_remote_name(*runtime_, spec_->registered_name, typeid(T), remote);
      // Another thread made one meanwhile: this one is dropped (released there).
      if (live && spec_->get_if_exists) return ActorHandle<T>(std::move(live));
      if (live) throw detail::name_taken(spec_->registered_name);
    }
    return ActorHandle<T>(std::move(remote));
  }

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
