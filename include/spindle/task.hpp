// Tasks: functions run remotely, as fibers on the runtime's workers.
//
//   auto square = rt.task([](int x) { return x * x; }).options({.num_cpus = 0.5});
//   spindle::ObjectRef<int> r = square.remote(7);
//
// Arguments are stored by value, or as ObjectRefs that are resolved (waited for) before
// the function runs; the function sees a resolved ref as `const T&` to the one stored
// value, never a copy.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeindex>
#include <typeinfo>
#include <utility>
#include <vector>

#include "spindle/detail/execution_context.hpp"
#include "spindle/detail/remote.hpp"
#include "spindle/device.hpp"
#include "spindle/object_ref.hpp"
#include "spindle/resources.hpp"

namespace spindle {

class Runtime;

/// @brief How a task runs: its resource demand, retries and name, as Ray's `.options()`.
struct TaskOptions {
  double num_cpus = 1;
  double num_gpus = 0;
  /// Bytes.
  double memory = 0;
  std::map<std::string, double> resources;
  /// Re-runs after an exception, when retry_exceptions allows; -1 means without limit.
  int max_retries = 0;
  bool retry_exceptions = false;
  /// Shown in errors, the timeline and status; defaults to the function's type (a
  /// codelet's own name).
  std::string name;
  /// Pins a codelet (a task with CPU and GPU implementations) to one kind of device; unset,
  /// the runtime's placement policy chooses for each call. Only codelets take it.
  std::optional<DeviceKind> device;
  /// Bytes of stack the task needs, when more than the runtime's (RuntimeOptions::stack_bytes):
  /// it then runs on a fiber with a stack of this size. 0 means the runtime's.
  std::size_t stack_bytes = 0;
  /// The rank it runs on in cluster mode (spindle/cluster.hpp): a function registered with
  /// SPINDLE_REMOTE may go to any rank; -1 lets placement choose one whose totals fit the
  /// demand. Without a cluster only -1 and 0 (this process) are allowed.
  int rank = -1;
};

namespace this_task {
/// The kind of device the calling task was placed on: gpu for a codelet's GPU
/// implementation, cpu otherwise (and outside tasks).
[[nodiscard]] DeviceKind device_kind();
}  // namespace this_task

/// @brief What placement knows of an argument: its size in bytes and where its data lives.
/// The default counts a contiguous range's elements (std::vector, std::string, ...) or the
/// object itself, on the host; spindle::Buffer tells its own. Specialise it for a type of
/// yours whose data lives elsewhere or whose size is not what sizeof says.
template <typename T>
struct DataTraits {
  static std::size_t bytes(const T& value) {
    if constexpr (std::ranges::contiguous_range<const T> && std::ranges::sized_range<const T>) {
      return std::ranges::size(value) * sizeof(std::ranges::range_value_t<const T>);
    } else {
      return sizeof(value);
    }
  }
  static DeviceKind location(const T&) { return DeviceKind::cpu; }
};

/// @brief A task with two implementations: one for the CPU and one for a GPU (StarPU calls
/// it a codelet). Both take the same arguments and return the same type. Submitted with
/// `rt.task(codelet).remote(args...)`, each call runs where the runtime's placement policy
/// says (RuntimeOptions::placement), unless TaskOptions::device pins it. A runtime without
/// GPUs always runs the CPU implementation. The GPU implementation runs with the granted
/// GPU current and Location::here() on it; on a logical GPU (declared, with no device
/// behind it) it runs on the host, as every GPU task does.
template <typename Cpu, typename Gpu>
struct Codelet {
  /// Names the task in the performance model, errors and the timeline.
  std::string name;
  Cpu cpu;
  Gpu gpu;

