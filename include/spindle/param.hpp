// The parameter server: a vector of parameters split into shards, each kept by an actor in a
// Buffer on a GPU (shards spread across GPUs) or in host memory without one, and updated by
// the GPU layer's kernels (spindle/ops.hpp).
//
//   spindle::ParameterServer<float> ps(rt, std::vector<float>(n), {.num_shards = 4,
//                                      .optimizer = spindle::Optimizer::adam, .lr = 1e-3});
//   ps.push(gradient);                      // asynchronous: split by shard, applied in order
//   std::vector<float> w = ps.pull();       // every push made before by this caller applied
//
// Consistency: a shard applies pushes in the order each caller made them (actor order), and a
// pull from a caller sees every push it made before. In synchronous mode each shard sums the
// pushes of a round in place and, once `workers` of them arrived, makes one update with
// their mean.
//
// The data path: `pull(out)` has each shard copy its values straight into `out`, in
// parallel, holding no ref that a later update would have to copy around; `push_view` hands
// the shards views of the caller's gradient instead of copies (the caller keeps it alive
// and unchanged until the refs are done). A loop of pull(out), compute, push_view, get moves
// each parameter once each way and allocates nothing after its first round.
//
// Failures: a shard whose actor crashes, or is killed with no_restart = false, is built again
// (within max_restarts) and goes on from what it kept: values, optimiser state, the round so
// far, the step count. Pushes queued meanwhile wait for it, and the push it was taking in runs
// again, but a push is never applied twice. A shard killed for good fails its pushes and pulls
// with ActorDiedError.
//
// Thread safety: every member may be called from any thread or task at once.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "spindle/buffer.hpp"
#include "spindle/ops.hpp"
#include "spindle/runtime.hpp"

namespace spindle {

enum class Optimizer : std::uint8_t { sgd, momentum, adam, adamw };
enum class UpdateMode : std::uint8_t { asynchronous, synchronous };

/// @brief How a ParameterServer is split and updated.
struct ParameterServerOptions {
  std::size_t num_shards = 2;
  Optimizer optimizer = Optimizer::sgd;
  double lr = 0.01;
  /// For Optimizer::momentum.
  double momentum = 0.9;
  bool nesterov = false;
  /// For Optimizer::adam and adamw.
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  UpdateMode mode = UpdateMode::asynchronous;
  /// Synchronous mode: the pushes that make one update.
  std::size_t workers = 1;
  /// Keep shards on the GPUs when there are any.
  bool use_gpus = true;
  /// Times a shard's actor is built again after a crash or a kill with no_restart = false
  /// (-1: no limit). It goes on from the values, optimiser state, round and step count it
  /// kept, and a push it was taking in when it went down is retried, never applied twice.
  int max_restarts = -1;
};

namespace detail {

/// Throws InvalidArgumentError naming the first bad option (the optimiser's are checked by
/// the kernels' own checks).
void check(const ParameterServerOptions& options, std::size_t size);
/// The GPU share each shard asks for: 0 without GPUs, else spread evenly over them.
double shard_gpu_share(const ParameterServerOptions& options);

/// A checkpoint's header: what it holds besides the values.
struct CheckpointHeader {
  std::uint32_t element_bytes = 0;
  std::uint64_t count = 0;
  std::uint64_t steps = 0;
};
/// Writes header, values and a checksum; throws CheckpointError naming the file.
void write_checkpoint(const std::string& path, const CheckpointHeader& header, const void* values);
/// Reads and verifies a whole checkpoint (magic, version, size, checksum) and checks that it
/// holds `expected.count` elements of `expected.element_bytes`; returns its header and values.
std::pair<CheckpointHeader, std::vector<char>> read_checkpoint(const std::string& path,
                                                               const CheckpointHeader& expected);
/// As read_checkpoint, for bytes at hand (`path` names them in errors). Bytes of any content
/// are safe: what is not a whole checkpoint of the expected shape is refused.
std::pair<CheckpointHeader, std::vector<char>> parse_checkpoint(std::span<const char> bytes,
                                                                const std::string& path,
                                                                const CheckpointHeader& expected);

/// The id of a push, unique in the process: a shard tells a retried push from a new one by it.
[[nodiscard]] std::uint64_t next_push_id() noexcept;

/// What a shard keeps. The shard's actor holds it through its constructor's argument, so an
/// instance rebuilt after a crash (or a kill with no_restart = false) goes on from it: no
/// update taken in is lost.
template <typename T>
struct ShardState {
  explicit ShardState(std::vector<T> values) : initial(std::move(values)) {}
  std::vector<T> initial;  // the first build's values, dropped once they are in `params`
  ObjectRef<Buffer<T>> params;
  Buffer<T> first, second;  // velocity, or Adam's two moments
  Buffer<T> sum;          // synchronous: the round's pushes summed so far
  std::size_t round = 0;  // and how many they are
  Buffer<T> mean;         // the last push's: (sum + its gradient) / workers, for the update
  std::uint64_t steps = 0;
  std::uint64_t last_taken = 0;  // the id of the last push taken in
  // The last push the previous instance took in: its call may have been interrupted after
  // taking it in, and then its retry, which runs first on this instance, must not take it
  // in again. Once another push ran, no such retry can come.
  std::uint64_t taken_before_restart = 0;
};

/// One shard: an actor over a ShardState.
template <typename T>
class ParameterShard {
 public:
  /// A new shard's state, for the constructor.
  static std::shared_ptr<ShardState<T>> initial_state(std::vector<T> values) {
    return std::make_shared<ShardState<T>>(std::move(values));
  }

