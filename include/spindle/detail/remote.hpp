// What the runtime knows of cluster mode: functions registered to run on other ranks
// (SPINDLE_REMOTE in spindle/cluster.hpp makes them), and the link to the cluster that carries
// their calls. The runtime needs neither MPI nor a serialisation library: a registered
// function encodes its own arguments and result, and the cluster layer installs the link.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>

#include "spindle/object_ref.hpp"

namespace spindle {

class Runtime;
struct TaskOptions;

namespace detail {

/// A function that may run on another rank, found by its address where it is called and by
/// its name where it runs.
class RemoteFunction {
 public:
  virtual ~RemoteFunction() = default;
  [[nodiscard]] virtual const std::string& name() const = 0;
  /// Appends the encoded arguments to `out`, reserving room for them and a little more.
  /// `arguments` points to a std::tuple<const std::decay_t<P>&...> of the parameters P.
  virtual void encode_arguments(const void* arguments, std::string& out) const = 0;
  /// Decodes the arguments, calls the function, and encodes its result.
  [[nodiscard]] virtual std::string invoke(std::string_view arguments) const = 0;
  /// Stores the decoded result in `*result`, a std::optional<R> (nothing for void).
  virtual void decode_result(std::string_view bytes, void* result) const = 0;
};

/// Registers `function` under its name; called once per function, before main.
/// @throws std::logic_error if another function has the name.
bool register_remote_function(const void* address, std::unique_ptr<RemoteFunction> function);
/// The registered function at `address`, or null.
[[nodiscard]] const RemoteFunction* find_remote_function(const void* address);
/// The registered function named `name`, or null.
[[nodiscard]] const RemoteFunction* find_remote_function(std::string_view name);

/// The cluster a process belongs to (installed by spindle::Cluster while it lives).
class ClusterLink {
 public:
  virtual ~ClusterLink() = default;
  [[nodiscard]] virtual int rank() const = 0;
  [[nodiscard]] virtual int size() const = 0;
  /// The rank a call with these options runs on: options.rank if set, else one whose totals
  /// fit the demand. Throws InvalidArgumentError for a rank out of range and
  /// InfeasibleError for a demand no rank fits.
  [[nodiscard]] virtual int place(const TaskOptions& options) = 0;
  /// What a call's answer does where it arrives: given the encoded result, or the failure.
  using Reply = std::function<void(std::string_view result, std::exception_ptr failure)>;
  /// Sends a call of `function` to `rank`; `reply` runs once, on the thread that receives the
  /// answer, never inside send. `arguments` is as RemoteFunction::encode_arguments takes it.
  /// @throws Error if the call cannot be sent (then `reply` never runs).
  virtual void send(int rank, const RemoteFunction& function, const void* arguments,
                    const TaskOptions& options, Reply reply) = 0;
  /// A runtime made in this process: the first one serves the calls other ranks send here.
  virtual void attach(Runtime& runtime) = 0;
  virtual void detach(Runtime& runtime) = 0;
};

/// The link, or null when the process runs alone.
[[nodiscard]] ClusterLink* cluster_link();
void set_cluster_link(ClusterLink* link);

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
ClusterLink::Reply reply_into(std::shared_ptr<ObjectState<Value>> state,
                              const RemoteFunction& function) {
  return [state = std::move(state), &function](std::string_view bytes, std::exception_ptr failure) {
    if (failure) {
      state->fail(failure);
      return;
    }
    try {
      if constexpr (std::is_void_v<Value>) {
        state->set_value();
      } else {
        std::optional<Value> value;
        function.decode_result(bytes, &value);
        state->set_value(std::move(*value));
      }
    } catch (...) {
      state->fail(std::current_exception());
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
    cluster_link()->send(rank, *function, &views, *options, reply_into(state, *function));
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
