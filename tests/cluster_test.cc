// Cluster mode: calls of registered functions on other ranks of an Open MPI job. CTest runs
// this binary under mpirun with 2 and with 3 ranks, and alone, where it is rank 0 of 1.
#include "spindle/cluster.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "spindle/spindle.hpp"

namespace {

using ::testing::HasSubstr;

spindle::Cluster* cluster = nullptr;

int where() { return spindle::this_rank(); }
SPINDLE_REMOTE(where);

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}
SPINDLE_REMOTE(dot);

struct Point {
  int x = 0;
  std::string label;
  template <typename Archive>
  void serialize(Archive& archive) {
    archive(x, label);
  }
  bool operator==(const Point&) const = default;
};

Point moved(Point point, int by) {
  point.x += by;
  point.label += " moved on rank " + std::to_string(spindle::this_rank());
  return point;
}
SPINDLE_REMOTE(moved);

int fails(int code) { throw std::runtime_error("boom " + std::to_string(code)); }
SPINDLE_REMOTE(fails);

std::mutex flaky_mutex;
std::map<int, int> flaky_runs;  // by key, in the process that runs them
// Fails its first run for each key, succeeds after.
int flaky(int key) {
  std::lock_guard lock(flaky_mutex);
  if (flaky_runs[key]++ == 0) throw std::runtime_error("first run fails");
  return key;
}
SPINDLE_REMOTE(flaky);
std::pair<int, int> flaky_seen(int key) {  // (rank, runs of key there)
  std::lock_guard lock(flaky_mutex);
  return {spindle::this_rank(), flaky_runs[key]};
}
SPINDLE_REMOTE(flaky_seen);

std::atomic<int> touched{0};
void touch() { touched.fetch_add(1); }
SPINDLE_REMOTE(touch);
int touches() { return touched.load(); }
SPINDLE_REMOTE(touches);

int unregistered(int x) { return x; }

// Passes from rank to rank `hops` times, each hop a call made from inside the last one with
// the runtime running it; returns the sum of the ranks it ran on.
int relay(int hops, int size) {
  const int here = spindle::this_rank();
  if (hops == 0) return here;
  spindle::Runtime& rt = spindle::this_task::runtime();
  return here + rt.task(relay).options({.rank = (here + 1) % size}).remote(hops - 1, size).get();
}
SPINDLE_REMOTE(relay);

// Asks rank 1 for a gizmo and waits for it.
int wait_for_gizmo() {
  spindle::Runtime& rt = spindle::this_task::runtime();
  return rt.task(where).options({.resources = {{"gizmo", 1}}, .rank = 1}).remote().get();
}
SPINDLE_REMOTE(wait_for_gizmo);

// Counters built with this start, alive in this process: only one test makes them.
constexpr int kTracedStart = 1000003;
std::atomic<int> traced_counters{0};

struct Counter {
  explicit Counter(int start) : total(start), traced(start == kTracedStart) {
    if (traced) traced_counters.fetch_add(1);
  }
  Counter(const Counter&) = delete;
  ~Counter() {
    if (traced) traced_counters.fetch_sub(1);
  }
  bool traced;
  int total = 0;
  int add(int k) { return total += k; }
  int where() const { return spindle::this_rank(); }
  int fail(int) { throw std::runtime_error("counter broke"); }
  int secret() const { return 7; }  // not registered
};
SPINDLE_REMOTE_ACTOR(Counter, int);
SPINDLE_REMOTE_METHOD(Counter, add);
SPINDLE_REMOTE_METHOD(Counter, where);
SPINDLE_REMOTE_METHOD(Counter, fail);

int counters_alive() { return traced_counters.load(); }
SPINDLE_REMOTE(counters_alive);

// Large arrays: they travel as blocks of raw memory, beside the message.
std::vector<double> scaled(const std::vector<double>& values, double by) {
  std::vector<double> out(values);
  for (double& value : out) value *= by;
  return out;
}
SPINDLE_REMOTE(scaled);

std::string reversed(std::string text) {
  std::reverse(text.begin(), text.end());
  return text;
}
SPINDLE_REMOTE(reversed);

spindle::Buffer<float> doubled(const spindle::Buffer<float>& in) {
  auto out = spindle::Buffer<float>::uninitialized(in.size(), spindle::Location::host());
  std::span<const float> values = in.host_span();
  std::span<float> target = out.host_span();
  for (std::size_t i = 0; i < values.size(); ++i) target[i] = 2 * values[i];
  return out;
}
SPINDLE_REMOTE(doubled);

