// The async-ops seed: refs as futures (work overlaps the caller's), delaying get until all
// tasks are submitted, and putting a large object once instead of passing it by value.
//
//   async_ops [--quick] [--tasks 8] [--work-ms 50] [--mb 80]
#include <chrono>
#include <cstdio>
#include <numeric>
#include <thread>
#include <vector>

#include "sample_support.hpp"
#include "spindle/spindle.hpp"

int main(int argc, char** argv) {
  samples::Flags flags(argc, argv,
                       {{"tasks", {8, 4, "tasks", 1, 1e6}},
                        {"work-ms", {50, 5, "simulated work of one task", 0, 60000, false}},
                        {"mb", {80, 8, "size of the large object", 0.001, 65536, false}}});
  const long tasks = flags.count("tasks");
  const auto work = std::chrono::microseconds(static_cast<long>(flags["work-ms"] * 1000));
  spindle::Runtime rt({.num_cpus = static_cast<double>(tasks)});
  auto slow = rt.task([work](long x) {
    spindle::this_task::sleep_for(work);
    return x * x;
  });

  // 1. A ref is a future: the caller works while the task runs, and get() is the join.
  samples::Stopwatch blocking_clock;
  long blocking = slow.remote(3).get();
  std::this_thread::sleep_for(work);  // the caller's own work, after waiting
  double blocking_seconds = blocking_clock.seconds();
  samples::Stopwatch future_clock;
  auto future = slow.remote(3);
  std::this_thread::sleep_for(work);  // the caller's own work, meanwhile
  long overlapped = future.get();
  double future_seconds = future_clock.seconds();

  // 2. Delay get: a get after each submit runs the tasks one by one.
  samples::Stopwatch eager_clock;
  long eager_sum = 0;
  for (long i = 0; i < tasks; ++i) eager_sum += slow.remote(i).get();
  double eager_seconds = eager_clock.seconds();
  samples::Stopwatch delayed_clock;
  std::vector<spindle::ObjectRef<long>> refs;
  for (long i = 0; i < tasks; ++i) refs.push_back(slow.remote(i));
  std::vector<long> values = spindle::get(refs);
  long delayed_sum = std::accumulate(values.begin(), values.end(), 0L);
  double delayed_seconds = delayed_clock.seconds();

  // 3. A large object passed by value is copied into every task; put once, it is shared.
  std::vector<double> large(static_cast<std::size_t>(flags["mb"] * (1 << 20) / sizeof(double)),
                            1.0);
  auto total = rt.task([](const std::vector<double>& v) { return v.size(); });
  samples::Stopwatch copy_clock;
  std::vector<spindle::ObjectRef<std::size_t>> copied;
  for (long i = 0; i < tasks; ++i) copied.push_back(total.remote(large));  // a copy each
  for (const auto& ref : copied) ref.get();
  double copy_seconds = copy_clock.seconds();
  samples::Stopwatch put_clock;
  auto shared = rt.put(std::move(large));  // moved in once, never copied
  std::vector<spindle::ObjectRef<std::size_t>> by_ref;
  for (long i = 0; i < tasks; ++i) by_ref.push_back(total.remote(shared));
  for (const auto& ref : by_ref) ref.get();
  double put_seconds = put_clock.seconds();

  std::printf("async_ops: %ld tasks of %g ms; results %ld %ld, sums %ld %ld; %g MB object\n", tasks,
              flags["work-ms"], blocking, overlapped, eager_sum, delayed_sum, flags["mb"]);
  samples::report("get at once, then the caller's work", blocking_seconds);
  samples::report("caller's work while the task runs", future_seconds, blocking_seconds);
  samples::report("get after each submit", eager_seconds);
  samples::report("submit all, then get", delayed_seconds, eager_seconds);
  samples::report("large object by value to each task", copy_seconds);
  samples::report("large object put once, ref to each task", put_seconds, copy_seconds);
  return 0;
}
