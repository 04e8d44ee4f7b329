// Map and reduce over items: a map task per item (increment, after simulated work), then a
// serial reduce, a chained parallel reduce and a tree reduce, each timed; against the same
// work done in a loop.
//
//   map_reduce [--quick] [--items 100] [--work-ms 10]
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "sample_support.hpp"
#include "spindle/spindle.hpp"

namespace {

std::chrono::microseconds work;

long increment(long x) {
  spindle::this_task::sleep_for(work);  // simulated work: suspends only this task
  return x + 1;
}
long add(long a, long b) {
  spindle::this_task::sleep_for(work / 10);
  return a + b;
}

}  // namespace

int main(int argc, char** argv) {
  samples::Flags flags(
      argc, argv,
      {{"items", {100, 20, "items", 1, 1e7}}, {"work-ms", {10, 1, "simulated work of one map, in ms", 0, 60000, false}}});
  const long items = flags.count("items");
  work = std::chrono::microseconds(static_cast<long>(flags["work-ms"] * 1000));
  spindle::Runtime rt({.num_cpus = 16});  // simulated work waits, so more run than cores
  auto map = rt.task(increment).options({.num_cpus = 1});
  auto reducer = rt.task(add);
  const long want = items * (items + 1) / 2;

  samples::Stopwatch sequential_clock;
  long sequential_sum = 0;
  for (long i = 0; i < items; ++i) {
    std::this_thread::sleep_for(work);
    sequential_sum += i + 1;
  }
  for (long i = 1; i < items; ++i) std::this_thread::sleep_for(work / 10);
  double sequential = sequential_clock.seconds();

  auto map_all = [&] {
    std::vector<spindle::ObjectRef<long>> mapped;
    for (long i = 0; i < items; ++i) mapped.push_back(map.remote(i));
    return mapped;
  };

  samples::Stopwatch serial_clock;
  long serial_sum = 0;
  for (long value : spindle::get(map_all())) serial_sum += value;
  double serial = serial_clock.seconds();

  // Chained: each add waits for the previous one and the next mapped item.
  samples::Stopwatch chained_clock;
  auto mapped = map_all();
  spindle::ObjectRef<long> chain = mapped[0];
  for (long i = 1; i < items; ++i) chain = reducer.remote(chain, mapped[i]);
  long chained_sum = chain.get();
  double chained = chained_clock.seconds();

  // Tree: pairs, then pairs of pairs: log2(items) levels of adds.
  samples::Stopwatch tree_clock;
  std::vector<spindle::ObjectRef<long>> level = map_all();
  while (level.size() > 1) {
    std::vector<spindle::ObjectRef<long>> next;
    for (std::size_t i = 0; i + 1 < level.size(); i += 2)
      next.push_back(reducer.remote(level[i], level[i + 1]));
    if (level.size() % 2 == 1) next.push_back(level.back());
    level = std::move(next);
  }
  long tree_sum = level[0].get();
  double tree = tree_clock.seconds();

  std::printf("map_reduce: %ld items, %g ms of work per map; sums %ld %ld %ld %ld (want %ld)\n",
              items, flags["work-ms"], sequential_sum, serial_sum, chained_sum, tree_sum, want);
  samples::report("sequential loop", sequential);
  samples::report("parallel map, serial reduce", serial, sequential);
  samples::report("parallel map, chained reduce", chained, sequential);
  samples::report("parallel map, tree reduce", tree, sequential);
  return serial_sum == want && chained_sum == want && tree_sum == want ? 0 : 1;
}
