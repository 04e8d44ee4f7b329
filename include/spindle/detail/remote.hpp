// What the runtime knows of cluster mode: functions, actor classes and methods registered to
// run on other ranks (SPINDLE_REMOTE and its kin in spindle/cluster.hpp make them), and the
// link to the cluster that carries their calls. The runtime needs neither MPI nor a
// serialisation library: a registered function encodes its own arguments and result, and the
// cluster layer installs the link.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeindex>
#include <vector>

#include "spindle/object_ref.hpp"

namespace spindle {

class Runtime;
struct TaskOptions;
struct ActorOptions;

namespace detail {

class ActorCore;

/// Values encoded to travel to another rank: their bytes, and the large blocks of raw memory
/// they hold (a big std::vector's elements, a Buffer's), which are sent from where they lie
/// instead of being copied into the bytes.
struct Encoded {
  struct Block {
    const void* data = nullptr;
    std::size_t size = 0;
  };
  std::string bytes;
  std::vector<Block> blocks;
  /// What the blocks point into, where the encoder made or staged it (a result, a GPU
  /// buffer's host copy); the caller's own values are the caller's to keep alive.
  std::vector<std::shared_ptr<const void>> keep;
};

/// Where a received message's blocks come from, in the order they were encoded. Each is
/// received straight into the memory of the value being decoded.
class BlockSource {
 public:
  /// The size of the next block. @throws Error if there is none.
  [[nodiscard]] virtual std::size_t next_size() const = 0;
  /// Receives the next block, of `bytes` bytes (next_size()), into `into`.
  virtual void receive(void* into, std::size_t bytes) = 0;

