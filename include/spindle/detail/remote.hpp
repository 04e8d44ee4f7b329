// What the runtime knows of cluster mode: functions registered to run on other ranks
// (SPINDLE_REMOTE in spindle/cluster.hpp makes them), and the link to the cluster that carries
// their calls. The runtime needs neither MPI nor a serialisation library: a registered
// function encodes its own arguments and result, and the cluster layer installs the link.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>

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
  /// `arguments` points to a std::tuple<const std::decay_t<P>&...> of the parameters P.
  [[nodiscard]] virtual std::string encode_arguments(const void* arguments) const = 0;
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
  /// Runs `function` on `rank` and returns its encoded result, blocking only the calling
  /// fiber meanwhile; a failure there is thrown here.
  [[nodiscard]] virtual std::string call(int rank, const RemoteFunction& function,
                                         std::string arguments, const TaskOptions& options) = 0;
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
  using Result = R;
  using Arguments = std::tuple<std::decay_t<P>...>;
  using ArgumentViews = std::tuple<const std::decay_t<P>&...>;
};
template <typename R, typename... P>
struct FunctionSignature<R (*)(P...) noexcept> : FunctionSignature<R (*)(P...)> {};

/// The task that stands for a call running on another rank: it takes the call's arguments
/// resolved, sends them, and returns the result that comes back.
template <typename R, typename... P>
struct RemoteCall {
  const RemoteFunction* function;
  int rank;
  std::shared_ptr<const TaskOptions> options;

  R operator()(const std::decay_t<P>&... arguments) const {
    std::tuple<const std::decay_t<P>&...> views(arguments...);
    std::string reply =
        cluster_link()->call(rank, *function, function->encode_arguments(&views), *options);
    if constexpr (!std::is_void_v<R>) {
      std::optional<std::remove_cvref_t<R>> result;
      function->decode_result(reply, &result);
      return std::move(*result);
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
