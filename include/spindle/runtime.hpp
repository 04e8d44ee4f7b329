// The runtime: worker threads running tasks as fibers, against the machine's resources.
//
//   spindle::Runtime rt;                                 // totals from the machine
//   auto a = rt.put(std::vector<double>(1 << 20, 1.0));  // no copy: the vector is moved in
//   auto r = rt.task(dot).remote(a, a);                  // a is resolved before dot runs
//   double v = r.get();
//
// Thread safety: every member may be called from any thread and from inside tasks.
// Destroying the runtime cancels what has not started, lets running tasks finish, and
// joins the workers; refs stay valid and never hang afterwards.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "spindle/actor.hpp"
#include "spindle/object_ref.hpp"
#include "spindle/placement.hpp"
#include "spindle/resources.hpp"
#include "spindle/task.hpp"
#include "spindle/topology.hpp"

namespace spindle {

/// @brief How a runtime is set up; every field has a default taken from the machine.
struct RuntimeOptions {
  /// Resource totals; unset ones come from the machine (see resource_totals).
  std::optional<double> num_cpus;
  std::optional<double> num_gpus;
  std::optional<double> memory;
  std::map<std::string, double> resources;
  /// Worker threads; default one per allowed core.
  std::optional<unsigned> num_workers;
  /// Pin each worker to one core with hwloc.
  bool pin_workers = true;
  /// Stack of the fibers tasks run on, with a guard page below it. Reserved, not committed:
  /// a page costs memory once touched. A task or actor may ask for more (stack_bytes in its
  /// options); one that overflows is reported on stderr by name before the process aborts.
  std::size_t stack_bytes = 8 << 20;
  /// Records task spans and transfers for timeline(). Off, recording costs nothing; the
  /// environment variable SPINDLE_TIMELINE=1 turns it on as well (as Ray's profiling switch).
  bool timeline = false;
  /// Task spans kept for timeline(); older ones beyond this are dropped (and counted).
  std::size_t max_timeline_events = 1'000'000;
  /// Where each call of a codelet runs (see spindle/placement.hpp).
  placement::Policy placement = placement::Policy::earliest_finish;
  /// The performance model's file: loaded at start (a damaged one is ignored with a warning
  /// on stderr) and saved at the end if codelets ran. Unset: PerfModel::default_path, under
  /// $XDG_CACHE_HOME. Empty: kept in memory only.
  std::optional<std::string> perf_model_file;
  /// Bytes of Buffer memory that this runtime's tasks and actors may hold on each device:
  /// each GPU, and the host (where Buffers live without a GPU; pinned memory counts there).
  /// A Buffer made in a task counts from its allocation until it is freed, wherever it went
  /// meanwhile (a result, the object store). Past the limit the allocation throws DeviceError
  /// naming the bytes asked, the limit and what is in use, as a device that full would: the
  /// task fails, and nothing else does. Buffers made outside tasks do not count. Unset: no
  /// limit but the device's own. For testing what a program does when a GPU runs out of
  /// memory, on any machine, or for keeping headroom on a shared GPU.
  std::optional<std::size_t> buffer_memory_limit;
};

/// @brief A snapshot of what the runtime is doing, as `ray status` prints it.
struct RuntimeStatus {
  ResourceSet total;
  ResourceSet available;
  std::size_t waiting_for_dependencies = 0;
  std::size_t waiting_for_resources = 0;
  std::size_t running = 0;
  std::size_t blocked = 0;
  std::size_t finished = 0;
  std::size_t failed = 0;
  std::size_t cancelled = 0;
  /// Actors created and not yet dead.
  std::size_t actors = 0;
  std::size_t actor_calls_finished = 0;
  std::size_t actor_calls_failed = 0;
  /// Demands of tasks waiting for resources, with how many tasks wait with each.
  std::vector<std::pair<ResourceSet, std::size_t>> pending_demands;
  unsigned workers = 0;

  [[nodiscard]] std::string to_string() const;
};

/// @brief Runs tasks on worker threads, as fibers, within resource totals.
class Runtime {
 public:
  /// Totals and workers from the machine.
  Runtime();
  /// @throws InvalidArgumentError naming a bad option.
  explicit Runtime(const RuntimeOptions& options);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// @brief Stores a value and returns a ref to it. An rvalue is moved in, never copied.
  template <typename T>
  [[nodiscard]] ObjectRef<std::decay_t<T>> put(T&& value) {
    auto state = std::make_shared<detail::ObjectState<std::decay_t<T>>>();
    state->set_value(std::forward<T>(value));
    return ObjectRef<std::decay_t<T>>(std::move(state));
  }

  /// @brief A factory of tasks running `f`, with default options (one cpu). `f` may be a
  /// codelet (spindle::codelet), whose calls the placement policy sends to a CPU or a GPU.
  template <typename F>
  [[nodiscard]] TaskFactory<std::decay_t<F>> task(F&& f) {
    using Function = std::decay_t<F>;
    auto function = std::make_shared<const Function>(std::forward<F>(f));
    constexpr bool codelet = detail::IsCodelet<Function>::value;
    std::string name;
    if constexpr (codelet) {
      name = function->name;
    } else {
      name = detail::type_name(typeid(Function));
    }
    return TaskFactory<Function>(*this, std::move(function),
                                 detail::make_task_spec(*this, {}, std::move(name), "task", codelet));
  }

