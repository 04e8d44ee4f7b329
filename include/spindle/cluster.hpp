// Cluster mode: the same program on every rank of an Open MPI job.
//
//   int dot(const std::vector<int>& a, const std::vector<int>& b);
//   SPINDLE_REMOTE(dot);                     // may run on any rank, found there by its name
//
//   int main(int argc, char** argv) {
//     spindle::Cluster cluster(argc, argv);  // under mpirun, every rank but 0 serves here
//     spindle::Runtime rt;                   // rank 0 runs the driver: the rest of main
//     auto a = rt.put(std::vector<int>(1000, 1));
//     auto r = rt.task(dot).remote(a, a);                       // on whichever rank fits
//     auto s = rt.task(dot).options({.rank = 1}).remote(a, a);  // on rank 1
//     auto c = rt.actor<Counter>().options({.rank = 1}).remote(0);  // an actor on rank 1
//     auto n = c.call(&Counter::add, 5);                            // its calls go there
//   }
//
// with the actor's class and methods registered once, at namespace scope:
//
//   SPINDLE_REMOTE_ACTOR(Counter, int);  // the constructor's parameter types
//   SPINDLE_REMOTE_METHOD(Counter, add);
//
// `mpirun -np 4 ./prog` runs it on 4 ranks; `./prog` alone runs it as one process, as
// without a Cluster. Arguments and results travel serialised with cereal: standard types
// work as they are, a type of yours needs a `serialize(Archive&)` (cereal's rules), and one
// without is a compile-time error at SPINDLE_REMOTE. An argument or result that is one array
// of numbers or enums (a std::vector, std::string or Buffer; detail::Contiguous) travels as raw
// bytes instead, from 64 KiB on sent by MPI from its own memory into the value made for it on
// the other side; so does an array of a type of yours declared travels_as_bytes.
//
// Objects live with the rank that made them: a call's arguments (refs resolved first) are
// sent with it, and its result comes back once it is done, to be kept by the caller's ref.
#pragma once

#include <cereal/archives/binary.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/vector.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <istream>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <streambuf>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include "spindle/actor.hpp"
#include "spindle/buffer.hpp"
#include "spindle/detail/remote.hpp"
#include "spindle/object_ref.hpp"
#include "spindle/runtime.hpp"

