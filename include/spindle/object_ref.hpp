// Object references: typed handles to immutable values that may not exist yet.
//
// An ObjectRef<T> shares ownership of one value, made by Runtime::put or by a task. It is
// pending until the value exists, then ready (or failed, holding the task's error). Copying
// a ref never copies the value, and get() returns a reference to the one stored value.
//
// Thread safety: refs may be copied, passed and read from any thread or task at once. The
// value is immutable once ready. get() and wait() block only the calling fiber when called
// inside a task (and give the task's CPU back while they wait), or the calling thread
// outside one.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "spindle/detail/thread_annotations.hpp"
#include "spindle/errors.hpp"

namespace spindle {

namespace detail {

class TaskRecord;

/// Told once when an object it waits on completes (ready or failed).
class Waiter {
 public:
  virtual ~Waiter() = default;
  virtual void on_complete() noexcept = 0;
};

/// The untyped part of an object: status, error, and who waits for it.
class ObjectStateBase {
 public:
  enum class Status : std::uint8_t { pending, ready, failed };

  ObjectStateBase() = default;
  ObjectStateBase(const ObjectStateBase&) = delete;
  ObjectStateBase& operator=(const ObjectStateBase&) = delete;
  // Frees the waiter list of an object that never completed.
  virtual ~ObjectStateBase();

  [[nodiscard]] Status status() const noexcept { return status_.load(std::memory_order_acquire); }
  [[nodiscard]] bool done() const noexcept { return status() != Status::pending; }
  /// The error of a failed object; null otherwise.
  [[nodiscard]] std::exception_ptr error() const noexcept {
    return done() ? error_ : std::exception_ptr();
  }
  /// Rethrows the error of a failed object.
  void rethrow_if_failed() const {
    if (status() == Status::failed) std::rethrow_exception(error_);
  }

  /// Registers `waiter` unless the object is already done; returns false in that case.
  bool add_waiter(std::shared_ptr<Waiter> waiter);
  /// Forgets a waiter that stopped waiting (a timeout).
  void remove_waiter(const Waiter* waiter);
  /// Completes the object with an error; does nothing if it is already done.
  void fail(std::exception_ptr error) noexcept;

  /// The task that computes this object, kept alive by the returned pointer; null once that
  /// task's record is gone (it finished, or never ran), or if no task computes it. Used by
  /// cancel, inline runs and error messages.
  [[nodiscard]] std::shared_ptr<TaskRecord> producer() const;
  /// Whether a task of this process computes the object (rather than `put`, or an answer
  /// from another rank); stays true once that task is gone.
  [[nodiscard]] bool made_by_task() const noexcept { return made_by_task_; }
  /// Calls `look(*task)` with the task that computes this object, if it is still there, and
  /// returns what it returns (or `otherwise`). Cheaper than producer(), as it takes no share
  /// of the record, but `look` runs under the object's lock: it must only read a few fields.
  template <typename Look, typename Result>
  Result look_at_producer(Look look, Result otherwise) const {
    SpinLockGuard lock(lock_);
    return producer_ ? look(*producer_) : otherwise;
  }
  /// Set by the task's record when its body is built, before the object is shared.
  void set_producer(TaskRecord& task) noexcept;
  /// Called by the task's record as it is destroyed.
  void forget_producer() noexcept;

 protected:
  /// Completes the object once its value is stored.
  void mark_ready() noexcept { complete(Status::ready, nullptr); }

 private:
  void complete(Status status, std::exception_ptr error) noexcept;

  // One registered waiter; an object keeps them in a list, newest first.
  struct WaiterNode {
    std::shared_ptr<Waiter> waiter;
    WaiterNode* next;
  };
  static void delete_list(WaiterNode* node) noexcept;

  // Whether waiters were ever added: an object nobody waits for completes with one
  // compare-and-swap and no lock (most task results are read after they are done).
  // Every task's result is one of these, and a kept ref keeps only it: they are laid out
  // small, 40 bytes.
  enum class Waiters : std::uint8_t { none, some, closed };
  std::atomic<Status> status_{Status::pending};
  std::atomic<bool> claimed_{false};  // by the first completion
  std::atomic<Waiters> waiters_state_{Waiters::none};
  bool made_by_task_ = false;  // set before the object is shared
  mutable SpinLock lock_;  // held for a few instructions, never while blocking
  std::exception_ptr error_;  // written once, by the completion that claimed the object
  WaiterNode* waiters_ SPINDLE_GUARDED_BY(lock_) = nullptr;
  // Not owned: the record lives apart and is freed once it has run, while refs keep only
  // this object. Its destructor clears the pointer under the lock, so a reader holding the
  // lock may still try to take a share of it.
  TaskRecord* producer_ SPINDLE_GUARDED_BY(lock_) = nullptr;
};

template <typename T>
class ObjectState final : public ObjectStateBase {
  static_assert(std::is_nothrow_destructible_v<T>,
                "spindle: a stored value (a task's or call's result, a put value) must not throw "
                "from its destructor: the store destroys it wherever its last ref goes, where no "
                "caller could catch the exception. Make the destructor noexcept and report the "
                "failure another way");