  /// @brief A factory of actors of class T, with default options (see ActorOptions).
  template <typename T>
  [[nodiscard]] ActorFactory<T> actor() {
    return ActorFactory<T>(*this, detail::make_actor_spec(*this, {}, detail::type_name(typeid(T))));
  }

  /// @brief A handle to the live actor created with options({.name = name}) from this
  /// runtime: here, or (in cluster mode) on another rank. In cluster mode an actor of a
  /// registered class (SPINDLE_REMOTE_ACTOR) made from any rank is found too; such a handle,
  /// borrowed, does not keep the actor alive: its creator's handles do.
  /// @throws InvalidArgumentError if no live actor has that name, or it is not a T.
  template <typename T>
  [[nodiscard]] ActorHandle<T> get_actor(const std::string& name) {
    return ActorHandle<T>(detail::find_actor(*this, name, typeid(T)));
  }

  /// @brief Kills an actor. Calls not started fail with ActorDiedError at once; running calls
  /// see this_task::cancelled() turn true, and their results fail with ActorDiedError when
  /// they return; then the instance is destroyed on a worker and its resources go back to the
  /// pool. With no_restart = false the kill counts as a crash: within max_restarts the actor
  /// is built again, and the calls not started wait for it, as after a crash; a running call
  /// runs again on it within max_task_retries (so it may run twice: make such calls
  /// idempotent), else fails. Killing a dead actor does nothing.
  template <typename T>
  void kill(const ActorHandle<T>& actor, KillOptions options = {}) {
    if (!actor.valid()) throw InvalidArgumentError("kill: the ActorHandle is empty");
    if (actor.remote_) {
      detail::live_cluster_link("kill").kill_actor(*actor.remote_, options.no_restart);
      if (options.no_restart) detail::release_remote_name(*this, *actor.remote_);
      return;
    }
    detail::kill(*actor.core_, options.no_restart);
  }

  /// @brief Cancels the task that computes `ref`: if it has not started it fails with
  /// CancelledError; if it runs, this_task::cancelled() turns true. Finished tasks and put
  /// objects are left alone. For an actor's call, the same holds; later calls still run.
  template <typename T>
  void cancel(const ObjectRef<T>& ref) {
    cancel_object(*ref.base());
  }

  /// @brief Writes the task spans as Chrome trace JSON (Perfetto, chrome://tracing).
  /// @throws Error if the file cannot be written, or if recording is off (see
  /// RuntimeOptions::timeline).
  void timeline(const std::string& path) const;
  /// @brief The same trace, written to `out`.
  /// @throws Error if recording is off.
  void timeline(std::ostream& out) const;
  [[nodiscard]] RuntimeStatus status() const;

  /// @brief The performance model codelets are placed by: measured run times by task, input
  /// size and device kind, and transfer costs. Shared with the scheduler (thread safe).
  [[nodiscard]] PerfModel& perf_model();

  [[nodiscard]] const Topology& topology() const;
  [[nodiscard]] const ResourceSet& total_resources() const;
  [[nodiscard]] unsigned num_workers() const;

 private:
  friend detail::Scheduler& detail::scheduler_of(Runtime&);
  void cancel_object(detail::ObjectStateBase& object);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// @brief What a task can learn about itself while it runs. Outside a task, in_task() is
/// false and the others return empty values.
namespace this_task {

[[nodiscard]] bool in_task();
/// The runtime running the calling task: what code inside a task (a registered function run
/// for another rank, among others) submits further work with.
/// @throws Error outside a task.
[[nodiscard]] Runtime& runtime();
[[nodiscard]] std::uint64_t id();
[[nodiscard]] std::string name();
/// True once cancel() was called on this task's result.
[[nodiscard]] bool cancelled();
/// What the task holds: its demand.
[[nodiscard]] ResourceSet resources();
/// The GPUs it was given.
[[nodiscard]] std::vector<int> gpu_ids();
/// Suspends only this task's fiber (the thread runs other tasks meanwhile); outside a task,
/// the calling thread.
void sleep_until(std::chrono::steady_clock::time_point deadline);
/// As sleep_until(now + duration), for any duration (as std::this_thread::sleep_for).
template <typename Rep, typename Period>
void sleep_for(std::chrono::duration<Rep, Period> duration) {
  if (duration <= duration.zero()) return;
  auto now = std::chrono::steady_clock::now();
  auto most = std::chrono::duration_cast<std::chrono::duration<double>>(
      std::chrono::steady_clock::time_point::max() - now);
  if (std::chrono::duration<double>(duration) >= most) {
    sleep_until(std::chrono::steady_clock::time_point::max());
  } else {
    sleep_until(now + std::chrono::ceil<std::chrono::steady_clock::duration>(duration));
  }
}
/// Lets other fibers of this worker run.
void yield();

}  // namespace this_task
}  // namespace spindle