namespace spindle {

/// @brief One rank of the job, as every rank sees it.
struct RankInfo {
  int rank = 0;
  std::string host;
  double num_cpus = 0;
  double num_gpus = 0;
  /// Bytes.
  double memory = 0;
  /// Custom resources, `node:<host>` (1 on every rank: detail::node_resource()) among them.
  std::map<std::string, double> resources;
};

/// @brief Joins the Open MPI job this process was started in, for as long as it lives.
///
/// Make it first in main, before any Runtime. Started by mpirun (or srun), every rank but 0
/// serves in the constructor: it runs the calls other ranks send it, on a Runtime of its own
/// made with `serving`, until rank 0's Cluster is destroyed; then it ends MPI (whoever started
/// it) and the process exits with status 0 without returning (as a Ray worker does). Rank 0 returns
/// and runs the rest of main, the driver. Started without mpirun, the process is rank 0 of 1 and
/// nothing changes.
///
/// Placement sees every rank's totals as its options say (`serving`, or `options_for(rank)`),
/// and the machine's where they leave a total unset; rank 0's describe the driver, whose
/// Runtime should be made with the same options. With MPI, every runtime made while a Cluster
/// lives also holds one `node:<host>` resource, so a demand for a share of it runs on that
/// machine.
class Cluster {
 public:
  /// @throws Error if MPI cannot start or lacks MPI_THREAD_MULTIPLE.
  Cluster(int& argc, char**& argv, const RuntimeOptions& serving = {});
  /// As above, with options of each rank's own, made by `options_for(rank)` on every rank
  /// (such as a custom resource that only some ranks hold).
  Cluster(int& argc, char**& argv, const std::function<RuntimeOptions(int rank)>& options_for);
  /// On rank 0: tells the other ranks to finish, and ends MPI if this Cluster started it (a
  /// program that called MPI_Init itself calls MPI_Finalize after this).
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  [[nodiscard]] int rank() const;
  [[nodiscard]] int size() const;
  /// Whether this spindle was built with MPI (SPINDLE_MPI); without it a Cluster runs alone,
  /// and status() and timeline() throw Error.
  [[nodiscard]] static bool with_mpi();
  /// Every rank's totals and host, by rank.
  [[nodiscard]] const std::vector<RankInfo>& ranks() const;
  /// Every rank's load, by rank: the status of the runtime that serves calls there (rank 0's:
  /// the first Runtime made after the Cluster; empty where there is none). Asks each rank,
  /// so it waits for their answers.
  [[nodiscard]] std::vector<RuntimeStatus> status() const;
  /// Writes one Chrome trace (Perfetto, chrome://tracing) of every rank's serving runtime,
  /// a process track per rank. Each rank records as its runtime's options say
  /// (RuntimeOptions::timeline, or SPINDLE_TIMELINE=1 in its environment).
  /// @throws Error naming the rank whose runtime does not record, or the file.
  void timeline(const std::string& path) const;
  /// Makes the collective group `name` of `ranks` (see CollectiveGroup): on rank 0, before
  /// the calls that use it are sent; every member joins it as the message reaches it.
  /// @throws InvalidArgumentError for a name in use, no ranks, a rank out of range or twice;
  ///         Error on a rank other than 0.
  void make_group(const std::string& name, std::vector<int> ranks);

  struct Impl;  // the link to the cluster (src/cluster)

 private:
  std::unique_ptr<Impl> impl_;
};

/// The rank this process is in the cluster; 0 without one.
[[nodiscard]] int this_rank();

namespace detail {

/// The element types collectives take.
enum class CollectiveType : std::uint8_t { f32, f64, i32, i64, u64 };
template <typename T>
constexpr CollectiveType collective_type() {
  using U = std::remove_const_t<T>;
  static_assert(std::is_same_v<U, float> || std::is_same_v<U, double> ||
                    std::is_same_v<U, std::int32_t> || std::is_same_v<U, std::int64_t> ||
                    std::is_same_v<U, std::uint64_t>,
                "spindle: collectives take float, double, std::int32_t, std::int64_t or "
                "std::uint64_t elements");
  if constexpr (std::is_same_v<U, float>) return CollectiveType::f32;
  if constexpr (std::is_same_v<U, double>) return CollectiveType::f64;
  if constexpr (std::is_same_v<U, std::int32_t>) return CollectiveType::i32;
  if constexpr (std::is_same_v<U, std::int64_t>) return CollectiveType::i64;
  return CollectiveType::u64;
}
enum class CollectiveOp : std::uint8_t { allreduce, reduce_scatter, allgather, broadcast, barrier };

}  // namespace detail

/// How allreduce and reduce_scatter combine the members' elements (MPI_SUM, MPI_PROD,
/// MPI_MIN, MPI_MAX).
enum class ReduceOp : std::uint8_t { sum, product, min, max };

/// @brief Arrays reduced and gathered among a group of ranks, as Ray's ray.util.collective:
/// made once by rank 0's driver (Cluster::make_group), then used by its name in code that
/// runs on each member rank, such as an actor pinned there.
///
///   cluster.make_group("trainers", {1, 2, 3});
///   // in a task or actor method on each of ranks 1, 2 and 3:
///   auto group = spindle::CollectiveGroup::get("trainers");
///   group.allreduce(std::span<double>(gradient));  // summed over the members, in place
///   group.allreduce(std::span<double>(loss), spindle::ReduceOp::max);
///
/// A call returns once every member has made it. Open MPI runs it (MPI_Allreduce and its kin,
/// on host memory), on a thread of the group's when it is called from a task or actor, whose
/// fiber waits with its CPU free meanwhile. Members make the same calls in the same order,
/// with the same sizes, one at a time (MPI's rule for collectives: a member that never makes
/// its call leaves the others waiting). A group lives as long as the Cluster; alone, a group
/// of rank 0 copies.
class CollectiveGroup {
 public:
  /// The group `name` this rank is a member of.
  /// @throws InvalidArgumentError if this rank is in no group of that name.
  [[nodiscard]] static CollectiveGroup get(const std::string& name);

