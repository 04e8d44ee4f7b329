// Cluster mode as the runtime sees it: the registry of functions that may run on other ranks,
// the link a spindle::Cluster installs, and where a call goes.
#include "spindle/detail/remote.hpp"

#include <cxxabi.h>
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeindex>

#include "runtime/scheduler.hpp"
#include "spindle/actor.hpp"
#include "spindle/detail/thread_annotations.hpp"
#include "spindle/errors.hpp"
#include "spindle/runtime.hpp"
#include "spindle/task.hpp"

namespace spindle::detail {

namespace {

struct Registry {
  Mutex mutex;
  std::map<const void*, std::unique_ptr<RemoteFunction>> by_address SPINDLE_GUARDED_BY(mutex);
  std::map<std::string, const RemoteFunction*, std::less<>> by_name SPINDLE_GUARDED_BY(mutex);
  std::map<std::type_index, std::unique_ptr<RemoteActorClass>> actors SPINDLE_GUARDED_BY(mutex);
  std::map<std::string, const RemoteActorClass*, std::less<>> actors_by_name
      SPINDLE_GUARDED_BY(mutex);
  std::map<std::string, std::unique_ptr<RemoteMethod>, std::less<>> methods
      SPINDLE_GUARDED_BY(mutex);
};

[[noreturn]] void taken(const std::string& what, const std::string& name) {
  throw std::logic_error(what + "(" + name +
                         "): something is already registered under that name; each name must "
                         "stand for one thing on every rank");
}

// Built on first use: registrations run before main, in any order of translation units.
Registry& registry() {
  static Registry* const instance = new Registry;  // never destroyed: used until exit
  return *instance;
}

template <typename T>
T* pointer_of(const std::unique_ptr<T>& owned) {
  return owned.get();
}
template <typename T>
T* pointer_of(T* plain) {
  return plain;
}

// The entry for `key` in one of the registry's maps, or null. The map is reached through a
// member pointer, which the thread safety analysis cannot follow; the lock is held.
template <auto Map, typename Key>
auto look_up(const Key& key) SPINDLE_NO_THREAD_SAFETY_ANALYSIS {
  Registry& all = registry();
  MutexLock lock(all.mutex);
  const auto& map = all.*Map;
  auto found = map.find(key);
  return found == map.end() ? nullptr : pointer_of(found->second);
}

std::atomic<ClusterLink*> installed_link{nullptr};

// A function's name for a message: its symbol where the dynamic linker knows it.
std::string function_name(const void* address, const std::string& fallback) {
  Dl_info info{};
  if (dladdr(address, &info) && info.dli_sname && info.dli_saddr == address) {
    int status = 0;
    std::unique_ptr<char, decltype(&std::free)> demangled(
        abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status), &std::free);
    return status == 0 && demangled ? demangled.get() : info.dli_sname;
  }
  return fallback;
}

}  // namespace

bool register_remote_function(const void* address, std::unique_ptr<RemoteFunction> function) {
  Registry& all = registry();
  MutexLock lock(all.mutex);
  auto [named, fresh] = all.by_name.try_emplace(function->name(), function.get());
  if (!fresh) taken("SPINDLE_REMOTE", function->name());
  if (all.by_address.count(address)) {  // one function under two names, or folded by the linker
    all.by_name.erase(named);
    taken("SPINDLE_REMOTE", function->name() + " (its address is registered under another name)");
  }
  all.by_address[address] = std::move(function);
  return true;
}

bool register_remote_actor(std::type_index type, std::unique_ptr<RemoteActorClass> actor) {
  Registry& all = registry();
  MutexLock lock(all.mutex);
  auto [named, fresh] = all.actors_by_name.try_emplace(actor->name(), actor.get());
  if (!fresh || all.actors.count(type)) taken("SPINDLE_REMOTE_ACTOR", actor->name());
  all.actors[type] = std::move(actor);
  return true;
}

const RemoteActorClass* find_remote_actor(std::type_index type) {
  return look_up<&Registry::actors>(type);
}

const RemoteActorClass* find_remote_actor(std::string_view name) {
  return look_up<&Registry::actors_by_name>(name);
}

bool register_remote_method(std::unique_ptr<RemoteMethod> method) {
  Registry& all = registry();
  MutexLock lock(all.mutex);
  const std::string name = method->name();
  if (!all.methods.try_emplace(name, std::move(method)).second) {
    taken("SPINDLE_REMOTE_METHOD", name);
  }
  return true;
}