  ParameterShard(std::shared_ptr<ShardState<T>> state, ParameterServerOptions options)
      : options_(options), state_(std::move(state)) {
    ShardState<T>& s = *state_;
    if (s.params.valid()) {  // rebuilt: the last instance's push may come again
      s.taken_before_restart = s.last_taken;
      return;
    }
    s.params = stored(Buffer<T>(s.initial));
    std::vector<T>().swap(s.initial);
    Location at = s.params.get().location();
    if (options_.optimizer != Optimizer::sgd) s.first = Buffer<T>(s.params.get().size(), at);
    if (options_.optimizer == Optimizer::adam || options_.optimizer == Optimizer::adamw) {
      s.second = Buffer<T>(s.params.get().size(), at);
    }
  }

  /// The current values, without a copy; a later update copies them first if the ref is kept.
  ObjectRef<Buffer<T>> pull() const { return state_->params; }

  /// Applies (or, synchronously, adds to the round) push `id`, once: a retry of a push taken
  /// in before a restart changes nothing. Returns the updates made so far. The gradient is
  /// read during the call only (it may be a view of the caller's memory). A push that throws
  /// (a gradient of the wrong size, an update that failed) is not taken in: the round and the
  /// step count stay as they were.
  std::uint64_t push(std::uint64_t id, const std::shared_ptr<const Buffer<T>>& gradient) {
    ShardState<T>& s = *state_;
    if (std::exchange(s.taken_before_restart, 0) == id) return s.steps;
    detail::check_same_size(s.params.get().size(), gradient->size(), "push: the gradient");
    if (options_.mode == UpdateMode::asynchronous || options_.workers == 1) {
      update(writable(), *gradient);
    } else if (s.round + 1 < options_.workers) {  // into the sum, which only this changes
      if (s.round == 0) {
        if (s.sum.size() != gradient->size()) {
          s.sum = Buffer<T>::uninitialized(gradient->size(), gradient->location());
        }
        s.sum.copy_from(*gradient);
      } else {
        ops::axpy<T>(s.sum, T(1), *gradient);
      }
      ++s.round;
    } else {  // the last of the round: the sum stays as it was until the update is made
      Buffer<T>& params = writable();
      if (s.mean.size() != gradient->size()) {
        s.mean = Buffer<T>::uninitialized(gradient->size(), gradient->location());
      }
      const Buffer<T>* parts[] = {&s.sum, gradient.get()};
      ops::aggregate<T>(s.mean, parts, ops::Reduction::sum);
      ops::scale<T>(s.mean, T(1) / static_cast<T>(options_.workers));
      update(params, s.mean);
      s.round = 0;
    }
    s.last_taken = id;
    return s.steps;
  }