  /// This rank's place in the group: 0 .. size() - 1, in the order of ranks().
  [[nodiscard]] int rank() const;
  [[nodiscard]] int size() const;
  /// The members, by their cluster ranks, ascending.
  [[nodiscard]] const std::vector<int>& ranks() const;
  /// The part [first, last) of `count` elements that member `member` holds in reduce_scatter
  /// and allgather: an even split, the first members one longer where it does not divide.
  [[nodiscard]] std::pair<std::size_t, std::size_t> block(std::size_t count, int member) const;

  /// Combines `values` over the members, element by element (by default their sum), in
  /// place.
  template <typename T>
  void allreduce(std::span<T> values, ReduceOp reduce = ReduceOp::sum) {
    run(detail::CollectiveOp::allreduce, detail::collective_type<T>(), values.data(),
        values.data(), values.size(), 0, sizeof(T), reduce);
  }
  /// Combines `values` over the members as allreduce does, and leaves this member's block
  /// (block(values.size(), rank())) of the result in `mine`.
  template <typename T>
  void reduce_scatter(std::span<const T> values, std::span<T> mine,
                      ReduceOp reduce = ReduceOp::sum) {
    check_block(values.size(), mine.size(), "reduce_scatter");
    run(detail::CollectiveOp::reduce_scatter, detail::collective_type<T>(), values.data(),
        mine.data(), values.size(), 0, sizeof(T), reduce);
  }
  /// Puts every member's block (`mine`: block(values.size(), rank())) into `values`. `mine`
  /// may be this member's block of `values` itself.
  /// @throws InvalidArgumentError if `mine` overlaps `values` elsewhere (so for
  /// reduce_scatter, if `mine` overlaps `values` at all).
  template <typename T>
  void allgather(std::span<const T> mine, std::span<T> values) {
    check_block(values.size(), mine.size(), "allgather");
    run(detail::CollectiveOp::allgather, detail::collective_type<T>(), mine.data(),
        values.data(), values.size(), 0, sizeof(T));
  }
  /// Copies member `root`'s `values` to every member's.
  template <typename T>
  void broadcast(std::span<T> values, int root) {
    run(detail::CollectiveOp::broadcast, detail::collective_type<T>(), values.data(),
        values.data(), values.size(), root, sizeof(T));
  }
  /// Returns once every member has called it.
  void barrier();

  struct State;  // src/cluster

 private:
  explicit CollectiveGroup(std::shared_ptr<const State> state) : state_(std::move(state)) {}
  void check_block(std::size_t count, std::size_t mine, const char* what) const;
  void run(detail::CollectiveOp op, detail::CollectiveType type, const void* in, void* out,
           std::size_t count, int root, std::size_t element_bytes,
           ReduceOp reduce = ReduceOp::sum);