const RemoteMethod* find_remote_method(std::type_index actor, std::type_index method_type,
                                       const void* method) {
  Registry& all = registry();
  MutexLock lock(all.mutex);
  for (const auto& [name, candidate] : all.methods) {
    if (candidate->actor_type() == actor && candidate->is(method_type, method)) {
      return candidate.get();
    }
  }
  return nullptr;
}

const RemoteMethod* find_remote_method(std::string_view name) {
  return look_up<&Registry::methods>(name);
}

RemoteActor::~RemoteActor() {
  if (id == 0 || borrowed) return;  // never created, or not this rank's to keep alive
  if (ClusterLink* link = cluster_link()) link->release_actor(rank, id);
}

void ClusterName::made() noexcept {
  if (released_.load()) return;
  if (ClusterLink* link = cluster_link()) link->settle_name(name_, address_, true);
}

void ClusterName::release() noexcept {
  if (released_.exchange(true)) return;
  if (ClusterLink* link = cluster_link()) link->settle_name(name_, address_, false);
}

namespace {

thread_local int hosting_actors = 0;

// A handle to the actor at `address`, found by its name: it does not keep the actor alive.
std::shared_ptr<const RemoteActor> borrowed(const NamedAddress& address, const std::string& name,
                                            const RemoteActorClass& type) {
  auto remote = std::make_shared<RemoteActor>();
  remote->rank = address.host;
  remote->owner = address.owner;
  remote->id = address.actor;
  remote->borrowed = true;
  remote->name = name;
  remote->type = &type;
  remote->created = std::make_shared<ObjectState<void>>();
  remote->created->set_value();  // it was made: the directory holds only live actors
  return remote;
}

// The registered class of an actor of class `type` that the directory lists as `address`.
const RemoteActorClass& listed_class(const std::string& name, const NamedAddress& address,
                                     std::type_index type) {
  const RemoteActorClass* registered = find_remote_actor(type);
  if (!registered || registered->name() != address.type) {
    throw InvalidArgumentError("actor '" + name + "' (on rank " + std::to_string(address.host) +
                               ") is of class " + address.type + ", not " + type_name(type));
  }
  return *registered;
}

// The actor the directory (or a handle that arrived) lists at `live`: this process's own when
// it is, else borrowed.
FoundActor resolve(const NamedAddress& live, const std::string& name, std::type_index type) {
  const RemoteActorClass& registered = listed_class(name, live, type);
  ClusterLink* link = cluster_link();
  if (link && live.host == link->rank() && live.owner == link->rank()) {
    if (std::shared_ptr<ActorCore> local = link->exposed_actor(live.actor)) return {local, {}};
  }
  return {nullptr, borrowed(live, name, registered)};
}

// Tells the directory that a local actor was made once its constructor has run (one that
// fails frees its name when it dies).
class MadeWhenCreated final : public Waiter {
 public:
  // `created` calls this as it completes, so it outlives the call.
  MadeWhenCreated(std::weak_ptr<ClusterName> claim, const ObjectStateBase& created)
      : claim_(std::move(claim)), created_(created) {}
  void on_complete() noexcept override {
    if (created_.status() != ObjectStateBase::Status::ready) return;
    if (std::shared_ptr<ClusterName> claim = claim_.lock()) claim->made();
  }

 private:
  std::weak_ptr<ClusterName> claim_;
  const ObjectStateBase& created_;
};

}  // namespace

HostingActor::HostingActor() { ++hosting_actors; }
HostingActor::~HostingActor() { --hosting_actors; }

ClusterClaim claim_cluster_name(const ActorSpec& spec, std::type_index type, int host) {
  ClusterLink* link = cluster_link();
  if (!link || link->size() < 2 || spec.registered_name.empty() || hosting_actors > 0) return {};
  const RemoteActorClass* registered = find_remote_actor(type);
  if (!registered) return {};  // it cannot be called from other ranks, so its name stays here
  NamedAddress address{host < 0 ? link->rank() : host, link->rank(), link->next_actor_id(),
                       registered->name()};
  std::optional<NamedAddress> live = link->claim_name(spec.registered_name, address);
  if (live) return {resolve(*live, spec.registered_name, type), nullptr};
  return {{}, std::make_shared<ClusterName>(spec.registered_name, std::move(address))};
}