  /// Copies the values into host memory at `out` (as many elements as the shard holds).
  void copy_into(T* out) const {
    const Buffer<T>& params = state_->params.get();
    params.copy_to(std::span<T>(out, params.size()));
  }

  /// Replaces the values (a loaded checkpoint) and the update count.
  void set(const Buffer<T>& values, std::uint64_t steps) {
    writable().copy_from(values);
    state_->steps = steps;
  }

  [[nodiscard]] std::uint64_t steps() const { return state_->steps; }

 private:
  static ObjectRef<Buffer<T>> stored(Buffer<T> buffer) {
    auto state = std::make_shared<ObjectState<Buffer<T>>>();
    state->set_value(std::move(buffer));
    return ObjectRef<Buffer<T>>(std::move(state));
  }

  // Copy on write: a pulled ref still held elsewhere keeps the values it was given.
  Buffer<T>& writable() {
    ObjectRef<Buffer<T>>& params = state_->params;
    if (params.state().use_count() > 1) params = stored(params.get().to(params.get().location()));
    auto& buffer = const_cast<Buffer<T>&>(params.get());  // held by this shard alone
    buffer.drop_replicas();
    return buffer;
  }

  // One update of `params` (writable()); the step is counted once the kernel is queued.
  void update(Buffer<T>& params, const Buffer<T>& gradient) {
    ShardState<T>& s = *state_;
    const std::uint64_t step = s.steps + 1;
    switch (options_.optimizer) {
      case Optimizer::sgd:
        ops::sgd(params, gradient, {.lr = options_.lr, .weight_decay = options_.weight_decay});
        break;
      case Optimizer::momentum:
        ops::sgd(params, gradient, s.first,
                 {.lr = options_.lr,
                  .momentum = options_.momentum,
                  .weight_decay = options_.weight_decay,
                  .nesterov = options_.nesterov});
        break;
      case Optimizer::adam:
      case Optimizer::adamw:
        ops::adam(params, gradient, s.first, s.second,
                  {.lr = options_.lr,
                   .beta1 = options_.beta1,
                   .beta2 = options_.beta2,
                   .eps = options_.eps,
                   .weight_decay = options_.weight_decay,
                   .decoupled = options_.optimizer == Optimizer::adamw,
                   .step = static_cast<std::int64_t>(step)});
        break;
    }
    s.steps = step;
  }

  ParameterServerOptions options_;
  std::shared_ptr<ShardState<T>> state_;
};

}  // namespace detail

/// @brief Parameters split into shard actors; see the top of this header.
/// @tparam T float or double.
template <typename T>
class ParameterServer {
 public:
  using Shard = detail::ParameterShard<T>;

  /// @throws InvalidArgumentError for a bad option (num_shards 0 or above the size, workers
  /// 0, an optimiser option out of range).
  ParameterServer(Runtime& rt, const std::vector<T>& initial, ParameterServerOptions options = {})
      : size_(initial.size()), options_(options) {
    detail::check(options, initial.size());
    double gpus = detail::shard_gpu_share(options);
    for (std::size_t i = 0; i < options.num_shards; ++i) {
      auto [offset, count] = range(i);
      std::vector<T> slice(initial.begin() + offset, initial.begin() + offset + count);
      shards_.push_back(rt.actor<Shard>()
                            .options({.num_gpus = gpus,
                                      .max_restarts = options.max_restarts,
                                      .max_task_retries = -1})
                            .remote(Shard::initial_state(std::move(slice)), options));
    }
    for (const auto& ref : pull_shards()) locations_.push_back(ref.get().location());
  }

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] std::size_t num_shards() const { return shards_.size(); }
  /// The shards' actors, in order (to watch them, or to kill one).
  [[nodiscard]] const std::vector<ActorHandle<Shard>>& shards() const { return shards_; }
  /// Shard i's first element and element count.
  [[nodiscard]] std::pair<std::size_t, std::size_t> range(std::size_t i) const {
    std::size_t n = options_.num_shards;
    return {i * size_ / n, (i + 1) * size_ / n - i * size_ / n};
  }