 protected:
  ~BlockSource() = default;
};

/// A received encoding: its bytes, and where its blocks come from (null: it has none).
struct Received {
  std::string_view bytes;
  BlockSource* blocks = nullptr;
};

/// What a call's answer does where it arrives: given the encoded result, or the failure.
using RemoteReply = std::function<void(Received result, std::exception_ptr failure)>;
/// What sends a call's answer from where it ran: given its encoded result, or the failure.
using RemoteAnswer = std::function<void(const Encoded& result, std::exception_ptr failure)>;

/// What encodes a call's arguments and decodes its result: a registered function or method.
class RemoteCodec {
 public:
  virtual ~RemoteCodec() = default;
  [[nodiscard]] virtual const std::string& name() const = 0;
  /// Appends the encoded arguments to `out`, reserving room for them and a little more.
  /// `arguments` points to a std::tuple<const std::decay_t<P>&...> of the parameters P,
  /// which must outlive the blocks' sending.
  virtual void encode_arguments(const void* arguments, Encoded& out) const = 0;
  /// Stores the decoded result in `*result`, a std::optional<R> (nothing for void).
  virtual void decode_result(Received encoded, void* result) const = 0;
};

/// A function that may run on another rank, found by its address where it is called and by
/// its name where it runs (SPINDLE_REMOTE).
class RemoteFunction : public RemoteCodec {
 public:
  /// Decodes the arguments (a std::tuple<std::decay_t<P>...>), for invoke.
  [[nodiscard]] virtual std::shared_ptr<void> decode_arguments(Received encoded) const = 0;
  /// Calls the function with decoded arguments (moved from) and encodes its result.
  [[nodiscard]] virtual Encoded invoke(void* arguments) const = 0;
};

/// An ActorHandle<T>, its class erased: what the serving rank keeps of an actor.
using AnyActor = std::shared_ptr<void>;

/// An actor class that may live on another rank, with the constructor it is registered with
/// (SPINDLE_REMOTE_ACTOR).
class RemoteActorClass {
 public:
  virtual ~RemoteActorClass() = default;
  [[nodiscard]] virtual const std::string& name() const = 0;
  /// typeid(std::tuple<A...>) of the constructor's parameters A, decayed.
  [[nodiscard]] virtual std::type_index constructor() const = 0;
  /// As RemoteCodec::encode_arguments, for the constructor.
  virtual void encode_arguments(const void* arguments, Encoded& out) const = 0;
  /// Decodes the constructor's arguments (a std::tuple<std::decay_t<A>...>), for create.
  [[nodiscard]] virtual std::shared_ptr<void> decode_arguments(Received encoded) const = 0;
  /// On the serving rank: creates the actor on `runtime` with decoded arguments (moved from).
  [[nodiscard]] virtual AnyActor create(Runtime& runtime, const ActorOptions& options,
                                        void* arguments) const = 0;
  /// Its handle's ready() there.
  [[nodiscard]] virtual ObjectRef<void> ready(const AnyActor& actor) const = 0;
  virtual void kill(Runtime& runtime, const AnyActor& actor, bool no_restart) const = 0;
  /// A handle to a local actor of this class, from its handle pointer (see launch_actor).
  [[nodiscard]] virtual AnyActor wrap(std::shared_ptr<ActorCore> handle) const = 0;
};

/// A method of a registered actor class that may be called from another rank
/// (SPINDLE_REMOTE_METHOD).
class RemoteMethod : public RemoteCodec {
 public:
  [[nodiscard]] virtual std::type_index actor_type() const = 0;
  /// typeid(std::tuple<P...>) of its parameters P, decayed.
  [[nodiscard]] virtual std::type_index parameters() const = 0;
  /// Whether `*method`, a member pointer of type `method_type`, is this method.
  [[nodiscard]] virtual bool is(std::type_index method_type, const void* method) const = 0;
  /// Decodes the method's arguments (a std::tuple<std::decay_t<P>...>), for invoke.
  [[nodiscard]] virtual std::shared_ptr<void> decode_arguments(Received encoded) const = 0;
  /// On the serving rank: calls the method on `actor` with decoded arguments (moved from), in
  /// order with the calls before it; `done` gets the encoded result, or the failure, once it
  /// ends.
  virtual void invoke(Runtime& runtime, const AnyActor& actor, void* arguments,
                      RemoteAnswer done) const = 0;
};

/// Registers `function` under its name; called once per function, before main.
/// @throws std::logic_error if another function has the name.
bool register_remote_function(const void* address, std::unique_ptr<RemoteFunction> function);
/// The registered function at `address`, or null.
[[nodiscard]] const RemoteFunction* find_remote_function(const void* address);
/// The registered function named `name`, or null.
[[nodiscard]] const RemoteFunction* find_remote_function(std::string_view name);
/// The same for actor classes (by class) and their methods.
bool register_remote_actor(std::type_index type, std::unique_ptr<RemoteActorClass> actor);
[[nodiscard]] const RemoteActorClass* find_remote_actor(std::type_index type);
[[nodiscard]] const RemoteActorClass* find_remote_actor(std::string_view name);
bool register_remote_method(std::unique_ptr<RemoteMethod> method);
[[nodiscard]] const RemoteMethod* find_remote_method(std::type_index actor,
                                                     std::type_index method_type,
                                                     const void* method);
[[nodiscard]] const RemoteMethod* find_remote_method(std::string_view name);

/// The custom resource every process of a cluster holds one of, named after its machine:
/// "node:<host name>" (characters a resource name cannot hold become '_').
[[nodiscard]] std::string node_resource();

/// Where a named actor is called from any rank: what the cluster's directory of names (on
/// rank 0) keeps of it.
struct NamedAddress {
  int host = -1;            // the rank it lives on
  int owner = -1;           // the rank whose key it has there (its creator's)
  std::uint64_t actor = 0;  // its id there, under that key
  std::string type;         // its class, as registered

