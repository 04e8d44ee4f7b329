// The executor: workers, pinning, and an idle runtime that uses no CPU.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>

#include <chrono>
#include <set>
#include <thread>

#include "spindle/spindle.hpp"

namespace spindle {
namespace {

int allowed_cpus_of_this_thread() {
  cpu_set_t set;
  sched_getaffinity(0, sizeof set, &set);
  return CPU_COUNT(&set);
}

TEST(Executor, OneWorkerPerAllowedCoreByDefault) {
  Runtime rt;
  EXPECT_EQ(rt.num_workers(), std::max<std::size_t>(1, rt.topology().num_cores()));
  Runtime three({.num_workers = 3});
  EXPECT_EQ(three.num_workers(), 3u);
}

TEST(Executor, RejectsBadOptions) {
  try {
    Runtime rt({.num_workers = 0});
    FAIL() << "no error";
  } catch (const InvalidArgumentError& error) {
    EXPECT_STREQ(error.what(), "num_workers = 0: at least 1 worker is needed");
  }
  EXPECT_THROW(Runtime({.stack_bytes = 1024}), InvalidArgumentError);
  EXPECT_THROW(Runtime({.num_gpus = 0.5}), InvalidArgumentError);
}

TEST(Executor, PinnedWorkersRunOnOnePu) {
  Runtime pinned({.pin_workers = true});
  auto affinity = pinned.task([] { return allowed_cpus_of_this_thread(); });
  std::vector<ObjectRef<int>> refs;
  for (int i = 0; i < 20; ++i) refs.push_back(affinity.remote());
  for (int count : get(refs)) EXPECT_EQ(count, 1);

  Runtime free({.pin_workers = false});
  int process = allowed_cpus_of_this_thread();
  EXPECT_EQ(free.task([] { return allowed_cpus_of_this_thread(); }).remote().get(), process);
}

TEST(Executor, TasksRunOnWorkerThreadsNotTheCaller) {
  Runtime rt;
  auto id = rt.task([] { return std::this_thread::get_id(); }).remote().get();
  EXPECT_NE(id, std::this_thread::get_id());
}

// Workers with nothing to do sleep: over a quiet window the process uses almost no CPU. The
// window is a measurement, not a synchronisation; a spinning pool would burn all of it on
// every worker.
TEST(Executor, IdleRuntimeUsesNoCpu) {
  Runtime rt;
  rt.task([] {}).remote().get();
  auto cpu_seconds = [] {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
           (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  };
  double before = cpu_seconds();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  double used = cpu_seconds() - before;
  EXPECT_LT(used, 0.3 * rt.num_workers() / 4) << "an idle runtime used " << used << " s of CPU";
}

}  // namespace
}  // namespace spindle