  /// @brief Each shard's current values, where the shard keeps them, without a copy.
  [[nodiscard]] std::vector<ObjectRef<Buffer<T>>> pull_shards() const {
    std::vector<ObjectRef<ObjectRef<Buffer<T>>>> pending;
    for (const auto& shard : shards_) pending.push_back(shard.call(&Shard::pull));
    std::vector<ObjectRef<Buffer<T>>> refs;
    for (const auto& ref : pending) refs.push_back(ref.get());
    return refs;
  }

  /// @brief All values, concatenated in host memory.
  [[nodiscard]] std::vector<T> pull() const {
    std::vector<T> values(size_);
    pull(values);
    return values;
  }
  /// @brief All values, concatenated into `out` (size() elements), which a loop can reuse.
  /// Each shard copies its part straight into `out`, all shards at once.
  void pull(std::span<T> out) const {
    detail::check_same_size(size_, out.size(), "pull: the target");
    std::vector<ObjectRef<void>> copies;
    try {
      for (std::size_t i = 0; i < shards_.size(); ++i) {
        copies.push_back(shards_[i].call(&Shard::copy_into, out.data() + range(i).first));
      }
    } catch (...) {
      (void)wait(copies, {.num_returns = 0});  // those made write into `out`: let them end
      throw;
    }
    get(copies);  // every copy ends before this returns, failed or not
  }

  /// @brief All values, concatenated into a Buffer of size() elements: on the host as
  /// pull(span) does; on a GPU, each shard's values are copied in from where it keeps them.
  void pull(Buffer<T>& out) const {
    detail::check_same_size(size_, out.size(), "pull: the target buffer");
    if (!out.location().on_gpu()) return pull(out.host_span());
    std::vector<ObjectRef<Buffer<T>>> refs = pull_shards();
    for (std::size_t i = 0; i < refs.size(); ++i) refs[i].get().copy_to(out, range(i).first);
  }

  /// @brief Pushes a gradient held in host memory, split by shard; asynchronous. The refs
  /// tell, per shard, the updates made once this push was taken in.
  /// @throws InvalidArgumentError if the gradient's size is not size().
  std::vector<ObjectRef<std::uint64_t>> push(std::span<const T> gradient) const {
    detail::check_same_size(size_, gradient.size(), "push: the gradient");
    return push_slices([&](std::size_t offset, std::size_t count, Location at) {
      return std::make_shared<const Buffer<T>>(gradient.subspan(offset, count), at);
    });
  }
  /// @brief Pushes a gradient held in a Buffer (on a GPU or the host), split by shard.
  std::vector<ObjectRef<std::uint64_t>> push(const Buffer<T>& gradient) const {
    detail::check_same_size(size_, gradient.size(), "push: the gradient");
    return push_slices([&](std::size_t offset, std::size_t count, Location at) {
      auto slice = std::make_shared<Buffer<T>>(Buffer<T>::uninitialized(count, at));
      slice->copy_from(gradient, offset);
      return std::shared_ptr<const Buffer<T>>(std::move(slice));
    });
  }

  /// @brief Pushes a gradient in host memory without copying it: each shard in host memory
  /// reads its slice of `gradient` in place (a shard on a GPU gets its slice copied there, as
  /// push does). The caller keeps `gradient` alive and unchanged until every returned ref is
  /// done, even when one fails: `spindle::get(ps.push_view(g))` waits for all of them
  /// before it throws the first error. (A loop of ref.get() stops at the first.)
  /// @throws InvalidArgumentError if the gradient's size is not size().
  std::vector<ObjectRef<std::uint64_t>> push_view(std::span<const T> gradient) const {
    detail::check_same_size(size_, gradient.size(), "push_view: the gradient");
    return push_slices([&](std::size_t offset, std::size_t count, Location at) {
      std::span<const T> slice = gradient.subspan(offset, count);
      return at.on_gpu() ? std::make_shared<const Buffer<T>>(slice, at) : Buffer<T>::view(slice);
    });
  }

  /// @brief As push_view(span) for a Buffer in host memory; a GPU buffer's slices are copied,
  /// as push does. The same rule holds: keep `gradient` unchanged until the refs are done.
  std::vector<ObjectRef<std::uint64_t>> push_view(const Buffer<T>& gradient) const {
    if (!gradient.location().on_gpu()) return push_view(gradient.host_span());
    return push(gradient);
  }