  [[nodiscard]] bool same_actor(const NamedAddress& other) const {
    return host == other.host && owner == other.owner && actor == other.actor;
  }
  template <typename Archive>
  void serialize(Archive& archive) {
    archive(host, owner, actor, type);
  }
};

struct RemoteActor;

/// The cluster a process belongs to (installed by spindle::Cluster while it lives).
class ClusterLink {
 public:
  virtual ~ClusterLink() = default;
  [[nodiscard]] virtual int rank() const = 0;
  [[nodiscard]] virtual int size() const = 0;
  /// The rank a call with these options runs on: options.rank if set, else one whose totals
  /// (custom resources included) fit the demand. Throws InvalidArgumentError for a rank out
  /// of range and InfeasibleError for a demand no rank fits, or its pinned rank does not.
  [[nodiscard]] virtual int place(const TaskOptions& options) = 0;
  using Reply = RemoteReply;
  /// Sends a call of `function` to `rank`; `reply` runs once, on the thread that receives the
  /// answer, never inside send. `arguments` is as RemoteFunction::encode_arguments takes it.
  /// @throws Error if the call cannot be sent (then `reply` never runs).
  virtual void send(int rank, const RemoteFunction& function, const void* arguments,
                    const TaskOptions& options, Reply reply) = 0;
  /// A new id for an actor this rank makes elsewhere or shows to other ranks.
  [[nodiscard]] virtual std::uint64_t next_actor_id() = 0;
  /// Creates an actor of `type` on `rank` under `id` (next_actor_id()); `created` runs once
  /// it is built there (or could not be). Calls sent to the id after this find it.
  virtual void create_actor(int rank, std::uint64_t id, const RemoteActorClass& type,
                            const void* arguments, const ActorOptions& options,
                            Reply created) = 0;
  /// Calls `method` on `actor` (on another rank, or shown from this one), in order with this
  /// rank's calls before.
  virtual void call_actor(const RemoteActor& actor, const RemoteMethod& method,
                          const void* arguments, Reply reply) = 0;
  /// The last handle here is gone: the actor there may end once its calls are done.
  virtual void release_actor(int rank, std::uint64_t actor) noexcept = 0;
  virtual void kill_actor(const RemoteActor& actor, bool no_restart) = 0;
  /// Claims `name` across the cluster for the actor about to be made at `address`: a round
  /// trip to rank 0, which waits while another rank's actor of that name is being made.
  /// Returns the live actor that has the name instead, if there is one (nothing is claimed).
  [[nodiscard]] virtual std::optional<NamedAddress> claim_name(const std::string& name,
                                                               const NamedAddress& address) = 0;
  /// Tells rank 0 that the actor that claimed `name` at `address` was made (`live`), or was
  /// not, or has ended: its name is free. Never blocks: it leaves before this rank's next
  /// claim or look-up, in order.
  virtual void settle_name(const std::string& name, const NamedAddress& address,
                           bool live) noexcept = 0;
  /// The live actor called `name` anywhere in the cluster, if there is one (a round trip to
  /// rank 0).
  [[nodiscard]] virtual std::optional<NamedAddress> find_name(const std::string& name) = 0;
  /// Lets other ranks call a local actor, under (this rank, `id`), while it lives.
  virtual void expose(std::uint64_t id, std::weak_ptr<ActorCore> handle,
                      const RemoteActorClass& type) = 0;
  /// The id under which other ranks call a local actor (`handle`: its handle pointer), shown
  /// to them now if it is not yet.
  [[nodiscard]] virtual std::uint64_t exposed_id(const std::shared_ptr<ActorCore>& handle,
                                                 const RemoteActorClass& type) = 0;
  /// A handle pointer to the local actor shown under (this rank, `id`), if it lives.
  [[nodiscard]] virtual std::shared_ptr<ActorCore> exposed_actor(std::uint64_t id) = 0;
  /// A runtime made in this process: the first one serves the calls other ranks send here.
  virtual void attach(Runtime& runtime) = 0;
  virtual void detach(Runtime& runtime) = 0;
};

/// What a rank tells the cluster's deadlock check of its runtime.
struct Stillness {
  bool still = true;      // nothing here can move until a message comes from another rank
  bool waits = false;     // a task here blocks in get, not yet reported
  std::string described;  // when still: what blocks in get and waits for resources, if any
};
[[nodiscard]] Stillness stillness(Runtime& runtime);
/// Fails the gets that tasks of `runtime` block in with `message`, a deadlock across the
/// cluster, if nothing there can move still.
void fail_cluster_deadlock(Runtime& runtime, const std::string& message);

/// The link, or null when the process runs alone.
[[nodiscard]] ClusterLink* cluster_link();
void set_cluster_link(ClusterLink* link);
/// The link, for `what` (named in the error): throws Error once the Cluster has ended.
ClusterLink& live_cluster_link(const std::string& what);

/// A name claimed across the cluster: the directory on rank 0 is told when its actor was made
/// (made()) and when the name is free again (release(), or the last owner of this gone).
class ClusterName {
 public:
  ClusterName(std::string name, NamedAddress address)
      : name_(std::move(name)), address_(std::move(address)) {}
  ClusterName(const ClusterName&) = delete;
  ClusterName& operator=(const ClusterName&) = delete;
  ~ClusterName() { release(); }
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const NamedAddress& address() const { return address_; }
  void made() noexcept;
  /// Frees the name; once only.
  void release() noexcept;

 private:
  std::string name_;
  NamedAddress address_;
  std::atomic<bool> released_{false};
};

/// The caller's side of an actor on another rank. The actor lives while a handle here holds
/// this (and while its calls run); the last one gone tells its rank. A borrowed one, found by
/// its name from another rank than its creator's, does not keep it alive.
struct RemoteActor {
  int rank = 0;  // where it lives
  std::uint64_t id = 0;
  int owner = -1;  // the rank whose key `id` is there; -1: this one
  bool borrowed = false;
  std::shared_ptr<ClusterName> cluster_name;  // the name this rank claimed for it
  std::string name;
  const RemoteActorClass* type = nullptr;
  std::shared_ptr<ObjectState<void>> created;
  int max_pending_calls = -1;  // its ActorOptions' limit on calls sent and not yet answered
  std::shared_ptr<std::atomic<int>> unanswered = std::make_shared<std::atomic<int>>(0);