struct Pixel {  // trivially copyable, without a serialize: declared to travel as its bytes
  std::uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Pixel&) const = default;
};
}  // namespace
template <>
struct spindle::travels_as_bytes<Pixel> : std::true_type {};
namespace {

std::vector<Pixel> brightened(std::vector<Pixel> pixels) {
  for (Pixel& pixel : pixels) pixel.g = static_cast<std::uint8_t>(pixel.g + 1);
  return pixels;
}
SPINDLE_REMOTE(brightened);

// Sizes of arguments that mix blocks, small arrays and what cereal encodes.
std::vector<std::size_t> sizes_of(const std::vector<char>& big, const std::string& label,
                                  const std::vector<std::vector<float>>& nested,
                                  const std::vector<double>& small) {
  std::size_t nested_total = 0;
  for (const auto& inner : nested) nested_total += inner.size();
  return {big.size(), label.size(), nested_total, small.size(),
          static_cast<std::size_t>(std::count(big.begin(), big.end(), 'x'))};
}
SPINDLE_REMOTE(sizes_of);

std::vector<double> iota_of(std::size_t size) {
  std::vector<double> values(size);
  std::iota(values.begin(), values.end(), 0.5);
  return values;
}

struct Store {
  explicit Store(std::vector<double> initial) : values(std::move(initial)) {}
  std::vector<double> values;
  std::vector<double> all() const { return values; }
  double add(const std::vector<double>& delta) {
    for (std::size_t i = 0; i < values.size(); ++i) values[i] += delta[i];
    return std::accumulate(values.begin(), values.end(), 0.0);
  }
};
SPINDLE_REMOTE_ACTOR(Store, std::vector<double>);
SPINDLE_REMOTE_METHOD(Store, all);
SPINDLE_REMOTE_METHOD(Store, add);

// An actor whose calls wait until set_gate(true) runs in its process: each call parks its
// fiber and looks again (never blocking a worker thread, which the runtime would not see).
std::atomic<bool> gate_open{false};
void set_gate(bool open) { gate_open.store(open); }
SPINDLE_REMOTE(set_gate);
struct Turnstile {
  int pass() {
    while (!gate_open.load()) spindle::this_task::sleep_for(std::chrono::milliseconds(1));
    return 1;
  }
};
SPINDLE_REMOTE_ACTOR(Turnstile);
SPINDLE_REMOTE_METHOD(Turnstile, pass);

// An actor class no rank can make for another (not registered): its names stay on its rank.
struct Placeholder {
  int value = 0;
};

// On the rank it runs on: makes (or drops) an actor called "blocks store" of its own there.
std::optional<spindle::ActorHandle<Placeholder>> kept_store;
void keep_store(bool keep) {
  if (!keep) {
    kept_store.reset();
    return;
  }
  kept_store = spindle::this_task::runtime()
                   .actor<Placeholder>()
                   .options({.name = "blocks store", .rank = spindle::this_rank()})
                   .remote();
  kept_store->ready().get();
}
SPINDLE_REMOTE(keep_store);

int last_rank() { return cluster->size() - 1; }

// Names across the cluster, from a task on whichever rank runs these.
// Adds `k` to the Counter called `name`, found by its name: (the rank it lives on, its sum).
std::pair<int, int> add_to_named(std::string name, int k) {
  auto counter = spindle::this_task::runtime().get_actor<Counter>(name);
  return {counter.rank(), counter.call(&Counter::add, k).get()};
}
SPINDLE_REMOTE(add_to_named);

bool named_exists(std::string name) {
  try {
    (void)spindle::this_task::runtime().get_actor<Counter>(name);
    return true;
  } catch (const spindle::InvalidArgumentError&) {
    return false;
  }
}
SPINDLE_REMOTE(named_exists);

// Makes a Counter called `name` on this rank (or, with get_if_exists, takes the live one) and
// adds `k`: "<sum> on rank <rank>", or the error's text. With `keep`, it is kept here.
// Tasks on one rank may run at once on its workers: the kept handles are locked, and a handle
// is used or dropped outside the lock.
std::mutex kept_mutex;
std::vector<spindle::ActorHandle<Counter>> kept_counters;  // guarded by kept_mutex
void keep_counter(const spindle::ActorHandle<Counter>& counter) {
  std::lock_guard lock(kept_mutex);
  kept_counters.push_back(counter);
}
std::string make_named(std::string name, bool get_if_exists, int k, bool keep) {
  try {
    auto counter =
        spindle::this_task::runtime()
            .actor<Counter>()
            .options({.name = name, .get_if_exists = get_if_exists, .rank = spindle::this_rank()})
            .remote(100);
    if (keep) keep_counter(counter);
    return std::to_string(counter.call(&Counter::add, k).get()) + " on rank " +
           std::to_string(counter.rank());
  } catch (const spindle::InvalidArgumentError& error) {
    return error.what();
  }
}
SPINDLE_REMOTE(make_named);

void drop_kept_counters() {
  std::vector<spindle::ActorHandle<Counter>> dropped;
  std::lock_guard lock(kept_mutex);
  dropped.swap(kept_counters);
}
SPINDLE_REMOTE(drop_kept_counters);

// Kills the Counter called `name` (found by its name: made on another rank) for good, then
// makes one of that name here and keeps it: as make_named.
std::string kill_and_remake(std::string name) {
  spindle::Runtime& rt = spindle::this_task::runtime();
  rt.kill(rt.get_actor<Counter>(name));
  return make_named(name, false, 1, true);
}
SPINDLE_REMOTE(kill_and_remake);

// Handles as arguments and results: adds `k` through the handle given, (its rank, its sum).
std::pair<int, int> add_through(spindle::ActorHandle<Counter> counter, int k) {
  return {counter.rank(), counter.call(&Counter::add, k).get()};
}
SPINDLE_REMOTE(add_through);

spindle::ActorHandle<Counter> hand_back(spindle::ActorHandle<Counter> counter) { return counter; }
SPINDLE_REMOTE(hand_back);

bool is_valid(spindle::ActorHandle<Placeholder> handle) { return handle.valid(); }
SPINDLE_REMOTE(is_valid);

void keep_handle(spindle::ActorHandle<Counter> counter) { keep_counter(counter); }
SPINDLE_REMOTE(keep_handle);

// Adds `k` through the handle kept last: its sum, or -1 once its actor has ended.
int add_to_kept(int k) {
  try {
    spindle::ActorHandle<Counter> last;
    {
      std::lock_guard lock(kept_mutex);
      last = kept_counters.back();
    }
    return last.call(&Counter::add, k).get();
  } catch (const spindle::ActorDiedError&) {
    return -1;
  }
}
SPINDLE_REMOTE(add_to_kept);

// Every collective of group `name` once, from one member: what each left, in a row
// (allreduce, reduce_scatter, allgather, broadcast from the last member), `count` each.
std::vector<double> run_collectives(std::string name, int count) {
  auto group = spindle::CollectiveGroup::get(name);
  const auto n = static_cast<std::size_t>(count);
  const double me = group.rank() + 1;
  std::vector<double> values(n), out;
  for (std::size_t i = 0; i < n; ++i) values[i] = me * static_cast<double>(i + 1);
  group.allreduce(std::span<double>(values));
  out.insert(out.end(), values.begin(), values.end());
  for (std::size_t i = 0; i < n; ++i) values[i] = me * static_cast<double>(i + 1);
  const auto [first, last] = group.block(n, group.rank());
  std::vector<double> mine(last - first);
  group.reduce_scatter(std::span<const double>(values), std::span<double>(mine));
  out.insert(out.end(), mine.begin(), mine.end());
  std::fill(mine.begin(), mine.end(), me);
  group.allgather(std::span<const double>(mine), std::span<double>(values));
  out.insert(out.end(), values.begin(), values.end());
  std::fill(values.begin(), values.end(), me);
  group.broadcast(std::span<double>(values), group.size() - 1);
  out.insert(out.end(), values.begin(), values.end());
  // The allgather again, with this member's block already in its place.
  std::fill(values.begin(), values.end(), 0.0);
  std::fill(values.begin() + static_cast<long>(first), values.begin() + static_cast<long>(last),
            me);
  group.allgather(std::span<const double>(values.data() + first, last - first),
                  std::span<double>(values));
  out.insert(out.end(), values.begin(), values.end());
  group.barrier();
  return out;
}
SPINDLE_REMOTE(run_collectives);

// (max, min, product) of each member's place + 1, over group `name`, by allreduce, and the
// max again through this member's block of a reduce_scatter.
std::vector<std::int64_t> combine_places(std::string name) {
  auto group = spindle::CollectiveGroup::get(name);
  const std::int64_t me = group.rank() + 1;
  std::vector<std::int64_t> out;
  for (spindle::ReduceOp op :
       {spindle::ReduceOp::max, spindle::ReduceOp::min, spindle::ReduceOp::product}) {
    std::vector<std::int64_t> value{me};
    group.allreduce(std::span<std::int64_t>(value), op);
    out.push_back(value[0]);
  }
  const std::size_t n = static_cast<std::size_t>(group.size());
  std::vector<std::int64_t> values(n, me), mine(1);  // one element each
  group.reduce_scatter(std::span<const std::int64_t>(values), std::span<std::int64_t>(mine),
                       spindle::ReduceOp::max);
  out.push_back(mine[0]);
  return out;
}
SPINDLE_REMOTE(combine_places);

std::string group_error(std::string name) {
  try {
    (void)spindle::CollectiveGroup::get(name);
    return "";
  } catch (const spindle::InvalidArgumentError& error) {
    return error.what();
  }
}
SPINDLE_REMOTE(group_error);

// What a test's encoding sends as blocks, handed back to the decoding in order.
class CopiedBlocks final : public spindle::detail::BlockSource {
 public:
  explicit CopiedBlocks(std::vector<spindle::detail::Encoded::Block> blocks)
      : blocks_(std::move(blocks)) {}
  std::size_t next_size() const override {
    if (next_ == blocks_.size()) throw spindle::Error("no block left");
    return blocks_[next_].size;
  }
  void receive(void* into, std::size_t bytes) override {
    EXPECT_EQ(bytes, next_size());
    std::memcpy(into, blocks_[next_++].data, bytes);
  }

