// How Boost.Fiber's multi-thread algorithms compare with spindle's own, on this machine: the
// measurement behind the executor's choice (the executor's design asks for one).
//
// For each algorithm, two threads install it; one starts 200,000 empty fibers in batches of
// 1,000 and joins them (fibers a second), then both stay idle for 200 ms while the process's
// CPU time is read (an algorithm that spins burns it). work_stealing keeps static state and
// cannot be set up twice in one process (boostorg/fiber#217), so it runs last.
#include <sys/resource.h>

#include <boost/fiber/algo/shared_work.hpp>
#include <boost/fiber/algo/work_stealing.hpp>
#include <boost/fiber/all.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <thread>
#include <vector>

#include "fibers/worker_algorithm.hpp"
#include "sample_support.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

void measure(const char* name, const std::function<void()>& install) {
  constexpr int kFibers = 200'000;
  constexpr int kBatch = 1'000;
  boost::fibers::mutex mutex;
  boost::fibers::condition_variable_any finished;
  bool done = false;
  double fibers_per_second = 0;
  double idle_cpu = 0;
  std::thread helper([&] {
    install();
    std::unique_lock lock(mutex);
    finished.wait(lock, [&] { return done; });
  });
  std::thread spawner([&] {
    install();
    std::vector<boost::fibers::fiber> batch;
    batch.reserve(kBatch);
    auto start = Clock::now();
    for (int i = 0; i < kFibers; i += kBatch) {
      for (int j = 0; j < kBatch; ++j) batch.emplace_back([] {});
      for (auto& fiber : batch) fiber.join();
      batch.clear();
    }
    fibers_per_second = kFibers / std::chrono::duration<double>(Clock::now() - start).count();
    double before = cpu_seconds();
    boost::this_fiber::sleep_for(std::chrono::milliseconds(200));
    idle_cpu = cpu_seconds() - before;
    std::lock_guard lock(mutex);
    done = true;
    finished.notify_all();
  });
  spawner.join();
  helper.join();
  std::printf("%-34s %14.0f %22.1f\n", name, fibers_per_second, idle_cpu * 1000);
}

}  // namespace

int main(int argc, char** argv) {
  samples::Flags flags(argc, argv, {});  // none but --help: a fixed, short run
  std::printf("%-34s %14s %22s\n", "algorithm (2 threads)", "fibers/s", "CPU ms in 200 ms idle");
  measure("spindle WorkerAlgorithm", [] {
    boost::fibers::use_scheduling_algorithm<spindle::detail::WorkerAlgorithm>(0u, nullptr);
  });
  measure("round_robin (per thread)",
          [] { boost::fibers::use_scheduling_algorithm<boost::fibers::algo::round_robin>(); });
  measure("shared_work (suspend)",
          [] { boost::fibers::use_scheduling_algorithm<boost::fibers::algo::shared_work>(true); });
  measure("work_stealing (suspend)", [] {
    boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(2, true);
  });
}