  template <typename... Args>
  decltype(auto) operator()(Args&&... args) const {
    static_assert(std::is_same_v<std::invoke_result_t<const Cpu&, Args...>,
                                 std::invoke_result_t<const Gpu&, Args...>>,
                  "a codelet's CPU and GPU implementations must return the same type");
    if (this_task::device_kind() == DeviceKind::gpu) {
      return std::invoke(gpu, std::forward<Args>(args)...);
    }
    return std::invoke(cpu, std::forward<Args>(args)...);
  }
};

/// @brief A codelet named `name` from its CPU and GPU implementations.
template <typename Cpu, typename Gpu>
[[nodiscard]] Codelet<std::decay_t<Cpu>, std::decay_t<Gpu>> codelet(std::string name, Cpu&& cpu,
                                                                    Gpu&& gpu) {
  return {std::move(name), std::forward<Cpu>(cpu), std::forward<Gpu>(gpu)};
}

namespace detail {

class Scheduler;
class ActorCore;

/// What every task of one factory shares: checked options and prepared resource requests.
struct TaskSpec {
  std::string name;
  std::shared_ptr<const ResourceRequest> request;
  /// The cpu part alone, given back while the task waits in get; null when it needs none.
  std::shared_ptr<const ResourceRequest> cpu_request;
  int max_retries = 0;
  bool retry_exceptions = false;
  /// Set when the demand exceeds the runtime's totals: submitting throws InfeasibleError.
  std::string infeasible;
  /// A codelet's: its runs are measured into the performance model.
  bool codelet = false;
  /// Which implementation of a codelet runs (cpu for every other task).
  DeviceKind device_kind = DeviceKind::cpu;
  /// A codelet that placement may move to a GPU: the spec it runs with there.
  std::shared_ptr<const TaskSpec> gpu_variant;
  /// The stack it needs; 0 (or no more than the runtime's) runs it on a worker's runner.
  std::size_t stack_bytes = 0;
  /// The options as given, kept where a call may leave this process: in cluster mode, or
  /// with a rank set. Null otherwise.
  std::shared_ptr<const TaskOptions> options;
};

/// An argument as placement sees it.
struct DataInput {
  std::size_t bytes = 0;
  DeviceKind location = DeviceKind::cpu;
};

template <typename T>
struct IsCodelet : std::false_type {};
template <typename Cpu, typename Gpu>
struct IsCodelet<Codelet<Cpu, Gpu>> : std::true_type {};

/// An argument whose object failed; the task fails with the cause nested.
struct ArgumentFailure {
  std::size_t index = 0;
  std::exception_ptr cause;
};

/// The scheduler's record of a task (src/runtime); a task's body lives in the same block.
class TaskRecord;

/// What a task computes, typed where it is submitted: the function, its stored arguments and
/// its result's object. The scheduler reaches it only through its record.
class TaskBody {
 public:
  TaskBody() = default;
  TaskBody(const TaskBody&) = delete;
  TaskBody& operator=(const TaskBody&) = delete;
  virtual ~TaskBody() = default;

  /// Runs the function on resolved arguments and keeps its result aside; may throw.
  virtual void run() = 0;
  /// Makes the kept result the value of the task's object, once the scheduler has settled
  /// the task: whoever gets the value sees the runtime's books already updated.
  virtual void publish() = 0;
  virtual ObjectStateBase& result() noexcept = 0;
  virtual void dependencies(std::vector<ObjectStateBase*>& out) const = 0;
  /// The arguments' sizes and locations, once they are resolved.
  virtual void inputs(std::vector<DataInput>& out) const = 0;
  /// The first argument whose object failed, if any.
  [[nodiscard]] virtual std::optional<ArgumentFailure> failed_argument() const = 0;
  /// Drops the stored arguments, and the function, once the task will not run again.
  virtual void release_arguments() noexcept = 0;
  /// Drops the body's share of the result once it is published; result() is then invalid.
  virtual void release_result() noexcept = 0;
};

/// A new record with room for a body of `bytes` (aligned to `align`) right after it, in one
/// allocation; `body` is where to build it. Defined with the runtime.
std::shared_ptr<TaskRecord> allocate_task(Scheduler& scheduler,
                                          std::shared_ptr<const TaskSpec> spec,
                                          std::size_t bytes, std::size_t align, void*& body);
/// Joins the built body to its record.
void attach_body(TaskRecord& record, TaskBody& body) noexcept;

/// Memory for the runtime's small, short-lived blocks (task records and results), from an
/// allocator made for blocks freed on another thread than the one that made them, as a task's
/// record is. Defined with the runtime.
void* allocate_block(std::size_t bytes, std::size_t align);
void free_block(void* block, std::size_t align) noexcept;

/// An allocator on allocate_block; empty, so that a shared_ptr's control block spends nothing
/// on it.
template <typename T>
struct BlockAllocator {
  using value_type = T;

  BlockAllocator() = default;
  template <typename U>
  BlockAllocator(const BlockAllocator<U>& /*other*/) noexcept {}  // NOLINT: rebinding

  T* allocate(std::size_t n) { return static_cast<T*>(allocate_block(n * sizeof(T), alignof(T))); }
  void deallocate(T* block, std::size_t /*n*/) noexcept { free_block(block, alignof(T)); }