  std::shared_ptr<const State> state_;
};

namespace detail {

struct HandleAccess {
  template <typename T>
  static NamedAddress address(const ActorHandle<T>& handle) {
    return address_to_send(handle.core_, handle.remote_, typeid(T));
  }
  template <typename T>
  static ActorHandle<T> received(const NamedAddress& address, const std::string& name) {
    FoundActor found = received_actor(address, name, typeid(T));
    return found ? ActorHandle<T>(std::move(found)) : ActorHandle<T>();
  }
};

}  // namespace detail

/// An actor handle travels to another rank as the actor's address, for an actor of a class
/// registered with SPINDLE_REMOTE_ACTOR: the task or actor that takes it there calls the same
/// actor (its methods registered with SPINDLE_REMOTE_METHOD). It arrives borrowed: it does
/// not keep the actor alive; the handles on the rank that made it do.
template <typename Archive, typename T>
void save(Archive& archive, const ActorHandle<T>& handle) {
  archive(detail::HandleAccess::address(handle), handle.valid() ? handle.name() : std::string());
}

template <typename Archive, typename T>
void load(Archive& archive, ActorHandle<T>& handle) {
  detail::NamedAddress address;
  std::string name;
  archive(address, name);
  handle = detail::HandleAccess::received<T>(address, name);
}

/// Specialise as std::true_type for a trivially copyable type of yours whose bytes are all it
/// is (no pointers, no handles), so that a std::vector or Buffer of it travels between ranks
/// as raw bytes, without a serialize:
///
///   template <> struct spindle::travels_as_bytes<Pixel> : std::true_type {};
template <typename T>
struct travels_as_bytes : std::false_type {};

namespace detail {

/// An element type whose arrays travel as raw bytes: a number (not bool), an enum, or a type
/// that travels_as_bytes (checked to be trivially copyable).
template <typename T>
struct RawElement {
  static_assert(!travels_as_bytes<T>::value ||
                    (std::is_trivially_copyable_v<T> && std::is_default_constructible_v<T>),
                "spindle::travels_as_bytes<T>: T must be trivially copyable and default "
                "constructible to travel as its bytes");
  static constexpr bool value = (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) ||
                                std::is_enum_v<T> || travels_as_bytes<T>::value;
};

/// How a value made of one contiguous array travels: its element count in the bytes, and its
/// elements as raw bytes (a block of their own once they are large). Not for other values.
template <typename V>
struct Contiguous {
  static constexpr bool value = false;
};

template <typename T, typename A>
struct Contiguous<std::vector<T, A>> {
  static constexpr bool value = RawElement<T>::value;
  using Element = T;
  static std::size_t size(const std::vector<T, A>& values) { return values.size(); }
  static const void* data(const std::vector<T, A>& values, Encoded&) { return values.data(); }
  static void* data(std::vector<T, A>& values) { return values.data(); }
  static std::vector<T, A> make(std::size_t size) { return std::vector<T, A>(size); }
};

template <typename C, typename Traits, typename A>
struct Contiguous<std::basic_string<C, Traits, A>> {
  using String = std::basic_string<C, Traits, A>;
  static constexpr bool value = RawElement<C>::value;
  using Element = C;
  static std::size_t size(const String& text) { return text.size(); }
  static const void* data(const String& text, Encoded&) { return text.data(); }
  static void* data(String& text) { return text.data(); }
  static String make(std::size_t size) { return String(size, C{}); }
};

/// A Buffer travels from host memory (a GPU buffer's elements are copied out first) and
/// arrives in host memory, unzeroed before its elements are received into it.
template <typename T>
struct Contiguous<Buffer<T>> {
  static constexpr bool value = RawElement<T>::value;
  using Element = T;
  static std::size_t size(const Buffer<T>& buffer) { return buffer.size(); }
  static const void* data(const Buffer<T>& buffer, Encoded& out) {
    if (!buffer.location().on_gpu()) return buffer.data();
    auto host = std::make_shared<const std::vector<T>>(buffer.to_vector());
    out.keep.push_back(host);
    return host->data();
  }
  static void* data(Buffer<T>& buffer) { return buffer.data(); }
  static Buffer<T> make(std::size_t size) {
    return Buffer<T>::uninitialized(size, Location::host());
  }
};

/// Arrays of at least this many bytes are sent as blocks of their own, from their memory
/// into the receiver's; smaller ones are copied into the message.
inline constexpr std::size_t kBlockBytes = std::size_t{64} << 10;

/// Names a type that cereal cannot serialise in the compiler's account of the instantiation.
template <typename T>
struct Serialisable {
  static_assert(
      Contiguous<T>::value ||
          (cereal::traits::is_output_serializable<T, cereal::BinaryOutputArchive>::value &&
           cereal::traits::is_input_serializable<T, cereal::BinaryInputArchive>::value),
      "spindle: a registered function's argument or result type cannot be serialised; the type "
      "is T in spindle::detail::Serialisable<T> above. Give it a serialize(Archive&) member or "
      "function, as cereal documents (cereal/types/... headers cover the standard types)");
  static_assert(std::is_default_constructible_v<T>,
                "spindle: a registered function's argument or result type must be default "
                "constructible, to be decoded into; the type is T in "
                "spindle::detail::Serialisable<T> above");
  static constexpr bool value = true;
};

/// Appends what is written to a string.
class StringSink : public std::streambuf {
 public:
  explicit StringSink(std::string& out) : out_(out) {}