void expose_cluster_name(std::shared_ptr<ClusterName> claim,
                         const std::shared_ptr<ActorCore>& handle, const ActorCore* made,
                         std::type_index type) {
  ClusterLink* link = cluster_link();
  const RemoteActorClass* registered = find_remote_actor(type);
  if (!link || !registered || handle.get() != made) {
    claim->release();  // another actor of that name was found here meanwhile
    return;
  }
  link->expose(claim->address().actor, handle, *registered);
  std::shared_ptr<ObjectState<void>> created = created_of(*handle);
  auto when_made = std::make_shared<MadeWhenCreated>(claim, *created);
  // The name's entry here keeps the claim: when it is freed, so is the name across the cluster.
  scheduler_of(*handle).keep_cluster_name(*handle, std::move(claim));
  if (!created->add_waiter(when_made)) when_made->on_complete();  // built already
}

NamedAddress address_to_send(const std::shared_ptr<ActorCore>& handle,
                             const std::shared_ptr<const RemoteActor>& remote,
                             std::type_index type) {
  if (!handle && !remote) return {};
  ClusterLink* link = cluster_link();
  const RemoteActorClass* registered = find_remote_actor(type);
  if (!link || !registered) {
    throw Error("an ActorHandle<" + type_name(type) + "> cannot travel to another rank: " +
                (link ? "only handles of a class registered with SPINDLE_REMOTE_ACTOR do"
                      : std::string("the spindle::Cluster has ended")));
  }
  if (remote) {
    return {remote->rank, remote->owner >= 0 ? remote->owner : link->rank(), remote->id,
            registered->name()};
  }
  return {link->rank(), link->rank(), link->exposed_id(handle, *registered), registered->name()};
}

FoundActor received_actor(const NamedAddress& address, const std::string& name,
                          std::type_index type) {
  if (address.host < 0) return {};
  return resolve(address, name, type);
}

FoundActor find_cluster_actor(const std::string& name, std::type_index type) {
  ClusterLink* link = cluster_link();
  if (!link || link->size() < 2 || hosting_actors > 0) return {};
  std::optional<NamedAddress> live = link->find_name(name);
  if (!live) return {};
  return resolve(*live, name, type);
}

RemoteReply RemoteActor::counted(RemoteReply reply) const {
  if (max_pending_calls < 0) return reply;
  if (unanswered->fetch_add(1) >= max_pending_calls) {
    unanswered->fetch_sub(1);
    throw PendingCallsLimitError("actor '" + name + "' on rank " + std::to_string(rank) +
                                 ": max_pending_calls = " + std::to_string(max_pending_calls) +
                                 " calls are already sent and unanswered; the call was not sent "
                                 "(wait for some results first)");
  }
  return [unanswered = unanswered, reply = std::move(reply)](Received result,
                                                             std::exception_ptr failure) {
    unanswered->fetch_sub(1);  // before the result shows, so its getter may call again
    reply(result, failure);
  };
}

Stillness stillness(Runtime& runtime) { return scheduler_of(runtime).stillness(); }

void fail_cluster_deadlock(Runtime& runtime, const std::string& message) {
  scheduler_of(runtime).fail_cluster_deadlock(message);
}

ClusterLink& live_cluster_link(const std::string& what) {
  if (ClusterLink* link = cluster_link()) return *link;
  throw Error(what + ": the spindle::Cluster has ended, so nothing more goes to other ranks");
}

void check_runs_here(const TaskSpec& spec) {
  ClusterLink* link = cluster_link();
  const int rank = spec.options->rank;
  if (!link || rank < 0 || rank == link->rank()) return;
  throw InvalidArgumentError("task '" + spec.name + "' with rank = " + std::to_string(rank) +
                             ": only a function registered with SPINDLE_REMOTE(name) runs on "
                             "another rank; a lambda or functor runs where it is submitted");
}

const RemoteFunction* find_remote_function(const void* address) {
  return look_up<&Registry::by_address>(address);
}

const RemoteFunction* find_remote_function(std::string_view name) {
  return look_up<&Registry::by_name>(name);
}

ClusterLink* cluster_link() { return installed_link.load(std::memory_order_acquire); }

void set_cluster_link(ClusterLink* link) { installed_link.store(link, std::memory_order_release); }

std::string node_resource() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "unknown");
  std::string name = std::string("node:") + host;
  for (char& c : name) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') ||
                         std::string_view("_-.:/").find(c) != std::string_view::npos;
    if (!allowed) c = '_';
  }
  name.resize(std::min<std::size_t>(name.size(), 64));  // ResourceSet's longest name
  return name;
}