 public:
  template <typename... Args>
  void set_value(Args&&... args) {
    value_.emplace(std::forward<Args>(args)...);
    mark_ready();
  }
  [[nodiscard]] const T& value() const { return *value_; }

 private:
  std::optional<T> value_;
};

template <>
class ObjectState<void> final : public ObjectStateBase {
 public:
  void set_value() { mark_ready(); }
  void value() const {}
};

using Clock = std::chrono::steady_clock;

/// Blocks until at least `needed` of `objects` are done, or the deadline passes. Returns
/// whether enough are done. Inside a task only the fiber waits, and the task's CPU is
/// given back meanwhile. Throws DeadlockError if the runtime finds that no task can
/// progress while this waits.
bool block_until_done(std::span<ObjectStateBase* const> objects, std::size_t needed,
                      std::optional<Clock::time_point> deadline);

/// Blocks until every object is done; with a timeout, throws GetTimeoutError (saying how
/// many were ready) once it has passed.
void block_until_all_done(std::span<ObjectStateBase* const> objects,
                          std::optional<Clock::duration> timeout);
[[noreturn]] void throw_empty_ref(const std::string& what);

}  // namespace detail

/// @brief A typed, shared handle to an immutable value that may still be computed.
/// @tparam T the value's type; `void` for tasks that return nothing.
template <typename T>
class ObjectRef {
 public:
  using value_type = T;

  /// An empty ref; valid() is false.
  ObjectRef() = default;
  explicit ObjectRef(std::shared_ptr<detail::ObjectState<T>> state) : state_(std::move(state)) {}

  [[nodiscard]] bool valid() const noexcept { return state_ != nullptr; }
  /// True once the value exists or the task failed; never blocks.
  /// @throws InvalidArgumentError on an empty ref, as do get() and every use of one.
  [[nodiscard]] bool done() const { return checked().done(); }
  [[nodiscard]] bool failed() const {
    return checked().status() == detail::ObjectStateBase::Status::failed;
  }

  /// @brief Waits for the value and returns it, without copying; or throws the task's error
  /// (TaskError, CancelledError, DeadlockError). The reference lives as long as some ref to
  /// the object does.
  decltype(auto) get() const& {
    wait_until_done(std::nullopt);
    return value_now();
  }
  /// @brief On a temporary ref (`task.remote().get()`), a copy of the value: a reference
  /// would dangle once the temporary is gone, as in a range-for. Move-only values are still
  /// returned by reference; keep the ref for those.
  T get() const&& requires std::copy_constructible<T> {
    wait_until_done(std::nullopt);
    return value_now();
  }

  /// @brief As get(), but throws GetTimeoutError once `timeout` has passed.
  template <typename Rep, typename Period>
  decltype(auto) get(std::chrono::duration<Rep, Period> timeout) const& {
    wait_until_done(std::chrono::duration_cast<detail::Clock::duration>(timeout));
    return value_now();
  }
  template <typename Rep, typename Period>
  T get(std::chrono::duration<Rep, Period> timeout) const&& requires std::copy_constructible<T> {
    wait_until_done(std::chrono::duration_cast<detail::Clock::duration>(timeout));
    return value_now();
  }

  /// The shared state; for spindle's own use.
  [[nodiscard]] const std::shared_ptr<detail::ObjectState<T>>& state() const noexcept {
    return state_;
  }
  /// The untyped state; never null.
  /// @throws InvalidArgumentError on an empty ref.
  [[nodiscard]] detail::ObjectStateBase* base() const { return &checked(); }

  friend bool operator==(const ObjectRef& a, const ObjectRef& b) { return a.state_ == b.state_; }