  /// Counts a call about to be sent: `reply` made to count its answer, or
  /// PendingCallsLimitError if max_pending_calls calls are already unanswered.
  [[nodiscard]] RemoteReply counted(RemoteReply reply) const;

  RemoteActor() = default;
  RemoteActor(const RemoteActor&) = delete;
  RemoteActor& operator=(const RemoteActor&) = delete;
  ~RemoteActor();
};

/// What a registered function's call sends: its parameters, decayed.
template <typename F>
struct FunctionSignature;
template <typename R, typename... P>
struct FunctionSignature<R (*)(P...)> {
  using Value = std::remove_cvref_t<R>;
  using ArgumentViews = std::tuple<const std::decay_t<P>&...>;
  /// Whether arguments of types A can be sent as they are: each one is its parameter's type.
  template <typename... A>
  static constexpr bool takes_as_is() {
    if constexpr (sizeof...(A) != sizeof...(P)) {
      return false;
    } else {
      return (std::is_same_v<A, std::decay_t<P>> && ...);
    }
  }
};
template <typename R, typename... P>
struct FunctionSignature<R (*)(P...) noexcept> : FunctionSignature<R (*)(P...)> {};

/// A reply that decodes the result into `state`, or fails it.
template <typename Value>
RemoteReply reply_into(std::shared_ptr<ObjectState<Value>> state, const RemoteCodec& function) {
  return [state = std::move(state), &function](Received encoded, std::exception_ptr failure) {
    if (failure) {
      state->fail(failure);
      return;
    }
    try {
      if constexpr (std::is_void_v<Value>) {
        state->set_value();
      } else {
        std::optional<Value> value;
        function.decode_result(encoded, &value);
        state->set_value(std::move(*value));
      }
    } catch (...) {
      state->fail(std::current_exception());
    }
  };
}

/// A reply that completes `state` once the answer comes, or fails it.
inline RemoteReply reply_done(std::shared_ptr<ObjectState<void>> state) {
  return [state = std::move(state)](Received, std::exception_ptr failure) {
    if (failure) {
      state->fail(failure);
    } else {
      state->set_value();
    }
  };
}

/// A reply that completes `state` once an actor is built there, or fails it; and tells the
/// cluster's directory whether the actor that claimed `claimed` (if any, and if its handles
/// still hold it) was made.
inline RemoteReply reply_created(std::shared_ptr<ObjectState<void>> state,
                                 const std::shared_ptr<ClusterName>& claimed) {
  std::weak_ptr<ClusterName> weak = claimed;
  return [state = std::move(state), weak = std::move(weak)](Received, std::exception_ptr failure) {
    if (std::shared_ptr<ClusterName> name = weak.lock()) {
      if (failure) {
        name->release();
      } else {
        name->made();
      }
    }  // dropped before the handles learn of it, so that theirs is the last
    if (failure) {
      state->fail(failure);
    } else {
      state->set_value();
    }
  };
}

/// The task that stands for a call running on another rank when its arguments must be
/// resolved first (or converted): it takes them resolved, sends them, and waits for the
/// result, blocking only its fiber.
template <typename R, typename... P>
struct RemoteCall {
  using Value = std::remove_cvref_t<R>;
  const RemoteFunction* function;
  int rank;
  std::shared_ptr<const TaskOptions> options;

  Value operator()(const std::decay_t<P>&... arguments) const {
    std::tuple<const std::decay_t<P>&...> views(arguments...);
    auto state = std::make_shared<ObjectState<Value>>();
    live_cluster_link(function->name())
        .send(rank, *function, &views, *options, reply_into(state, *function));
    ObjectRef<Value> result(std::move(state));
    if constexpr (std::is_void_v<Value>) {
      result.get();
    } else {
      // Nobody else holds the result: it is moved out, not copied.
      return std::move(const_cast<Value&>(result.get()));
    }
  }
};

template <typename F>
struct RemoteCallOf;
template <typename R, typename... P>
struct RemoteCallOf<R (*)(P...)> {
  using type = RemoteCall<R, P...>;
};
template <typename R, typename... P>
struct RemoteCallOf<R (*)(P...) noexcept> {
  using type = RemoteCall<R, P...>;
};

}  // namespace detail
}  // namespace spindle