 protected:
  std::streamsize xsputn(const char* bytes, std::streamsize count) override {
    out_.append(bytes, static_cast<std::size_t>(count));
    return count;
  }
  int_type overflow(int_type byte) override {
    if (!traits_type::eq_int_type(byte, traits_type::eof())) {
      out_.push_back(traits_type::to_char_type(byte));
    }
    return traits_type::not_eof(byte);
  }

 private:
  std::string& out_;
};

/// Reads from bytes held elsewhere, without copying them.
class ViewBuffer : public std::streambuf {
 public:
  explicit ViewBuffer(std::string_view bytes) {
    char* begin = const_cast<char*>(bytes.data());
    setg(begin, begin, begin + bytes.size());
  }
};

/// The bytes a value adds to its encoding, blocks aside (for reserving room).
template <typename V>
std::size_t encoded_bytes(const V& value) {
  if constexpr (Contiguous<V>::value) {
    const std::size_t bytes = Contiguous<V>::size(value) * sizeof(typename Contiguous<V>::Element);
    return 16 + (bytes >= kBlockBytes ? 0 : bytes);
  } else {
    return 16 + DataTraits<V>::bytes(value);
  }
}

/// Encodes one value: a contiguous one as its count and its elements (a block, or inline).
template <typename V>
void encode_one(cereal::BinaryOutputArchive& archive, const V& value, Encoded& out) {
  if constexpr (Contiguous<V>::value) {
    const std::size_t count = Contiguous<V>::size(value);
    const std::size_t bytes = count * sizeof(typename Contiguous<V>::Element);
    archive(static_cast<std::uint64_t>(count));
    const void* data = Contiguous<V>::data(value, out);
    if (bytes >= kBlockBytes) {
      out.blocks.push_back({data, bytes});
    } else {
      archive(cereal::binary_data(data, bytes));
    }
  } else {
    archive(value);
  }
}

/// Decodes one value as encode_one encoded it, receiving its block straight into it.
template <typename V>
void decode_one(cereal::BinaryInputArchive& archive, V& value, BlockSource* blocks) {
  if constexpr (Contiguous<V>::value) {
    using Element = typename Contiguous<V>::Element;
    std::uint64_t count = 0;
    archive(count);
    if (count > SIZE_MAX / sizeof(Element)) throw Error("a received array's size overflows");
    const std::size_t bytes = static_cast<std::size_t>(count) * sizeof(Element);
    if (bytes >= kBlockBytes) {
      if (!blocks) throw Error("a received array's elements came without their block");
      if (blocks->next_size() != bytes) {
        throw Error("a received array of " + std::to_string(bytes) +
                    " bytes came with a block of " + std::to_string(blocks->next_size()));
      }
    }
    value = Contiguous<V>::make(static_cast<std::size_t>(count));
    if (bytes >= kBlockBytes) {
      blocks->receive(Contiguous<V>::data(value), bytes);
    } else {
      archive(cereal::binary_data(Contiguous<V>::data(value), bytes));
    }
  } else {
    archive(value);
  }
}

/// Encodes the values a std::tuple<const V&...> at `views` refers to, after what `out` holds.
template <typename... V>
void encode_views(const void* views, Encoded& out) {
  const auto& values = *static_cast<const std::tuple<const V&...>*>(views);
  // Room for the values, their sizes and a header after.
  std::size_t bytes = 256;
  std::apply([&](const auto&... value) { ((bytes += encoded_bytes(value)), ...); }, values);
  out.bytes.reserve(out.bytes.size() + bytes);
  StringSink sink(out.bytes);
  std::ostream stream(&sink);
  cereal::BinaryOutputArchive archive(stream);
  std::apply([&](const auto&... value) { (encode_one(archive, value, out), ...); }, values);
}

/// Decodes values of types V.
template <typename... V>
std::tuple<V...> decode_values(Received encoded) {
  std::tuple<V...> values;
  ViewBuffer buffer(encoded.bytes);
  std::istream in(&buffer);
  cereal::BinaryInputArchive archive(in);
  std::apply([&](auto&... value) { (decode_one(archive, value, encoded.blocks), ...); }, values);
  return values;
}

/// Encodes one result into `out`; `value` must outlive the sending of its blocks.
template <typename Value>
void encode_value(const Value& value, Encoded& out) {
  out.bytes.reserve(64 + encoded_bytes(value));  // and a trailer
  StringSink sink(out.bytes);
  std::ostream stream(&sink);
  cereal::BinaryOutputArchive archive(stream);
  encode_one(archive, value, out);
}

/// Decodes a result into `*result`, a std::optional<Value> (nothing for void).
template <typename Value>
void decode_value(Received encoded, void* result) {
  if constexpr (!std::is_void_v<Value>) {
    auto& out = *static_cast<std::optional<Value>*>(result);
    ViewBuffer buffer(encoded.bytes);
    std::istream in(&buffer);
    cereal::BinaryInputArchive archive(in);
    decode_one(archive, out.emplace(), encoded.blocks);
  }
}

/// The rules a registered function's, method's or constructor's types follow, in one place.
template <typename R, typename... P>
constexpr bool check_remote_signature() {
  static_assert(!std::is_reference_v<R>,
                "spindle: a registered function or method returns a value, not a reference");
  static_assert((!IsObjectRef<std::decay_t<P>>::value && ...),
                "spindle: a registered function, method or constructor takes values, not "
                "ObjectRefs (a ref argument is resolved before the call and sent as its value)");
  static_assert(!IsObjectRef<std::remove_cv_t<R>>::value,
                "spindle: a registered function or method returns a value, not an ObjectRef");
  static_assert((Serialisable<std::decay_t<P>>::value && ...));
  static_assert(
      Serialisable<std::conditional_t<std::is_void_v<R>, int, std::remove_cv_t<R>>>::value);
  return true;
}

template <typename R, typename... P>
class TypedRemoteFunction final : public RemoteFunction {
  static_assert(check_remote_signature<R, P...>());
  using Arguments = std::tuple<std::decay_t<P>...>;