void check_rank(int rank, bool codelet) {
  if (rank == -1) return;
  ClusterLink* link = cluster_link();
  const int size = link ? link->size() : 1;
  const int here = link ? link->rank() : 0;
  if (rank < -1 || rank >= size) {
    throw InvalidArgumentError(
        "rank = " + std::to_string(rank) + ": " +
        (size > 1 ? "-1 (placement chooses) or a rank from 0 to " + std::to_string(size - 1) +
                        " is allowed"
                  : std::string("-1 or 0 is allowed: this process runs alone (rank 0 of 1); start "
                                "it under mpirun with a spindle::Cluster to reach other ranks")));
  }
  if (codelet && rank != here) {
    throw InvalidArgumentError("rank = " + std::to_string(rank) +
                               ": a codelet runs on this rank (" + std::to_string(here) +
                               "); only functions registered with SPINDLE_REMOTE go to others");
  }
}

namespace {

// Where a call or an actor with `demand` goes: the rank `place` picks when `find()` (looked
// up only in a cluster) gives its registration, else -1 and null (here). `refusal()` says
// why one pinned elsewhere but not registered cannot go.
template <typename Find, typename Refusal>
auto place_registered(const TaskOptions& demand, Find find, Refusal refusal)
    -> std::pair<int, decltype(find())> {
  ClusterLink* link = cluster_link();
  if (!link || demand.rank == link->rank()) return {-1, nullptr};
  auto registered = find();
  if (!registered) {
    if (demand.rank < 0) return {-1, nullptr};  // placement keeps what it cannot send
    throw InvalidArgumentError(refusal());
  }
  const int rank = link->place(demand);
  if (rank == link->rank()) return {-1, nullptr};
  return {rank, registered};
}

}  // namespace

std::pair<int, const RemoteFunction*> remote_placement(Runtime&, const TaskSpec& spec,
                                                       const void* address) {
  const TaskOptions& options = *spec.options;
  return place_registered(
      options, [&] { return find_remote_function(address); },
      [&] {
        return "task '" + function_name(address, spec.name) +
               "' with rank = " + std::to_string(options.rank) +
               ": only a function registered with SPINDLE_REMOTE(name) runs on another rank";
      });
}

std::pair<int, const RemoteActorClass*> remote_actor_placement(const ActorSpec& spec,
                                                               std::type_index type) {
  const ActorOptions& options = *spec.options;
  TaskOptions demand;
  demand.num_cpus = options.num_cpus;
  demand.num_gpus = options.num_gpus;
  demand.memory = options.memory;
  demand.resources = options.resources;
  demand.name = spec.name;
  demand.rank = options.rank;
  return place_registered(
      demand, [&] { return find_remote_actor(type); },
      [&] {
        return "actor '" + spec.name + "' with rank = " + std::to_string(options.rank) +
               ": only a class registered with SPINDLE_REMOTE_ACTOR(class, constructor's "
               "parameter types...) lives on another rank";
      });
}

namespace {

void check_same(const std::string& what, std::type_index registered, std::type_index given) {
  if (registered == given) return;
  throw InvalidArgumentError(what + " is registered taking " + type_name(registered) +
                             ", but is called with " + type_name(given) +
                             ": on another rank its arguments must be of exactly those types");
}

}  // namespace

void check_remote_constructor(const RemoteActorClass& type, std::type_index arguments) {
  check_same("actor class '" + type.name() + "'", type.constructor(), arguments);
}

void check_remote_parameters(const RemoteMethod& method, std::type_index arguments) {
  check_same("method '" + method.name() + "'", method.parameters(), arguments);
}

std::shared_ptr<const TaskSpec> remote_call_spec(Runtime& runtime, const TaskSpec& spec, int rank,
                                                 const RemoteFunction& function) {
  TaskOptions local;
  local.num_cpus = 0;                             // the work is done there; here a fiber waits
  local.max_retries = spec.options->max_retries;  // a failure there is retried from here
  local.retry_exceptions = spec.options->retry_exceptions;
  local.name = (spec.options->name.empty() ? function.name() : spec.options->name) + " (on rank " +
               std::to_string(rank) + ")";
  return make_task_spec(runtime, local, local.name);
}

}  // namespace spindle::detail