  template <typename U>
  bool operator==(const BlockAllocator<U>& /*other*/) const noexcept {
    return true;
  }
};

template <typename T>
struct IsObjectRef : std::false_type {};
template <typename T>
struct IsObjectRef<ObjectRef<T>> : std::true_type {};

/// What the function receives for a stored argument.
template <typename Stored>
struct Resolved {
  using type = const Stored&;
};
template <typename T>
struct Resolved<ObjectRef<T>> {
  static_assert(!std::is_void_v<T>, "an ObjectRef<void> cannot be passed as an argument");
  using type = const T&;
};

/// What a task sees of a stored object's value: the value itself, unless a device-resident
/// type (Buffer) specialises this to hand each consumer a copy where it runs.
template <typename T>
struct ConsumerView {
  static const T& of(const T& stored) { return stored; }
};

template <typename Stored>
typename Resolved<Stored>::type resolve(const Stored& stored) {
  if constexpr (IsObjectRef<Stored>::value) {
    using T = typename Stored::value_type;
    return ConsumerView<T>::of(stored.state()->value());
  } else {
    return stored;
  }
}

/// Whether an argument can be sent to another rank at once: a value, or a ready ref.
template <typename Stored>
bool ready_to_send(const Stored& stored) {
  if constexpr (IsObjectRef<Stored>::value) {
    return stored.state() && stored.state()->status() == ObjectStateBase::Status::ready;
  } else {
    return true;
  }
}

/// An argument as it is sent to another rank: a ref is waited for first (and throws its error).
template <typename Stored>
typename Resolved<Stored>::type resolve_waiting(const Stored& stored) {
  if constexpr (IsObjectRef<Stored>::value) {
    (void)stored.get();
    return resolve(stored);
  } else {
    return stored;
  }
}

/// Whether `Invoker` takes the stored arguments as a task receives them (refs resolved).
template <typename Invoker, typename... Stored>
inline constexpr bool kTakesResolved =
    std::is_invocable_v<const Invoker&, typename Resolved<Stored>::type...>;

/// Refuses arguments whose destructors may throw, in one line.
template <typename... Stored>
constexpr void check_storable() {
  static_assert((std::is_nothrow_destructible_v<Stored> && ...),
                "spindle: an argument must not throw from its destructor: a task's arguments are "
                "destroyed on a worker once it has run, where no caller could catch the "
                "exception. Make the destructor noexcept and report the failure another way");
}

/// Says in one line why a call does not compile, before the compiler's own account.
template <typename Invoker, typename... Stored>
constexpr void check_callable() {
  static_assert(kTakesResolved<Invoker, Stored...>,
                "spindle: the function cannot be called with these arguments. An ObjectRef<T> "
                "argument is passed to it as its value (const T&), resolved before it runs, as "
                "in Ray: declare that parameter as T or const T&, not ObjectRef<T> (wrap the ref "
                "in a struct or container to pass the ref itself)");
  check_storable<Stored...>();
}

template <typename Invoker, typename... Stored>
using TaskResult =
    std::remove_cvref_t<std::invoke_result_t<const Invoker&, typename Resolved<Stored>::type...>>;

/// The invoker of a task: one function shared by every task of a factory.
template <typename F>
struct SharedFunction {
  std::shared_ptr<const F> f;
  template <typename... Args>
  decltype(auto) operator()(Args&&... args) const {
    return std::invoke(*f, std::forward<Args>(args)...);
  }
};

/// A task, an actor's creation or an actor's method call: `Invoker` applied to the stored
/// arguments, resolved.
template <typename Invoker, typename... Stored>
class TypedTask final : public TaskBody {
 public:
  using Value = TaskResult<Invoker, Stored...>;

  template <typename... Args>
  explicit TypedTask(Invoker invoker, Args&&... args)
      : bound_(std::in_place, std::move(invoker), std::forward<Args>(args)...) {}

  void run() override {
    auto call = [this](const Stored&... args) -> decltype(auto) {
      return std::invoke(bound_->invoker, resolve(args)...);
    };
    if constexpr (std::is_void_v<Value>) {
      std::apply(call, bound_->args);
    } else {
      staged_.emplace(std::apply(call, bound_->args));
    }
  }

  void publish() override {
    if constexpr (std::is_void_v<Value>) {
      result_->set_value();
    } else {
      result_->set_value(std::move(*staged_));
      staged_.reset();
    }
  }

  ObjectStateBase& result() noexcept override { return *result_; }
  [[nodiscard]] const std::shared_ptr<ObjectState<Value>>& result_state() const noexcept {
    return result_;
  }

  void dependencies(std::vector<ObjectStateBase*>& out) const override {
    std::size_t index = 0;
    std::apply([&](const Stored&... args) { (add_dependency(args, index++, out), ...); },
               bound_->args);
  }

