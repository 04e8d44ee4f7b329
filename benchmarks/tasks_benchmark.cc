// Tasks and objects against baselines in the same binary: oneTBB's task_group and
// std::async. Ray's microbenchmark definitions: "async" submits N tasks and then gets them
// all; "sync" submits one and gets it before the next. At the end a table gives each
// scenario's rate and spindle's ratio to each baseline, measured in this same run.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <tbb/task_group.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <string>
#include <vector>

#include "ratio_reporter.hpp"
#include "spindle/spindle.hpp"

namespace {

using namespace std::chrono_literals;

constexpr int kBatch = 10'000;

spindle::Runtime& runtime() {
  static spindle::Runtime rt;
  return rt;
}

// ---- empty tasks ----------------------------------------------------------------------

void EmptyTasksAsync_spindle(benchmark::State& state) {
  auto empty = runtime().task([] {});
  std::vector<spindle::ObjectRef<void>> refs(kBatch);
  for (auto _ : state) {
    for (auto& ref : refs) ref = empty.remote();
    for (auto& ref : refs) ref.get();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void EmptyTasksAsync_tbb(benchmark::State& state) {
  tbb::task_group group;
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) group.run([] {});
    group.wait();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void EmptyTasksAsync_std_async(benchmark::State& state) {
  constexpr int kThreads = 200;  // std::async starts a thread per call
  std::vector<std::future<void>> futures(kThreads);
  for (auto _ : state) {
    for (auto& future : futures) future = std::async(std::launch::async, [] {});
    for (auto& future : futures) future.get();
  }
  state.SetItemsProcessed(state.iterations() * kThreads);
}

void EmptyTasksSync_spindle(benchmark::State& state) {
  auto empty = runtime().task([] {});
  for (auto _ : state) empty.remote().get();
  state.SetItemsProcessed(state.iterations());
}

void EmptyTasksSync_tbb(benchmark::State& state) {
  tbb::task_group group;
  for (auto _ : state) {
    group.run([] {});
    group.wait();
  }
  state.SetItemsProcessed(state.iterations());
}

void EmptyTasksSync_std_async(benchmark::State& state) {
  for (auto _ : state) std::async(std::launch::async, [] {}).get();
  state.SetItemsProcessed(state.iterations());
}

// The sync round trip's distribution: each submit-and-get timed on its own.
void SyncLatency_spindle(benchmark::State& state) {
  auto empty = runtime().task([] {});
  std::vector<double> ns;
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    empty.remote().get();
    ns.push_back(
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(ns.begin(), ns.end());
  state.counters["p50_ns"] = ns[ns.size() / 2];
  state.counters["p99_ns"] = ns[ns.size() * 99 / 100];
  state.SetItemsProcessed(state.iterations());
}

// ---- put and get ------------------------------------------------------------------------

// Put and get of one object, timed by hand: making the value and freeing it (100 MB takes
// milliseconds either way) stay outside the measured part.
template <typename Body>
void time_with_fresh_vector(benchmark::State& state, Body body) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    std::vector<char> value(bytes, 1);
    auto start = std::chrono::steady_clock::now();
    auto ref = runtime().put(std::move(value));
    body(ref);
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(spindle::format_bytes(bytes));
}

void PutGet_spindle(benchmark::State& state) {
  time_with_fresh_vector(state,
                         [](const auto& ref) { benchmark::DoNotOptimize(ref.get().data()); });
}

// Passing a large object through a task: put, a task reading it, get of the task's result.
void PassLargeObject_spindle(benchmark::State& state) {
  auto first = runtime().task([](const std::vector<char>& v) { return v.data(); });
  time_with_fresh_vector(
      state, [&](const auto& ref) { benchmark::DoNotOptimize(first.remote(ref).get()); });
}

// The baseline for the two above: what one copy of the value costs.
void CopyObject_baseline(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  std::vector<char> value(bytes, 1);
  for (auto _ : state) {
    std::vector<char> copy(value);
    benchmark::DoNotOptimize(copy.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(spindle::format_bytes(bytes));
}

void WaitOnManyRefs_spindle(benchmark::State& state) {
  std::vector<spindle::ObjectRef<int>> refs;
  for (int i = 0; i < kBatch; ++i) refs.push_back(runtime().put(i));
  for (auto _ : state) {
    auto result = spindle::wait(refs, {.num_returns = refs.size()});
    benchmark::DoNotOptimize(result.ready.data());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void GetManyRefs_spindle(benchmark::State& state) {
  auto identity = runtime().task([](int x) { return x; });
  std::vector<spindle::ObjectRef<int>> refs;
  for (int i = 0; i < kBatch; ++i) refs.push_back(identity.remote(i));
  for (auto _ : state) benchmark::DoNotOptimize(spindle::get(refs).data());
  state.SetItemsProcessed(state.iterations() * kBatch);
}

// ---- a million queued tasks -------------------------------------------------------------

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

void MillionQueuedTasks_spindle(benchmark::State& state) {
  constexpr int kTasks = 1'000'000;
  auto empty = runtime().task([] {});
  for (auto _ : state) {
    long before = peak_rss_kib();
    std::vector<spindle::ObjectRef<void>> refs;
    refs.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i) refs.push_back(empty.remote());
    for (auto& ref : refs) ref.get();
    state.counters["peak_rss_growth_MiB"] = static_cast<double>(peak_rss_kib() - before) / 1024;
  }
  state.SetItemsProcessed(state.iterations() * kTasks);
}

// ---- many tasks blocked in get at once ---------------------------------------------------

long resident_kib() {
  long pages = 0, resident = 0;
  if (FILE* file = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(file, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(file);
  }
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

// N tasks each block in get on one gate; the gate opens once all of them are blocked, and the
// resident memory is read at that moment. Each blocked task keeps the fiber it ran on.
void BlockedTasks_spindle(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  for (auto _ : state) {
    const long before = resident_kib();
    std::atomic<int> blocked{0};
    std::atomic<long> at_peak{0};
    auto gate = runtime()
                    .task([&] {
                      while (blocked.load() < n) spindle::this_task::sleep_for(1ms);
                      at_peak = resident_kib();
                    })
                    .remote();
    auto waiter = runtime().task([&blocked, gate] {
      blocked.fetch_add(1);
      gate.get();
    });
    std::vector<spindle::ObjectRef<void>> refs;
    refs.reserve(n);
    for (int i = 0; i < n; ++i) refs.push_back(waiter.remote());
    for (auto& ref : refs) ref.get();
    const double growth_kib = static_cast<double>(at_peak.load() - before);
    state.counters["resident_growth_MiB"] = growth_kib / 1024;
    state.counters["bytes_per_blocked_task"] = growth_kib * 1024 / n;
  }
  state.SetItemsProcessed(state.iterations() * n);
}

// ---- a binary tree of nested tasks (fib) -------------------------------------------------

long fib_spindle(int n) {
  if (n < 2) return n;
  static auto task = runtime().task(fib_spindle);
  auto a = task.remote(n - 1);
  auto b = task.remote(n - 2);
  return a.get() + b.get();
}

long fib_tbb(int n) {
  if (n < 2) return n;
  long a = 0, b = 0;
  tbb::task_group group;
  group.run([&] { a = fib_tbb(n - 1); });
  group.run([&] { b = fib_tbb(n - 2); });
  group.wait();
  return a + b;
}

long fib_std_async(int n) {
  if (n < 2) return n;
  auto a = std::async(std::launch::async, fib_std_async, n - 1);
  long b = fib_std_async(n - 2);
  return a.get() + b;
}

long fib_calls(int n) { return n < 2 ? 1 : 1 + fib_calls(n - 1) + fib_calls(n - 2); }

void FibTree_spindle(benchmark::State& state) {
  int n = static_cast<int>(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(runtime().task(fib_spindle).remote(n).get());
  state.SetItemsProcessed(state.iterations() * fib_calls(n));
}

void FibTree_tbb(benchmark::State& state) {
  int n = static_cast<int>(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(fib_tbb(n));
  state.SetItemsProcessed(state.iterations() * fib_calls(n));
}

void FibTree_std_async(benchmark::State& state) {
  int n = static_cast<int>(std::min<std::int64_t>(state.range(0), 12));  // a thread per call
  for (auto _ : state) benchmark::DoNotOptimize(fib_std_async(n));
  state.SetItemsProcessed(state.iterations() * fib_calls(n));
}

BENCHMARK(EmptyTasksAsync_spindle)->UseRealTime();
BENCHMARK(EmptyTasksAsync_tbb)->UseRealTime();
BENCHMARK(EmptyTasksAsync_std_async)->UseRealTime();
BENCHMARK(EmptyTasksSync_spindle)->UseRealTime();
BENCHMARK(EmptyTasksSync_tbb)->UseRealTime();
BENCHMARK(EmptyTasksSync_std_async)->UseRealTime();
BENCHMARK(SyncLatency_spindle)->Iterations(100'000)->UseRealTime();
// Making a 100 MB value takes milliseconds: a fixed number of iterations keeps the run short.
BENCHMARK(PutGet_spindle)->Arg(1 << 10)->UseManualTime();
BENCHMARK(PutGet_spindle)->Arg(100 << 20)->Iterations(50)->UseManualTime();
BENCHMARK(PassLargeObject_spindle)->Arg(1 << 10)->UseManualTime();
BENCHMARK(PassLargeObject_spindle)->Arg(100 << 20)->Iterations(50)->UseManualTime();
BENCHMARK(CopyObject_baseline)->Arg(1 << 10)->Arg(100 << 20)->UseRealTime();
BENCHMARK(WaitOnManyRefs_spindle)->UseRealTime();
BENCHMARK(GetManyRefs_spindle)->UseRealTime();
BENCHMARK(MillionQueuedTasks_spindle)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BlockedTasks_spindle)
    ->Arg(100'000)
    ->Arg(20'000)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(FibTree_spindle)->Arg(20)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(FibTree_tbb)->Arg(20)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(FibTree_std_async)->Arg(20)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  return spindle::bench::run_with_ratios(argc, argv, {"tbb", "std_async"}, [] {
    std::printf("spindle tasks benchmark: %u workers, totals %s\n", runtime().num_workers(),
                runtime().total_resources().to_string().c_str());
  });
}