 private:
  detail::ObjectState<T>& checked() const {
    if (!state_) detail::throw_empty_ref("this ObjectRef");
    return *state_;
  }
  void wait_until_done(std::optional<detail::Clock::duration> timeout) const {
    detail::ObjectStateBase* base = &checked();
    if (!base->done()) detail::block_until_all_done({&base, 1}, timeout);
  }
  decltype(auto) value_now() const {
    state_->rethrow_if_failed();
    if constexpr (std::is_void_v<T>) {
      return;
    } else {
      return static_cast<const T&>(state_->value());
    }
  }

  std::shared_ptr<detail::ObjectState<T>> state_;
};

/// @brief Waits for one object and returns its value (see ObjectRef::get).
template <typename T>
decltype(auto) get(const ObjectRef<T>& ref) {
  return ref.get();
}

/// @brief Waits for one object, up to `timeout` (see ObjectRef::get).
template <typename T, typename Rep, typename Period>
decltype(auto) get(const ObjectRef<T>& ref, std::chrono::duration<Rep, Period> timeout) {
  return ref.get(timeout);
}

namespace detail {

template <typename T>
std::vector<ObjectStateBase*> bases_of(const std::vector<ObjectRef<T>>& refs) {
  std::vector<ObjectStateBase*> bases;
  bases.reserve(refs.size());
  for (const ObjectRef<T>& ref : refs) {
    if (!ref.valid()) throw_empty_ref("refs[" + std::to_string(bases.size()) + "]");
    bases.push_back(ref.base());
  }
  return bases;
}

/// What get(refs) returns: the values, or nothing for refs of void.
template <typename T>
using ValuesOf = std::conditional_t<std::is_void_v<T>, void, std::vector<T>>;

template <typename T>
ValuesOf<T> values_of(const std::vector<ObjectRef<T>>& refs) {
  if constexpr (std::is_void_v<T>) {
    for (const ObjectRef<T>& ref : refs) ref.get();  // throws the first error in order
  } else {
    std::vector<T> values;
    values.reserve(refs.size());
    for (const ObjectRef<T>& ref : refs) values.push_back(ref.get());
    return values;
  }
}

}  // namespace detail

/// @brief Waits for all objects and returns copies of their values, in order (nothing for
/// refs of void); throws the first error in order if any failed. For large values, prefer
/// ref.get() on each.
template <typename T>
detail::ValuesOf<T> get(const std::vector<ObjectRef<T>>& refs) {
  detail::block_until_all_done(detail::bases_of(refs), std::nullopt);
  return detail::values_of(refs);
}

/// @brief As get(refs), but throws GetTimeoutError once `timeout` has passed.
template <typename T, typename Rep, typename Period>
detail::ValuesOf<T> get(const std::vector<ObjectRef<T>>& refs,
                        std::chrono::duration<Rep, Period> timeout) {
  detail::block_until_all_done(detail::bases_of(refs),
                               std::chrono::duration_cast<detail::Clock::duration>(timeout));
  return detail::values_of(refs);
}

/// @brief Options of wait(): how many objects to wait for, and for how long at most.
struct WaitOptions {
  /// How many must be done; 0 means all of them.
  std::size_t num_returns = 1;
  std::optional<std::chrono::nanoseconds> timeout;
};

/// @brief The result of wait(): both lists keep the order of the input.
template <typename T>
struct WaitResult {
  std::vector<ObjectRef<T>> ready;
  std::vector<ObjectRef<T>> pending;
};

/// @brief Waits until `num_returns` objects are done (ready or failed) or the timeout passes,
/// then splits the refs into done and pending, each in input order. At most num_returns
/// refs are listed as ready, as in Ray.
/// @throws InvalidArgumentError if num_returns exceeds the number of refs.
template <typename T>
WaitResult<T> wait(const std::vector<ObjectRef<T>>& refs, WaitOptions options = {}) {
  std::size_t needed = options.num_returns == 0 ? refs.size() : options.num_returns;
  if (needed > refs.size()) {
    throw InvalidArgumentError("num_returns = " + std::to_string(options.num_returns) +
                               ": at most the number of refs (" + std::to_string(refs.size()) +
                               ") is allowed");
  }
  std::vector<detail::ObjectStateBase*> bases = detail::bases_of(refs);
  std::optional<detail::Clock::time_point> deadline;
  if (options.timeout) deadline = detail::Clock::now() + *options.timeout;
  detail::block_until_done(bases, needed, deadline);
  WaitResult<T> result;
  for (const ObjectRef<T>& ref : refs) {
    (ref.done() && result.ready.size() < needed ? result.ready : result.pending).push_back(ref);
  }
  return result;
}

}  // namespace spindle