 public:
  TypedRemoteFunction(R (*function)(P...), std::string name)
      : function_(function), name_(std::move(name)) {}

  const std::string& name() const override { return name_; }

  void encode_arguments(const void* arguments, Encoded& out) const override {
    encode_views<std::decay_t<P>...>(arguments, out);
  }

  std::shared_ptr<void> decode_arguments(Received encoded) const override {
    return std::make_shared<Arguments>(decode_values<std::decay_t<P>...>(encoded));
  }

  Encoded invoke(void* arguments) const override {
    auto& values = *static_cast<Arguments*>(arguments);
    Encoded out;
    if constexpr (std::is_void_v<R>) {
      std::apply(function_, std::move(values));
    } else {
      auto result =
          std::make_shared<const std::remove_cv_t<R>>(std::apply(function_, std::move(values)));
      encode_value(*result, out);
      out.keep.push_back(std::move(result));
    }
    return out;
  }

  void decode_result(Received encoded, void* result) const override {
    decode_value<std::remove_cv_t<R>>(encoded, result);
  }

 private:
  R (*function_)(P...);
  std::string name_;
};

template <typename R, typename... P>
std::unique_ptr<RemoteFunction> make_remote_function(R (*function)(P...), std::string name) {
  return std::make_unique<TypedRemoteFunction<R, P...>>(function, std::move(name));
}

/// On the serving rank: replies once an actor call's result is done (a task holding no CPU
/// that waits for it).
template <typename Value>
struct ReplyWhenDone {
  ObjectRef<Value> result;
  RemoteAnswer done;