 private:
  std::vector<spindle::detail::Encoded::Block> blocks_;
  std::size_t next_ = 0;
};

TEST(Cluster, LargeArraysAreSentFromTheirOwnMemoryAndSmallOnesInline) {
  const std::vector<double> big = iota_of(100000);  // 800 KB: a block
  const std::vector<double> small = iota_of(100);   // 800 B: in the message
  const std::string text(200000, 't');              // a block
  std::tuple<const std::vector<double>&, const std::vector<double>&, const std::string&> views(
      big, small, text);
  spindle::detail::Encoded encoded;
  spindle::detail::encode_views<std::vector<double>, std::vector<double>, std::string>(&views,
                                                                                       encoded);
  ASSERT_EQ(encoded.blocks.size(), 2u);
  EXPECT_EQ(encoded.blocks[0].data, big.data());  // not a copy: the vector's own elements
  EXPECT_EQ(encoded.blocks[0].size, big.size() * sizeof(double));
  EXPECT_EQ(encoded.blocks[1].data, text.data());
  EXPECT_LT(encoded.bytes.size(), 1000u);  // the small vector and three sizes
  CopiedBlocks blocks(encoded.blocks);
  auto [big_back, small_back, text_back] =
      spindle::detail::decode_values<std::vector<double>, std::vector<double>, std::string>(
          {encoded.bytes, &blocks});
  EXPECT_EQ(big_back, big);
  EXPECT_EQ(small_back, small);
  EXPECT_EQ(text_back, text);
  EXPECT_THROW((spindle::detail::decode_values<std::vector<double>>({encoded.bytes, nullptr})),
               spindle::Error);  // a block is due and none comes
}

TEST(Cluster, LargeArgumentsAndResultsArriveWhole) {
  spindle::Runtime rt;
  const int there = last_rank();
  // Just under a block, just at it, several, and a block sent in pieces (over 16 MiB).
  for (std::size_t size : {std::size_t{0}, std::size_t{8191}, std::size_t{8192},
                           std::size_t{1} << 20, std::size_t{3} << 20}) {
    const std::vector<double> values = iota_of(size);
    std::vector<double> back = rt.task(scaled).options({.rank = there}).remote(values, 2.0).get();
    ASSERT_EQ(back.size(), size);
    for (std::size_t i = 0; i < size; ++i) ASSERT_EQ(back[i], 2 * values[i]) << i;
  }
  std::string text(300000, 'a');
  text.front() = 'z';
  EXPECT_EQ(rt.task(reversed).options({.rank = there}).remote(text).get().back(), 'z');
  std::vector<Pixel> pixels(100000, Pixel{1, 2, 3});
  std::vector<Pixel> lit = rt.task(brightened).options({.rank = there}).remote(pixels).get();
  EXPECT_EQ(lit, std::vector<Pixel>(100000, Pixel{1, 3, 3}));
  std::vector<char> big(500000, 'x');
  big[7] = 'y';
  std::vector<std::vector<float>> nested(3, std::vector<float>(30000, 1.0f));
  auto sizes = rt.task(sizes_of)
                   .options({.rank = there})
                   .remote(big, std::string("label"), nested, iota_of(9));
  EXPECT_EQ(sizes.get(), (std::vector<std::size_t>{500000, 5, 90000, 9, 499999}));
}

TEST(Cluster, CallsWithBlocksSentAtOnceFromManyThreadsEachGetTheirOwn) {
  spindle::Runtime rt;
  const int there = last_rank();
  std::vector<spindle::ObjectRef<bool>> checks;
  for (int sender = 0; sender < 8; ++sender) {
    checks.push_back(
        rt.task([there, sender] {
            spindle::Runtime& runtime = spindle::this_task::runtime();
            bool all = true;
            for (int call = 0; call < 4; ++call) {
              const std::vector<double> values(100000 + 1000 * sender, sender * 10.0 + call);
              std::vector<double> back =
                  runtime.task(scaled).options({.rank = there}).remote(values, 1.0).get();
              all = all && back == values;
            }
            return all;
          })
            .options({.num_cpus = 0})
            .remote());
  }
  for (auto& check : checks) EXPECT_TRUE(check.get());
}

TEST(Cluster, BuffersTravelAsTheirElements) {
  spindle::Runtime rt;
  std::vector<float> values(300000);
  std::iota(values.begin(), values.end(), 1.0f);
  auto stored = rt.put(spindle::Buffer<float>(values, spindle::Location::host()));
  spindle::ObjectRef<spindle::Buffer<float>> back =
      rt.task(doubled).options({.rank = last_rank()}).remote(stored);
  std::vector<float> got = back.get().to_vector();
  ASSERT_EQ(got.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) ASSERT_EQ(got[i], 2 * values[i]) << i;
}

TEST(Cluster, AnActorTakesAndGivesLargeArrays) {
  spindle::Runtime rt;
  const std::vector<double> start = iota_of(500000);
  auto store = rt.actor<Store>().options({.rank = last_rank()}).remote(start);
  const double sum = store.call(&Store::add, std::vector<double>(start.size(), 1.0)).get();
  EXPECT_DOUBLE_EQ(sum, std::accumulate(start.begin(), start.end(), 0.0) + 500000.0);
  std::vector<double> all = store.call(&Store::all).get();
  ASSERT_EQ(all.size(), start.size());
  for (std::size_t i = 0; i < start.size(); ++i) ASSERT_EQ(all[i], start[i] + 1.0) << i;
}

TEST(Cluster, BlocksOfARefusedCallAreTakenAndDroppedSoTheSenderGoesOn) {
  if (cluster->size() < 2) GTEST_SKIP() << "alone: nothing travels";
  spindle::Runtime rt;
  // Rank 1 takes this actor's arguments but cannot create it (rank 1 made one of that name
  // itself, of a class it keeps to itself), so it refuses the call below without decoding its
  // arguments; their block must
  // still be taken from the sender, or the sender and this test hang (until CTest's timeout
  // fails it).
  auto keep = rt.task(keep_store).options({.rank = 1});
  keep.remote(true).get();
  auto refused =
      rt.actor<Store>().options({.name = "blocks store", .rank = 1}).remote(iota_of(1 << 20));
  EXPECT_THROW(refused.ready().get(), spindle::TaskError);
  // An actor whose creation failed holds no name here.
  EXPECT_THROW((void)rt.get_actor<Store>("blocks store"), spindle::InvalidArgumentError);
  try {
    (void)refused.call(&Store::add, iota_of(1 << 20)).get();
    FAIL() << "a call of an actor that was never made succeeded";
  } catch (const spindle::TaskError& error) {
    EXPECT_THAT(error.what(), HasSubstr("blocks store"));
  }
  EXPECT_EQ(rt.task(where).options({.rank = 1}).remote().get(), 1);
  keep.remote(false).get();
}

TEST(Cluster, EveryRankIsDescribed) {
  ASSERT_EQ(static_cast<int>(cluster->ranks().size()), cluster->size());
  for (int rank = 0; rank < cluster->size(); ++rank) {
    const spindle::RankInfo& info = cluster->ranks()[static_cast<std::size_t>(rank)];
    EXPECT_EQ(info.rank, rank);
    EXPECT_GT(info.num_cpus, 0);
    EXPECT_GT(info.memory, 0);
    EXPECT_FALSE(info.host.empty());
    if (spindle::Cluster::with_mpi()) {
      EXPECT_EQ(info.resources.at(spindle::detail::node_resource()), 1.0);
    }
    EXPECT_EQ(info.resources.contains("gizmo"), rank > 0);
    if (rank > 0) EXPECT_EQ(info.resources.at("gizmo"), 2.0);
  }
  EXPECT_EQ(cluster->rank(), 0);
  EXPECT_EQ(spindle::this_rank(), 0);
}

TEST(Cluster, StatusShowsTheRuntimeOfEveryRank) {
  if (!spindle::Cluster::with_mpi()) GTEST_SKIP() << "built without MPI: no ranks to ask";
  spindle::Runtime rt;  // rank 0's serving runtime while it lives
  std::vector<spindle::RuntimeStatus> all = cluster->status();
  ASSERT_EQ(static_cast<int>(all.size()), cluster->size());
  for (int rank = 0; rank < cluster->size(); ++rank) {
    const spindle::RuntimeStatus& status = all[static_cast<std::size_t>(rank)];
    EXPECT_GT(status.workers, 0u) << "rank " << rank;
    EXPECT_EQ(status.total.cpu().to_double(),
              cluster->ranks()[static_cast<std::size_t>(rank)].num_cpus)
        << "rank " << rank;
  }
}

TEST(Cluster, TheTimelineHasATrackForEveryRank) {
  if (!spindle::Cluster::with_mpi()) GTEST_SKIP() << "built without MPI: no ranks to ask";
  const auto path = std::filesystem::temp_directory_path() /
                    ("spindle_cluster_timeline_" + std::to_string(::getpid()) + ".json");
  {
    spindle::Runtime quiet;  // serves rank 0, recording nothing
    EXPECT_THROW(cluster->timeline(path.string()), spindle::Error);
  }
  spindle::Runtime rt({.timeline = true});  // the serving ranks record (main's options)
  static int run = 0;  // a name of this run's own: serving ranks keep earlier runs' events
  const std::string probe = "timeline probe " + std::to_string(++run);
  std::vector<spindle::ObjectRef<int>> refs;
  const auto start = std::chrono::steady_clock::now();
  for (int rank = 0; rank < cluster->size(); ++rank) {
    refs.push_back(rt.task(where).options({.name = probe, .rank = rank}).remote());
  }
  (void)spindle::get(refs);
  const double elapsed_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  cluster->timeline(path.string());
  std::ifstream in(path);
  nlohmann::json trace = nlohmann::json::parse(in);
  std::set<int> ranks_with_tasks, named;
  double first = 1e300, last = -1e300;  // the calls' starts, on the merged trace's clock
  for (const auto& event : trace["traceEvents"]) {
    if (event["ph"] == "X" && event["name"] == probe) {
      ranks_with_tasks.insert(event["pid"].get<int>());
      first = std::min(first, event["ts"].get<double>());
      last = std::max(last, event["ts"].get<double>());
    }
    if (event["name"] == "process_name") named.insert(event["pid"].get<int>());
  }
  // The ranks' clocks are aligned: calls made within `elapsed_us` start within it.
  EXPECT_LE(last - first, elapsed_us);
  EXPECT_EQ(static_cast<int>(ranks_with_tasks.size()), cluster->size());
  EXPECT_EQ(static_cast<int>(named.size()), cluster->size());
  std::filesystem::remove(path);
}

TEST(Cluster, ACallPinnedToARankRunsThere) {
  spindle::Runtime rt;
  for (int rank = 0; rank < cluster->size(); ++rank) {
    EXPECT_EQ(rt.task(where).options({.rank = rank}).remote().get(), rank);
  }
}

TEST(Cluster, ACallRunningOnARankCallsOnToTheNext) {
  spindle::Runtime rt;  // rank 0 serves the hops that reach it with this runtime
  const int size = cluster->size(), hops = size + 1;
  int expected = 0;
  for (int hop = 0; hop <= hops; ++hop) expected += (1 + hop) % size;
  EXPECT_EQ(rt.task(relay).options({.rank = 1 % size}).remote(hops, size).get(), expected);
}

TEST(Cluster, UnpinnedCallsReachEveryRank) {
  spindle::Runtime rt;
  std::vector<spindle::ObjectRef<int>> refs;
  for (int i = 0; i < 4 * cluster->size(); ++i) refs.push_back(rt.task(where).remote());
  std::vector<int> ranks = spindle::get(refs);
  std::set<int> seen(ranks.begin(), ranks.end());
  EXPECT_EQ(static_cast<int>(seen.size()), cluster->size());
}

TEST(Cluster, ArgumentsGoAndResultsComeBackByValue) {
  spindle::Runtime rt;
  const int there = last_rank();
  std::vector<double> a(100000, 0.5);
  auto shared = rt.put(std::vector<double>(100000, 2.0));
  EXPECT_EQ(rt.task(dot).options({.rank = there}).remote(a, shared).get(), 100000.0);
  Point moved_there = rt.task(moved).options({.rank = there}).remote(Point{3, "p"}, 4).get();
  EXPECT_EQ(moved_there, (Point{7, "p moved on rank " + std::to_string(there)}));
}

TEST(Cluster, ARefMadeByALocalTaskIsResolvedBeforeTheCallLeaves) {
  spindle::Runtime rt;
  auto made = rt.task([] { return std::vector<double>(1000, 3.0); }).remote();
  auto ones = rt.put(std::vector<double>(1000, 1.0));
  EXPECT_EQ(rt.task(dot).options({.rank = last_rank()}).remote(made, ones).get(), 3000.0);
}

TEST(Cluster, AFailureThereIsATaskErrorHereNamingTheRankTheFunctionAndTheCause) {
  if (cluster->size() < 2) GTEST_SKIP() << "alone: the call fails here, as a local task";
  spindle::Runtime rt;
  const int there = last_rank();
  auto ref = rt.task(fails).options({.rank = there}).remote(7);
  try {
    (void)ref.get();
    FAIL() << "the call did not fail";
  } catch (const spindle::TaskError& error) {
    const std::string message = error.what();
    EXPECT_THAT(message, HasSubstr("on rank " + std::to_string(there)));
    EXPECT_THAT(message, HasSubstr("fails"));
    EXPECT_THAT(message, HasSubstr("std::runtime_error: boom 7"));
  }
}

TEST(Cluster, AFailedArgumentFailsTheCallWithoutSendingIt) {
  spindle::Runtime rt;
  auto bad =
      rt.task([]() -> std::vector<double> { throw std::runtime_error("no input"); }).remote();
  auto ref = rt.task(dot).options({.rank = last_rank()}).remote(bad, bad);
  try {
    (void)ref.get();
    FAIL() << "the call did not fail";
  } catch (const spindle::TaskError& error) {
    EXPECT_THAT(error.what(), HasSubstr("no input"));
  }
}

TEST(Cluster, ACallThatFailsThereIsRetriedFromHere) {
  spindle::Runtime rt;
  static int next_key = 0;  // a fresh key in each repetition of the test
  const int key = ++next_key;
  auto ref = rt.task(flaky)
                 .options({.max_retries = 1, .retry_exceptions = true, .rank = last_rank()})
                 .remote(key);
  EXPECT_EQ(ref.get(), key);
  auto [rank, runs] = rt.task(flaky_seen).options({.rank = last_rank()}).remote(key).get();
  EXPECT_EQ(rank, last_rank());
  EXPECT_EQ(runs, 2);  // the failed run and the retry, both there
}

TEST(Cluster, ManyCallsInFlightAllComeBack) {
  spindle::Runtime rt;
  const int before = rt.task(touches).options({.rank = last_rank()}).remote().get();
  std::vector<spindle::ObjectRef<void>> done;
  for (int i = 0; i < 2000; ++i) {
    done.push_back(rt.task(touch).options({.rank = last_rank()}).remote());
  }
  spindle::get(done);
  EXPECT_EQ(rt.task(touches).options({.rank = last_rank()}).remote().get(), before + 2000);
}

TEST(Cluster, AnUnregisteredFunctionPinnedElsewhereIsRefusedAtSubmit) {
  if (cluster->size() < 2) GTEST_SKIP() << "alone: every rank is this one";
  spindle::Runtime rt;
  try {
    (void)rt.task(unregistered).options({.rank = 1}).remote(1);
    FAIL() << "the call was accepted";
  } catch (const spindle::InvalidArgumentError& error) {
    EXPECT_THAT(error.what(), HasSubstr("rank = 1"));
    EXPECT_THAT(error.what(), HasSubstr("SPINDLE_REMOTE"));
  }
  // Unpinned, it runs here; and a lambda pinned elsewhere is refused the same way.
  EXPECT_EQ(rt.task(unregistered).remote(5).get(), 5);
  try {
    (void)rt.task([] { return 1; }).options({.rank = 1}).remote();
    FAIL() << "a lambda pinned to rank 1 was accepted";
  } catch (const spindle::InvalidArgumentError& error) {
    EXPECT_THAT(error.what(), HasSubstr("a lambda or functor runs where it is submitted"));
  }
}

TEST(Cluster, ARankOutOfRangeIsRefusedNamingWhatIsAllowed) {
  spindle::Runtime rt;
  const int size = cluster->size();
  for (int rank : {size, -2}) {
    try {
      (void)rt.task(where).options({.rank = rank});
      FAIL() << "rank " << rank << " was accepted";
    } catch (const spindle::InvalidArgumentError& error) {
      EXPECT_THAT(error.what(), HasSubstr("rank = " + std::to_string(rank)));
      EXPECT_THAT(error.what(), HasSubstr(size > 1 ? "from 0 to " + std::to_string(size - 1)
                                                   : std::string("runs alone")));
    }
  }
}

TEST(Cluster, ADemandNoRankHoldsIsInfeasibleAtSubmit) {
  spindle::Runtime rt;
  EXPECT_THROW((void)rt.task(where).options({.num_cpus = 1e6}).remote(), spindle::InfeasibleError);
  // Pinned, the demand is checked against that rank's totals.
  EXPECT_THROW((void)rt.task(where).options({.num_cpus = 1e6, .rank = last_rank()}).remote(),
               spindle::InfeasibleError);
}

TEST(Cluster, ADemandForACustomResourceGoesToTheRanksThatHoldIt) {
  if (cluster->size() < 2) GTEST_SKIP() << "alone: no rank holds a gizmo";
  spindle::Runtime rt;  // rank 0's: no gizmo
  std::set<int> ranks;
  for (int i = 0; i < 2 * cluster->size(); ++i) {
    ranks.insert(rt.task(where).options({.resources = {{"gizmo", 1}}}).remote().get());
  }
  std::set<int> holders;
  for (int rank = 1; rank < cluster->size(); ++rank) holders.insert(rank);
  EXPECT_EQ(ranks, holders);
  auto counter = rt.actor<Counter>().options({.resources = {{"gizmo", 2}}}).remote(0);
  EXPECT_GT(counter.call(&Counter::where).get(), 0);
  try {
    (void)rt.task(where).options({.resources = {{"gizmo", 3}}}).remote();
    FAIL() << "a demand no rank holds was accepted";
  } catch (const spindle::InfeasibleError& error) {
    EXPECT_THAT(error.what(), HasSubstr("3 gizmo, which no rank holds"));
    EXPECT_THAT(error.what(), HasSubstr("2 gizmo"));
  }
  EXPECT_THROW((void)rt.task(where).options({.resources = {{"gizmo", 1}}, .rank = 0}).remote(),
               spindle::InfeasibleError);
  // A lambda cannot travel: it stays here, where there is no gizmo.
  EXPECT_THROW((void)rt.task([] { return 1; }).options({.resources = {{"gizmo", 1}}}).remote(),
               spindle::InfeasibleError);
}

TEST(Cluster, ADeadlockAcrossRanksFailsTheBlockedGetsSayingWhatEachRankWaitsFor) {
  if (cluster->size() < 2) GTEST_SKIP() << "alone: no rank holds a gizmo";
  spindle::Runtime rt;
  // Rank 1's gizmos, held while this handle lives.
  auto hog = rt.actor<Counter>().options({.resources = {{"gizmo", 2}}, .rank = 1}).remote(0);
  ASSERT_EQ(hog.call(&Counter::where).get(), 1);
  // A task here waits for one on rank 1 that waits for a gizmo: no rank can move. Rank 0 knows
  // only that its task waits for an answer, rank 1 only that its task waits for a gizmo.
  auto stuck = rt.task(wait_for_gizmo).options({.name = "stuck", .rank = 0}).remote();
  try {
    (void)stuck.get();
    FAIL() << "a get across a deadlock returned";
  } catch (const spindle::TaskError& error) {
    try {
      std::rethrow_if_nested(error);
      FAIL() << "the task's error holds no cause: " << error.what();
    } catch (const spindle::DeadlockError& deadlock) {
      const std::string message = deadlock.what();
      EXPECT_THAT(message, HasSubstr("deadlock across the cluster"));
      EXPECT_THAT(message, HasSubstr("Rank 0: Blocked in get: task 'stuck'"));
      EXPECT_THAT(message, HasSubstr("waits for an answer from another rank"));
      EXPECT_THAT(message, HasSubstr("Rank 1: Blocked in get: none. Waiting for resources: "));
      EXPECT_THAT(message, HasSubstr("task 'where' (#"));
      EXPECT_THAT(message, HasSubstr("needs {cpu: 1, gizmo: 1}"));
    }
  }
  // Once the actor is gone its gizmos are free, and the same call goes through.
  hog = {};
  EXPECT_EQ(rt.task(wait_for_gizmo).options({.rank = 0}).remote().get(), 1);
}

TEST(Cluster, EveryRuntimeHoldsItsNodesResource) {
  if (!spindle::Cluster::with_mpi()) GTEST_SKIP() << "built without MPI: no cluster link";
  spindle::Runtime rt;
  const std::string node = spindle::detail::node_resource();
  EXPECT_EQ(node.rfind("node:", 0), 0u);
  EXPECT_EQ(rt.total_resources().get(node).to_double(), 1.0);
  auto here = rt.task([] { return 7; }).options({.resources = {{node, 0.5}}}).remote();
  EXPECT_EQ(here.get(), 7);
  // Every rank is on this machine: a share of its node runs on any of them.
  std::set<int> ranks;
  for (int i = 0; i < 2 * cluster->size(); ++i) {
    ranks.insert(rt.task(where).options({.resources = {{node, 0.5}}}).remote().get());
  }
  EXPECT_EQ(static_cast<int>(ranks.size()), cluster->size());
}

TEST(Cluster, AnActorPinnedToARankLivesThereAndTakesItsCallsInOrder) {
  spindle::Runtime rt;
  const int there = last_rank();
  auto counter = rt.actor<Counter>().options({.rank = there}).remote(10);
  counter.ready().get();
  EXPECT_EQ(counter.rank(), there);
  EXPECT_EQ(counter.call(&Counter::where).get(), there);
  std::vector<spindle::ObjectRef<int>> sums;
  for (int i = 1; i <= 200; ++i) sums.push_back(counter.call(&Counter::add, 1));
  std::vector<int> seen = spindle::get(sums);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(seen[static_cast<std::size_t>(i)], 11 + i);
  auto ready = rt.put(5);  // a ref argument is resolved here and sent as its value
  EXPECT_EQ(counter.call(&Counter::add, ready).get(), 215);
}

TEST(Cluster, ANamedActorMadeOnAnotherRankIsFoundHereByItsName) {
  spindle::Runtime rt;
  const int there = last_rank();
  auto made = rt.actor<Counter>().options({.name = "named counter", .rank = there}).remote(5);
  auto found = rt.get_actor<Counter>("named counter");
  EXPECT_EQ(found, made);
  EXPECT_EQ(found.rank(), there);
  EXPECT_EQ(found.call(&Counter::add, 1).get(), 6);
  EXPECT_THROW((void)rt.get_actor<Store>("named counter"), spindle::InvalidArgumentError);
  // The name is taken, wherever another actor would go; get_if_exists returns the live one.
  try {
    (void)rt.actor<Counter>().options({.name = "named counter"}).remote(0);
    FAIL() << "a second actor took the name";
  } catch (const spindle::InvalidArgumentError& error) {
    EXPECT_THAT(error.what(), HasSubstr("'named counter' is taken by a live actor"));
  }
  auto same =
      rt.actor<Counter>().options({.name = "named counter", .get_if_exists = true}).remote(0);
  EXPECT_EQ(same.call(&Counter::add, 1).get(), 7);
  // A kill frees the name at once, here and there.
  rt.kill(made);
  EXPECT_THROW((void)rt.get_actor<Counter>("named counter"), spindle::InvalidArgumentError);
  auto again = rt.actor<Counter>().options({.name = "named counter", .rank = there}).remote(1);
  EXPECT_EQ(again.call(&Counter::add, 1).get(), 2);
  // So does dropping every handle.
  {
    auto dropped = rt.actor<Counter>().options({.name = "dropped", .rank = there}).remote(0);
    dropped.ready().get();
  }
  EXPECT_THROW((void)rt.get_actor<Counter>("dropped"), spindle::InvalidArgumentError);
  auto reborn = rt.actor<Counter>().options({.name = "dropped", .rank = there}).remote(3);
  EXPECT_EQ(reborn.call(&Counter::add, 1).get(), 4);
}

TEST(Cluster, ANamedActorIsFoundByItsNameFromEveryRank) {
  if (cluster->size() < 2) GTEST_SKIP() << "alone: names are the local actors' (actor_test)";
  spindle::Runtime rt;
  auto here = rt.actor<Counter>().options({.name = "counter of rank 0", .rank = 0}).remote(0);
  auto far =
      rt.actor<Counter>().options({.name = "far counter", .rank = last_rank()}).remote(1000);
  auto add = rt.task(add_to_named);
  int here_sum = 0, far_sum = 1000;
  for (int rank = 0; rank < cluster->size(); ++rank) {
    here_sum += 1;
    EXPECT_EQ(add.options({.rank = rank}).remote("counter of rank 0", 1).get(),
              std::make_pair(0, here_sum));
    far_sum += 2;
    EXPECT_EQ(add.options({.rank = rank}).remote("far counter", 2).get(),
              std::make_pair(last_rank(), far_sum));
  }
  EXPECT_EQ(here.call(&Counter::add, 0).get(), here_sum);
  EXPECT_EQ(far.call(&Counter::add, 0).get(), far_sum);
  // A kill frees the name on every rank at once; dropping the last handle, soon after.
  auto exists = rt.task(named_exists);
  rt.kill(far);
  for (int rank = 0; rank < cluster->size(); ++rank) {
    EXPECT_FALSE(exists.options({.rank = rank}).remote("far counter").get()) << "rank " << rank;
  }
  here = {};
  bool found = true;  // the actor ends on a worker soon after: ask until it has (no sleeping)
  for (int asks = 0; asks < 100000 && found; ++asks) {
    found = exists.options({.rank = last_rank()}).remote("counter of rank 0").get();
  }
  EXPECT_FALSE(found);
}

TEST(Cluster, ANameIsTakenAcrossTheCluster) {
  if (cluster->size() < 2) GTEST_SKIP() << "alone: names are the local actors' (actor_test)";
  spindle::Runtime rt;
  auto mine = rt.actor<Counter>().options({.name = "one of a kind", .rank = 0}).remote(10);
  auto make = rt.task(make_named).options({.rank = last_rank()});
  EXPECT_THAT(make.remote("one of a kind", false, 1, false).get(),
              HasSubstr("'one of a kind' is taken by a live actor"));
  EXPECT_EQ(make.remote("one of a kind", true, 1, false).get(), "11 on rank 0");
  EXPECT_EQ(mine.call(&Counter::add, 1).get(), 12);

  // One made by another rank, and kept there: its name is taken here too.
  EXPECT_EQ(make.remote("kept far", false, 5, true).get(),
            "105 on rank " + std::to_string(last_rank()));
  try {
    (void)rt.actor<Counter>().options({.name = "kept far"}).remote(0);
    FAIL() << "a second actor took the name";
  } catch (const spindle::InvalidArgumentError& error) {
    EXPECT_THAT(error.what(), HasSubstr("'kept far' is taken by a live actor"));
  }
  EXPECT_THROW((void)rt.get_actor<Store>("kept far"), spindle::InvalidArgumentError);
  auto joined = rt.actor<Counter>().options({.name = "kept far", .get_if_exists = true}).remote(0);
  EXPECT_EQ(joined.rank(), last_rank());
  EXPECT_EQ(joined.call(&Counter::add, 1).get(), 106);
  auto found = rt.get_actor<Counter>("kept far");
  EXPECT_EQ(found.call(&Counter::add, 1).get(), 107);
  // Handles found by name do not keep it: once its rank drops its own, it ends.
  rt.task(drop_kept_counters).options({.rank = last_rank()}).remote().get();
  bool alive = true;  // the actor ends on a worker soon after: ask until it has (no sleeping)
  for (int asks = 0; asks < 100000 && alive; ++asks) {
    alive = rt.task(named_exists).options({.rank = 0}).remote("kept far").get();
  }
  EXPECT_FALSE(alive);
  EXPECT_THROW((void)found.call(&Counter::add, 1).get(), spindle::ActorDiedError);
  // The name is free for anyone now.
  auto reborn = rt.actor<Counter>().options({.name = "kept far", .rank = 0}).remote(1);
  EXPECT_EQ(reborn.call(&Counter::add, 1).get(), 2);
}

TEST(Cluster, ANameIsFreeAcrossTheClusterOnceItsActorIsGone) {
  if (cluster->size() < 2) GTEST_SKIP() << "alone: names are the local actors' (actor_test)";
  spindle::Runtime rt;
  // Its last handle gone, the name is free at once, here and on every rank.
  {
    auto first = rt.actor<Counter>().options({.name = "short lived", .rank = 0}).remote(1);
    first.ready().get();
  }
  auto second = rt.actor<Counter>().options({.name = "short lived", .rank = 0}).remote(2);
  EXPECT_EQ(rt.task(add_to_named).options({.rank = last_rank()}).remote("short lived", 1).get(),
            std::make_pair(0, 3));
  // Killed for good from another rank, through a handle found by its name: that rank may take
  // the name at once.
  auto doomed = rt.actor<Counter>().options({.name = "doomed", .rank = 0}).remote(0);
  doomed.ready().get();
  EXPECT_EQ(rt.task(kill_and_remake).options({.rank = last_rank()}).remote("doomed").get(),
            "101 on rank " + std::to_string(last_rank()));
  EXPECT_THROW((void)doomed.call(&Counter::add, 1).get(), spindle::ActorDiedError);
  rt.task(drop_kept_counters).options({.rank = last_rank()}).remote().get();
}

TEST(Cluster, RanksAskingForANameAtOnceShareOneActor) {
  if (cluster->size() < 2) GTEST_SKIP() << "alone: names are the local actors' (actor_test)";
  spindle::Runtime rt;
  auto make = rt.task(make_named);
  std::vector<spindle::ObjectRef<std::string>> answers;
  for (int round = 0; round < 3; ++round) {
    for (int rank = 0; rank < cluster->size(); ++rank) {
      answers.push_back(make.options({.rank = rank}).remote("shared by all", true, 1, true));
    }
  }
  // One actor took every call: its sums are 101, 102, ... in some order, all on one rank.
  std::set<int> sums;
  std::set<std::string> ranks;
  for (const std::string& answer : spindle::get(answers)) {
    const auto on = answer.find(" on rank ");
    ASSERT_NE(on, std::string::npos) << answer;
    sums.insert(std::stoi(answer.substr(0, on)));
    ranks.insert(answer.substr(on));
  }
  EXPECT_EQ(ranks.size(), 1u);
  EXPECT_EQ(static_cast<int>(sums.size()), static_cast<int>(answers.size()));
  EXPECT_EQ(*sums.begin(), 101);
  EXPECT_EQ(*sums.rbegin(), 100 + static_cast<int>(answers.size()));
  for (int rank = 0; rank < cluster->size(); ++rank) {
    rt.task(drop_kept_counters).options({.rank = rank}).remote().get();
  }
}

TEST(Cluster, ActorHandlesTravelAsArgumentsAndResults) {
  if (cluster->size() < 2) GTEST_SKIP() << "alone: nothing travels";
  spindle::Runtime rt;
  auto here = rt.actor<Counter>().options({.rank = 0}).remote(0);
  auto far = rt.actor<Counter>().options({.rank = last_rank()}).remote(1000);
  auto add = rt.task(add_through);
  int here_sum = 0, far_sum = 1000;
  for (int rank = 0; rank < cluster->size(); ++rank) {
    here_sum += 1;
    EXPECT_EQ(add.options({.rank = rank}).remote(here, 1).get(), std::make_pair(0, here_sum));
    far_sum += 2;
    EXPECT_EQ(add.options({.rank = rank}).remote(far, 2).get(),
              std::make_pair(last_rank(), far_sum));
  }
  // A handle that comes back calls the same actor; back home, it is this rank's own handle.
  auto back = rt.task(hand_back).options({.rank = 1});
  EXPECT_EQ(back.remote(here).get(), here);
  EXPECT_EQ(back.remote(here).get().call(&Counter::add, 1).get(), here_sum + 1);
  EXPECT_EQ(back.remote(far).get().call(&Counter::add, 1).get(), far_sum + 1);
  EXPECT_FALSE(back.remote(spindle::ActorHandle<Counter>()).get().valid());
  // Only a registered class's handles travel; an empty one of any class does.
  auto placeholder = rt.actor<Placeholder>().remote();
  auto valid = rt.task(is_valid).options({.rank = 1});
  try {
    (void)valid.remote(placeholder).get();
    FAIL() << "a handle of an unregistered class travelled";
  } catch (const spindle::Error& error) {
    EXPECT_THAT(error.what(), HasSubstr("SPINDLE_REMOTE_ACTOR"));
  }
  EXPECT_FALSE(valid.remote(spindle::ActorHandle<Placeholder>()).get());
  // Handles that travelled do not keep the actor: once this rank's are gone, it ends.
  auto on_last = rt.task(add_to_kept).options({.rank = last_rank()});
  rt.task(keep_handle).options({.rank = last_rank()}).remote(here).get();
  EXPECT_EQ(on_last.remote(0).get(), here_sum + 1);
  here = {};
  int sum = 0;
  for (int asks = 0; asks < 100000 && sum >= 0; ++asks) {  // it ends on a worker soon after
    sum = on_last.remote(0).get();
  }
  EXPECT_EQ(sum, -1);
  rt.task(drop_kept_counters).options({.rank = last_rank()}).remote().get();
}

// The block of `count` elements member `member` of `size` holds, as CollectiveGroup::block
// documents it: an even split, the first members one longer where it does not divide.
std::pair<std::size_t, std::size_t> block_of(std::size_t count, int size, int member) {
  std::size_t first = 0;
  for (int m = 0; m < member; ++m) {
    first += count / static_cast<std::size_t>(size) +
             (static_cast<std::size_t>(m) < count % static_cast<std::size_t>(size) ? 1 : 0);
  }
  const std::size_t length =
      count / static_cast<std::size_t>(size) +
      (static_cast<std::size_t>(member) < count % static_cast<std::size_t>(size) ? 1 : 0);
  return {first, first + length};
}

// What run_collectives gives member `member` of `size`, for `count` elements.
std::vector<double> collectives_expected(int member, int size, int count) {
  const auto n = static_cast<std::size_t>(count);
  const double members_sum = size * (size + 1) / 2.0;
  std::vector<double> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(members_sum * static_cast<double>(i + 1));
  const auto [first, last] = block_of(n, size, member);
  for (std::size_t i = first; i < last; ++i) {
    out.push_back(members_sum * static_cast<double>(i + 1));
  }
  for (int m = 0; m < size; ++m) {
    const auto [from, to] = block_of(n, size, m);
    out.insert(out.end(), to - from, m + 1.0);
  }
  out.insert(out.end(), n, static_cast<double>(size));
  for (int m = 0; m < size; ++m) {  // the allgather in place
    const auto [from, to] = block_of(n, size, m);
    out.insert(out.end(), to - from, m + 1.0);
  }
  return out;
}

TEST(Cluster, ACollectiveGroupReducesAndGathersAcrossItsMembers) {
  spindle::Runtime rt;
  std::vector<int> everyone(static_cast<std::size_t>(cluster->size()));
  std::iota(everyone.begin(), everyone.end(), 0);
  // Groups live as long as the cluster: each run of this test makes its own.
  static int runs = 0;
  const std::string all = "everyone " + std::to_string(++runs);
  cluster->make_group(all, everyone);
  const std::string others = "all but rank 0, " + std::to_string(runs);
  if (cluster->size() > 1) cluster->make_group(others, {everyone.begin() + 1, everyone.end()});
  auto run = rt.task(run_collectives);
  for (int count : {1, 7, 100000}) {  // fewer elements than members, uneven, and large
    std::vector<spindle::ObjectRef<std::vector<double>>> results;
    for (int rank : everyone) results.push_back(run.options({.rank = rank}).remote(all, count));
    for (int m = 0; m < cluster->size(); ++m) {
      EXPECT_EQ(results[static_cast<std::size_t>(m)].get(),
                collectives_expected(m, cluster->size(), count))
          << "member " << m << " of " << cluster->size() << ", " << count << " elements";
    }
  }
  // Other ways to combine: max, min and product.
  {
    std::vector<spindle::ObjectRef<std::vector<std::int64_t>>> results;
    for (int rank : everyone) {
      results.push_back(rt.task(combine_places).options({.rank = rank}).remote(all));
    }
    std::int64_t factorial = 1;
    for (int m = 1; m <= cluster->size(); ++m) factorial *= m;
    const std::vector<std::int64_t> expected{cluster->size(), 1, factorial, cluster->size()};
    for (auto& result : results) EXPECT_EQ(result.get(), expected);
  }
  // Rank 0's part from this thread, outside any task, with the others in tasks.
  {
    std::vector<spindle::ObjectRef<std::vector<double>>> results;
    for (int rank = 1; rank < cluster->size(); ++rank) {
      results.push_back(run.options({.rank = rank}).remote(all, 9));
    }
    EXPECT_EQ(run_collectives(all, 9), collectives_expected(0, cluster->size(), 9));
    for (int m = 1; m < cluster->size(); ++m) {
      EXPECT_EQ(results[static_cast<std::size_t>(m - 1)].get(),
                collectives_expected(m, cluster->size(), 9));
    }
  }
  if (cluster->size() > 1) {
    std::vector<spindle::ObjectRef<std::vector<double>>> results;
    for (int rank = 1; rank < cluster->size(); ++rank) {
      results.push_back(run.options({.rank = rank}).remote(others, 5));
    }
    for (int m = 0; m + 1 < cluster->size(); ++m) {
      EXPECT_EQ(results[static_cast<std::size_t>(m)].get(),
                collectives_expected(m, cluster->size() - 1, 5));
    }
    // Rank 0 is no member of it, and still knows its name is taken.
    EXPECT_THAT(rt.task(group_error).options({.rank = 0}).remote(others).get(),
                HasSubstr("rank 0 is in no collective group named '" + others + "'"));
    EXPECT_THROW(cluster->make_group(others, {1}), spindle::InvalidArgumentError);
  }
  // Names and ranks are checked when the group is made.
  EXPECT_THROW(cluster->make_group(all, {0}), spindle::InvalidArgumentError);
  try {
    cluster->make_group("bad", {0, cluster->size()});
    FAIL() << "a rank out of range was taken";
  } catch (const spindle::InvalidArgumentError& error) {
    EXPECT_THAT(error.what(), HasSubstr("rank " + std::to_string(cluster->size()) +
                                        " is out of range"));
  }
  EXPECT_THROW(cluster->make_group("twice", {0, 0}), spindle::InvalidArgumentError);
  EXPECT_THROW(cluster->make_group("none", {}), spindle::InvalidArgumentError);
  // A block that does not match its member's share is refused before anything is sent.
  auto group = spindle::CollectiveGroup::get(all);
  std::vector<double> values(10), wrong(11);
  EXPECT_THROW(group.reduce_scatter(std::span<const double>(values), std::span<double>(wrong)),
               spindle::InvalidArgumentError);
  // So is a block that overlaps the whole array (but for allgather's, in its own place).
  const auto [first, last] = group.block(values.size(), group.rank());
  if (last - first < values.size()) {
    std::span<double> misplaced(values.data() + values.size() - (last - first), last - first);
    EXPECT_THROW(group.allgather(std::span<const double>(misplaced), std::span<double>(values)),
                 spindle::InvalidArgumentError);
  }
  std::span<double> inside(values.data() + first, last - first);
  EXPECT_THROW(group.reduce_scatter(std::span<const double>(values), inside),
               spindle::InvalidArgumentError);
}

TEST(Cluster, UnpinnedActorsOfARegisteredClassReachEveryRank) {
  spindle::Runtime rt;
  std::set<int> ranks;
  std::vector<spindle::ActorHandle<Counter>> counters;
  for (int i = 0; i < 2 * cluster->size(); ++i) {
    counters.push_back(rt.actor<Counter>().remote(0));
    ranks.insert(counters.back().call(&Counter::where).get());
  }
  EXPECT_EQ(static_cast<int>(ranks.size()), cluster->size());
}

TEST(Cluster, AMethodThatThrowsThereFailsItsRefHereAndTheActorGoesOn) {
  if (cluster->size() < 2) GTEST_SKIP() << "alone: the call fails here, as a local call";
  spindle::Runtime rt;
  auto counter = rt.actor<Counter>().options({.rank = last_rank()}).remote(1);
  try {
    (void)counter.call(&Counter::fail, 3).get();
    FAIL() << "the call did not fail";
  } catch (const spindle::TaskError& error) {
    EXPECT_THAT(error.what(), HasSubstr("Counter::fail"));
    EXPECT_THAT(error.what(), HasSubstr("counter broke"));
    EXPECT_THAT(error.what(), HasSubstr("on rank " + std::to_string(last_rank())));
  }
  EXPECT_EQ(counter.call(&Counter::add, 1).get(), 2);
}

TEST(Cluster, AnActorThereRefusesAnUnregisteredMethodAndOtherConstructorTypes) {
  if (cluster->size() < 2) GTEST_SKIP() << "alone: every actor lives here";
  spindle::Runtime rt;
  auto counter = rt.actor<Counter>().options({.rank = 1}).remote(1);
  try {
    (void)counter.call(&Counter::secret);
    FAIL() << "an unregistered method was called";
  } catch (const spindle::InvalidArgumentError& error) {
    EXPECT_THAT(error.what(), HasSubstr("SPINDLE_REMOTE_METHOD(Counter, method)"));
  }
  try {
    (void)rt.actor<Counter>().options({.rank = 1}).remote(1.5);
    FAIL() << "a double was sent for an int";
  } catch (const spindle::InvalidArgumentError& error) {
    EXPECT_THAT(error.what(), HasSubstr("Counter"));
    EXPECT_THAT(error.what(), HasSubstr("std::tuple<int>"));
  }
}

TEST(Cluster, AnActorThereRefusesCallsPastItsPendingLimitAtTheCall) {
  if (cluster->size() < 2) GTEST_SKIP() << "alone: the limit is the local actors' (actor_test)";
  spindle::Runtime rt;
  auto gate = rt.task(set_gate).options({.num_cpus = 0, .rank = 1});
  gate.remote(false).get();
  auto turnstile =
      rt.actor<Turnstile>().options({.num_cpus = 0, .max_pending_calls = 2, .rank = 1}).remote();
  auto first = turnstile.call(&Turnstile::pass);
  auto second = turnstile.call(&Turnstile::pass);
  try {
    (void)turnstile.call(&Turnstile::pass);
    FAIL() << "a third unanswered call was sent";
  } catch (const spindle::PendingCallsLimitError& error) {
    EXPECT_THAT(error.what(), HasSubstr("max_pending_calls = 2"));
    EXPECT_THAT(error.what(), HasSubstr("rank 1"));
  }
  gate.remote(true).get();
  EXPECT_EQ(first.get() + second.get(), 2);
  EXPECT_EQ(turnstile.call(&Turnstile::pass).get(), 1);  // answered calls no longer count
}

TEST(Cluster, AKilledActorThereFailsTheCallsAfterTheKill) {
  if (cluster->size() < 2) GTEST_SKIP() << "alone: kills are the local actors' (actor_test)";
  spindle::Runtime rt;
  auto counter = rt.actor<Counter>().options({.rank = 1}).remote(1);
  EXPECT_EQ(counter.call(&Counter::add, 1).get(), 2);
  rt.kill(counter);
  EXPECT_THROW((void)counter.call(&Counter::add, 1).get(), spindle::ActorDiedError);
}

TEST(Cluster, AnActorThereEndsWhenItsLastHandleHereIsGone) {
  if (cluster->size() < 2) GTEST_SKIP() << "alone: lifetimes are the local actors' (actor_test)";
  spindle::Runtime rt;
  auto alive = rt.task(counters_alive).options({.rank = 1});
  ASSERT_EQ(alive.remote().get(), 0);
  {
    auto counter = rt.actor<Counter>().options({.rank = 1}).remote(kTracedStart);
    auto copy = counter;
    counter.ready().get();
    EXPECT_EQ(alive.remote().get(), 1);
  }
  // The release goes before the next call; the instance is destroyed on a worker there soon
  // after, so ask until it is (each ask a round trip, no sleeping).
  int now = 1;
  for (int asks = 0; asks < 100000 && now != 0; ++asks) now = alive.remote().get();
  EXPECT_EQ(now, 0);
}

}  // namespace

int main(int argc, char** argv) {
  // Every rank but 0 serves here; those ranks hold 2 "gizmo" each, rank 0 none.
  spindle::Cluster joined(argc, argv, [](int rank) {
    spindle::RuntimeOptions options{.timeline = true};
    if (rank > 0) options.resources = {{"gizmo", 2}};
    return options;
  });
  cluster = &joined;
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