  void inputs(std::vector<DataInput>& out) const override {
    std::apply([&](const Stored&... args) { (add_input(args, out), ...); }, bound_->args);
  }

  [[nodiscard]] std::optional<ArgumentFailure> failed_argument() const override {
    std::optional<ArgumentFailure> failure;
    std::size_t index = 0;
    std::apply([&](const Stored&... args) { (check_argument(args, index++, failure), ...); },
               bound_->args);
    return failure;
  }

  void release_arguments() noexcept override { bound_.reset(); }
  void release_result() noexcept override { result_.reset(); }

 private:
  template <typename A>
  static void add_dependency(const A& arg, std::size_t index, std::vector<ObjectStateBase*>& out) {
    if constexpr (IsObjectRef<A>::value) {
      if (!arg.valid()) throw_empty_ref("argument " + std::to_string(index));
      out.push_back(arg.base());
    }
  }
  template <typename A>
  static void add_input(const A& arg, std::vector<DataInput>& out) {
    if constexpr (IsObjectRef<A>::value) {
      using T = typename A::value_type;
      const T& value = arg.state()->value();
      out.push_back({DataTraits<T>::bytes(value), DataTraits<T>::location(value)});
    } else {
      out.push_back({DataTraits<A>::bytes(arg), DataTraits<A>::location(arg)});
    }
  }
  template <typename A>
  static void check_argument(const A& arg, std::size_t index,
                             std::optional<ArgumentFailure>& failure) {
    if constexpr (IsObjectRef<A>::value) {
      if (!failure && arg.base()->error()) failure = ArgumentFailure{index, arg.base()->error()};
    }
  }

  // The function and its arguments, dropped together once the task will not run again: what
  // either holds (a lambda's captures, an actor's state) must not live on with the record.
  struct Bound {
    template <typename... Args>
    explicit Bound(Invoker invoker, Args&&... args)
        : invoker(std::move(invoker)), args(std::forward<Args>(args)...) {}
    Invoker invoker;
    std::tuple<Stored...> args;
  };
  std::optional<Bound> bound_;
  // Apart from the task's block, so that a kept ref keeps the result only.
  std::shared_ptr<ObjectState<Value>> result_ =
      std::allocate_shared<ObjectState<Value>>(BlockAllocator<ObjectState<Value>>());
  struct Nothing {};
  [[no_unique_address]] std::conditional_t<std::is_void_v<Value>, Nothing, std::optional<Value>>
      staged_;
};

/// A new task: its record, and the body `Body(args...)` built in the same block (its result
/// is a block of its own).
template <typename Body, typename... Args>
std::pair<std::shared_ptr<TaskRecord>, Body*> make_task(Scheduler& scheduler,
                                                        std::shared_ptr<const TaskSpec> spec,
                                                        Args&&... args) {
  void* where = nullptr;
  std::shared_ptr<TaskRecord> record =
      allocate_task(scheduler, std::move(spec), sizeof(Body), alignof(Body), where);
  Body* body = ::new (where) Body(std::forward<Args>(args)...);
  attach_body(*record, *body);
  return {std::move(record), body};
}

/// A ref to a task's result.
template <typename Body>
ObjectRef<typename Body::Value> result_ref(Body& body) {
  return ObjectRef<typename Body::Value>(body.result_state());
}

/// Submits a task to the runtime's scheduler (defined with the runtime).
void submit(Runtime& runtime, std::shared_ptr<TaskRecord> task);
Scheduler& scheduler_of(Runtime& runtime);
/// Checks the options; `kind` ("task", "actor") names what they are for in messages. A
/// codelet's spec may carry a GPU variant (see TaskSpec).
std::shared_ptr<const TaskSpec> make_task_spec(Runtime& runtime, const TaskOptions& options,
                                               std::string default_name,
                                               std::string_view kind = "task",
                                               bool codelet = false);
/// The demangled name of a type.
std::string type_name(std::type_index type);

/// Where a call of the function at `address` with `spec` runs in cluster mode: the rank and
/// the registered function when on another rank, else -1 and null (here).
/// @throws InvalidArgumentError for a function pinned to another rank but not registered.
std::pair<int, const RemoteFunction*> remote_placement(Runtime& runtime, const TaskSpec& spec,
                                                       const void* address);
/// The spec of the local task that stands for a call of `function` on `rank` (RemoteCall).
/// Refuses a task that is not a registered function but is pinned to another rank.
void check_runs_here(const TaskSpec& spec);
std::shared_ptr<const TaskSpec> remote_call_spec(Runtime& runtime, const TaskSpec& spec,
                                                 int rank, const RemoteFunction& function);

template <typename F>
constexpr bool kIsFunctionPointer =
    std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>;

}  // namespace detail

/// @brief Submits calls of one function as tasks. Cheap to copy; made by Runtime::task.
/// @tparam F the function, lambda or functor type.
template <typename F>
class TaskFactory {
 public:
  TaskFactory(Runtime& runtime, std::shared_ptr<const F> f,
              std::shared_ptr<const detail::TaskSpec> spec)
      : runtime_(&runtime), f_(std::move(f)), spec_(std::move(spec)) {}