  void operator()() const {
    Encoded encoded;  // its blocks point into the result, which `result` holds
    try {
      if constexpr (std::is_void_v<Value>) {
        result.get();
      } else {
        encode_value<Value>(result.get(), encoded);
      }
    } catch (...) {
      done({}, std::current_exception());
      return;
    }
    done(encoded, nullptr);
  }
};

template <typename T, typename... A>
class TypedRemoteActorClass final : public RemoteActorClass {
  static_assert(check_remote_signature<void, A...>());
  using Arguments = std::tuple<std::decay_t<A>...>;

 public:
  explicit TypedRemoteActorClass(std::string name) : name_(std::move(name)) {}

  const std::string& name() const override { return name_; }
  std::type_index constructor() const override { return typeid(std::tuple<std::decay_t<A>...>); }

  void encode_arguments(const void* arguments, Encoded& out) const override {
    encode_views<std::decay_t<A>...>(arguments, out);
  }

  std::shared_ptr<void> decode_arguments(Received encoded) const override {
    return std::make_shared<Arguments>(decode_values<std::decay_t<A>...>(encoded));
  }

  AnyActor create(Runtime& runtime, const ActorOptions& options, void* arguments) const override {
    ActorOptions here = options;
    here.rank = this_rank();
    auto factory = runtime.actor<T>().options(here);
    return std::apply(
        [&](auto&&... argument) {
          return std::make_shared<ActorHandle<T>>(factory.remote(std::move(argument)...));
        },
        std::move(*static_cast<Arguments*>(arguments)));
  }

  ObjectRef<void> ready(const AnyActor& actor) const override {
    return static_cast<const ActorHandle<T>*>(actor.get())->ready();
  }

  void kill(Runtime& runtime, const AnyActor& actor, bool no_restart) const override {
    runtime.kill(*static_cast<const ActorHandle<T>*>(actor.get()), {.no_restart = no_restart});
  }

  AnyActor wrap(std::shared_ptr<ActorCore> handle) const override {
    return std::make_shared<ActorHandle<T>>(ActorHandle<T>(std::move(handle)));
  }

 private:
  std::string name_;
};

template <typename M>
struct MethodTraits;
template <typename C, typename R, typename... P>
struct MethodTraits<R (C::*)(P...)> {
  using Result = R;
  using Parameters = std::tuple<std::decay_t<P>...>;
  static constexpr bool valid = check_remote_signature<R, P...>();
  static void encode(const void* arguments, Encoded& out) {
    encode_views<std::decay_t<P>...>(arguments, out);
  }
  static Parameters decode(Received encoded) { return decode_values<std::decay_t<P>...>(encoded); }
};
template <typename C, typename R, typename... P>
struct MethodTraits<R (C::*)(P...) const> : MethodTraits<R (C::*)(P...)> {};
template <typename C, typename R, typename... P>
struct MethodTraits<R (C::*)(P...) noexcept> : MethodTraits<R (C::*)(P...)> {};
template <typename C, typename R, typename... P>
struct MethodTraits<R (C::*)(P...) const noexcept> : MethodTraits<R (C::*)(P...)> {};

template <typename T, typename M>
class TypedRemoteMethod final : public RemoteMethod {
  using Traits = MethodTraits<M>;
  using Value = std::remove_cv_t<typename Traits::Result>;
  static_assert(Traits::valid);