  /// @brief Updates each shard has made (equal for all shards unless pushes are in flight).
  [[nodiscard]] std::vector<std::uint64_t> steps() const {
    std::vector<ObjectRef<std::uint64_t>> refs;
    for (const auto& shard : shards_) refs.push_back(shard.call(&Shard::steps));
    return get(refs);
  }

  /// @brief Writes the values and the update count to `path` with a checksum.
  /// @throws CheckpointError naming the file when it cannot be written.
  void save(const std::string& path) const {
    std::vector<T> values = pull();
    std::vector<std::uint64_t> counts = steps();
    detail::write_checkpoint(path, {sizeof(T), size_, counts.empty() ? 0 : counts.front()},
                             values.data());
  }

  /// @brief Replaces the values and update count with a checkpoint's. A missing, corrupt or
  /// mismatched file is refused with CheckpointError, and the live values stay as they were.
  /// Optimiser state (momentum, Adam's moments) is not saved and starts from where it is.
  void load(const std::string& path) {
    auto [header, bytes] = detail::read_checkpoint(path, {sizeof(T), size_, 0});
    std::span<const T> values(reinterpret_cast<const T*>(bytes.data()), size_);
    std::vector<ObjectRef<void>> done;
    for (std::size_t i = 0; i < shards_.size(); ++i) {
      auto [offset, count] = range(i);
      Buffer<T> slice(values.subspan(offset, count), Location::host());
      done.push_back(shards_[i].call(&Shard::set, std::move(slice), header.steps));
    }
    for (const auto& ref : done) ref.get();
  }

 private:
  // One push per shard of the slice `make(offset, count, where the shard is)` gives. A view
  // reads the caller's memory: if a later slice fails, the pushes made end before the error
  // leaves.
  template <typename Make>
  std::vector<ObjectRef<std::uint64_t>> push_slices(Make make) const {
    std::vector<ObjectRef<std::uint64_t>> refs;
    try {
      for (std::size_t i = 0; i < shards_.size(); ++i) {
        auto [offset, count] = range(i);
        refs.push_back(shards_[i].call(&Shard::push, detail::next_push_id(),
                                       make(offset, count, locations_[i])));
      }
    } catch (...) {
      (void)wait(refs, {.num_returns = 0});
      throw;
    }
    return refs;
  }

  std::size_t size_;
  ParameterServerOptions options_;
  std::vector<ActorHandle<Shard>> shards_;
  std::vector<Location> locations_;  // where each shard keeps its values
};

/// @brief Named values kept by one actor, as the Ray crash course's parameter server:
/// get(key), set(key, value), keys(). Calls from one caller apply in order.
/// @tparam V the value type (copied in and out).
template <typename V>
class KeyedParameterServer {
  struct Store {
    std::map<std::string, V> values;
    V get(const std::string& key) const {
      auto found = values.find(key);
      if (found == values.end()) {
        std::string known;
        for (const auto& [name, value] : values)
          known += (known.empty() ? "'" : ", '") + name + "'";
        throw InvalidArgumentError("key '" + key + "' is not set; the keys are: " +
                                   (known.empty() ? std::string("(none)") : known));
      }
      return found->second;
    }
    void set(const std::string& key, V value) { values[key] = std::move(value); }
    std::vector<std::string> keys() const {
      std::vector<std::string> names;
      for (const auto& [name, value] : values) names.push_back(name);
      return names;
    }
  };

 public:
  explicit KeyedParameterServer(Runtime& rt, std::map<std::string, V> initial = {})
      : store_(rt.actor<Store>().remote(Store{std::move(initial)})) {}

  /// The value of `key`; the ref fails (TaskError nesting InvalidArgumentError naming the
  /// key and the keys set) if it is not set.
  [[nodiscard]] ObjectRef<V> get(std::string key) const {
    return store_.call(&Store::get, std::move(key));
  }
  ObjectRef<void> set(std::string key, V value) const {
    return store_.call(&Store::set, std::move(key), std::move(value));
  }
  /// The keys, sorted.
  [[nodiscard]] ObjectRef<std::vector<std::string>> keys() const {
    return store_.call(&Store::keys);
  }

 private:
  ActorHandle<Store> store_;
};

}  // namespace spindle