  /// @brief The same function with other options.
  /// @throws InvalidArgumentError naming the first option that breaks a rule.
  [[nodiscard]] TaskFactory options(const TaskOptions& options) const {
    return TaskFactory(*runtime_, f_,
                       detail::make_task_spec(*runtime_, options, spec_->name, "task",
                                              detail::IsCodelet<F>::value));
  }

  /// @brief Submits one call. ObjectRef arguments are waited for before the function runs.
  /// @return a ref to the result (ObjectRef<void> for a function returning nothing).
  /// @throws InfeasibleError if the demand exceeds the runtime's totals.
  template <typename... Args>
  [[nodiscard]] auto remote(Args&&... args) const {
    detail::check_callable<F, std::decay_t<Args>...>();
    if constexpr (detail::kIsFunctionPointer<F>) {
      if (spec_->options) {  // cluster mode, or a rank given
        auto [rank, function] =
            detail::remote_placement(*runtime_, *spec_, reinterpret_cast<const void*>(*f_));
        if (function) {
          const TaskOptions& options = *spec_->options;
          constexpr bool as_is = detail::FunctionSignature<F>::template takes_as_is<
              std::remove_cvref_t<typename detail::Resolved<std::decay_t<Args>>::type>...>();
          if constexpr (as_is) {
            // Values of the parameters' own types, refs among them ready, and nothing to
            // retry: sent from here.
            if ((options.max_retries == 0 || !options.retry_exceptions) &&
                (detail::ready_to_send(args) && ...)) {
              return remote_now(rank, *function, detail::resolve(args)...);
            }
          }
          return remote_on(rank, *function, std::forward<Args>(args)...);
        }
      }
    } else if (spec_->options) {
      detail::check_runs_here(*spec_);
    }
    using Task = detail::TypedTask<detail::SharedFunction<F>, std::decay_t<Args>...>;
    auto [task, body] = detail::make_task<Task>(detail::scheduler_of(*runtime_), spec_,
                                                detail::SharedFunction<F>{f_},
                                                std::forward<Args>(args)...);
    auto ref = detail::result_ref(*body);
    detail::submit(*runtime_, std::move(task));
    return ref;
  }

  [[nodiscard]] const std::string& name() const { return spec_->name; }

 private:
  // A call on another rank whose arguments are ready as they are: encoded and sent by the
  // caller; the result's object is filled when the answer comes.
  template <typename... Args>
  auto remote_now(int rank, const detail::RemoteFunction& function, const Args&... args) const {
    using Value = typename detail::FunctionSignature<F>::Value;
    typename detail::FunctionSignature<F>::ArgumentViews views(args...);
    auto state = std::make_shared<detail::ObjectState<Value>>();
    detail::live_cluster_link(function.name())
        .send(rank, function, &views, *spec_->options, detail::reply_into(state, function));
    return ObjectRef<Value>(std::move(state));
  }

  // A call on another rank whose arguments must be resolved (or converted) first: a local
  // task, holding no CPU, takes them resolved, sends them and waits for the result.
  template <typename... Args>
  auto remote_on(int rank, const detail::RemoteFunction& function, Args&&... args) const {
    using Call = typename detail::RemoteCallOf<F>::type;
    auto call = std::make_shared<const Call>(Call{&function, rank, spec_->options});
    using Task = detail::TypedTask<detail::SharedFunction<Call>, std::decay_t<Args>...>;
    auto spec = detail::remote_call_spec(*runtime_, *spec_, rank, function);
    auto [task, body] = detail::make_task<Task>(detail::scheduler_of(*runtime_), std::move(spec),
                                                detail::SharedFunction<Call>{std::move(call)},
                                                std::forward<Args>(args)...);
    auto ref = detail::result_ref(*body);
    detail::submit(*runtime_, std::move(task));
    return ref;
  }

  Runtime* runtime_;
  std::shared_ptr<const F> f_;
  std::shared_ptr<const detail::TaskSpec> spec_;
};

}  // namespace spindle