 public:
  TypedRemoteMethod(M method, std::string name) : method_(method), name_(std::move(name)) {}

  const std::string& name() const override { return name_; }
  std::type_index actor_type() const override { return typeid(T); }
  std::type_index parameters() const override { return typeid(typename Traits::Parameters); }
  bool is(std::type_index method_type, const void* method) const override {
    return method_type == typeid(M) && *static_cast<const M*>(method) == method_;
  }

  void encode_arguments(const void* arguments, Encoded& out) const override {
    Traits::encode(arguments, out);
  }

  void decode_result(Received encoded, void* result) const override {
    decode_value<Value>(encoded, result);
  }

  std::shared_ptr<void> decode_arguments(Received encoded) const override {
    return std::make_shared<typename Traits::Parameters>(Traits::decode(encoded));
  }

  void invoke(Runtime& runtime, const AnyActor& actor, void* arguments,
              RemoteAnswer done) const override {
    const auto& handle = *static_cast<const ActorHandle<T>*>(actor.get());
    ObjectRef<Value> result =
        std::apply([&](auto&&... argument) { return handle.call(method_, std::move(argument)...); },
                   std::move(*static_cast<typename Traits::Parameters*>(arguments)));
    (void)runtime.task(ReplyWhenDone<Value>{std::move(result), std::move(done)})
        .options({.num_cpus = 0, .name = name_ + " (replying)", .rank = this_rank()})
        .remote();
  }

 private:
  M method_;
  std::string name_;
};

}  // namespace detail
}  // namespace spindle

#define SPINDLE_REMOTE_CONCAT_(a, b) a##b
#define SPINDLE_REMOTE_NAME_(counter) SPINDLE_REMOTE_CONCAT_(spindle_remote_, counter)
/// Registers a function to run on any rank, by its name as written: write it once, at
/// namespace scope, in one source file. Two functions registered under one name stop the
/// program before main, naming it.
#define SPINDLE_REMOTE(function)                                         \
  [[maybe_unused]] static const bool SPINDLE_REMOTE_NAME_(__COUNTER__) = \
      ::spindle::detail::register_remote_function(                       \
          reinterpret_cast<const void*>(&function),                      \
          ::spindle::detail::make_remote_function(&function, #function))

/// Registers an actor class to live on any rank, by its name as written, with the types of
/// the constructor's parameters (none for a default constructor). Calls of its methods from
/// other ranks need each method registered with SPINDLE_REMOTE_METHOD.
///
///   SPINDLE_REMOTE_ACTOR(Counter, int);
///   SPINDLE_REMOTE_METHOD(Counter, add);
#define SPINDLE_REMOTE_ACTOR(Class, ...)                                 \
  [[maybe_unused]] static const bool SPINDLE_REMOTE_NAME_(__COUNTER__) = \
      ::spindle::detail::register_remote_actor(                          \
          typeid(Class),                                                 \
          std::make_unique<                                              \
              ::spindle::detail::TypedRemoteActorClass<Class __VA_OPT__(, ) __VA_ARGS__>>(#Class))
/// Registers a method of a registered actor class, so calls from other ranks can reach it.
#define SPINDLE_REMOTE_METHOD(Class, method)                                                       \
  [[maybe_unused]] static const bool SPINDLE_REMOTE_NAME_(__COUNTER__) =                           \
      ::spindle::detail::register_remote_method(                                                   \
          std::make_unique<::spindle::detail::TypedRemoteMethod<Class, decltype(&Class::method)>>( \
              &Class::method, #Class "::" #method))
