// The executor: workers, pinning, stacks, and an idle runtime that uses no CPU.
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

// About `depth` KiB of stack: each level keeps a 1 KiB array the compiler cannot drop.
long deep_recursion(int depth) {
  volatile char frame[1024];
  frame[0] = 1;
  frame[sizeof frame - 1] = 0;
  if (depth == 0) return 0;
  return deep_recursion(depth - 1) + frame[0] + frame[sizeof frame - 1];  // depth, in the end
}

TEST(Stacks, ATaskRecursesThroughOneAndAHalfMegabytesByDefault) {
  Runtime rt({.num_workers = 1});
  auto deep = rt.task([] { return deep_recursion(1536); });
  EXPECT_EQ(deep.remote().get(), 1536);
  // Again, on a fiber that blocked first: the stack a blocked task keeps is as deep.
  auto blocks_then_recurses = rt.task([&] {
    deep.remote().get();
    return deep_recursion(1536);
  });
  EXPECT_EQ(blocks_then_recurses.remote().get(), 1536);
}

TEST(Stacks, TasksAndActorsAskForMoreThanTheRuntimesStacks) {
  Runtime rt({.num_workers = 1, .stack_bytes = 64 * 1024});
  auto deep = rt.task([] { return deep_recursion(1536); }).options({.stack_bytes = 4 << 20});
  EXPECT_EQ(deep.remote().get(), 1536);

  struct Deep {
    long run(int depth) { return deep_recursion(depth); }
  };
  auto actor = rt.actor<Deep>().options({.stack_bytes = 4 << 20}).remote();
  EXPECT_EQ(actor.call(&Deep::run, 1536).get(), 1536);
}

TEST(Stacks, RejectsAStackTooSmallToRunOn) {
  Runtime rt({.num_workers = 1});
  try {
    (void)rt.task([] {}).options({.stack_bytes = 100});
    FAIL() << "no error";
  } catch (const InvalidArgumentError& error) {
    EXPECT_STREQ(error.what(), "stack_bytes = 100: 0 (the runtime's) or at least 16384 is needed");
  }
  EXPECT_THROW((void)rt.actor<int>().options({.stack_bytes = 100}), InvalidArgumentError);
}

// The death test runs in a child process of its own ("threadsafe": re-executed, so the
// workers exist in the child).
TEST(StacksDeathTest, AnOverflowIsReportedByTaskNameAndStackSize) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto overflow = [] {
    Runtime rt({.num_workers = 1, .stack_bytes = 64 * 1024});
    rt.task([] { return deep_recursion(1 << 20); }).options({.name = "bottomless"}).remote().get();
  };
  EXPECT_DEATH(overflow(),
               "spindle: task 'bottomless' \\(#[0-9]+\\) overflowed its stack of 65536 bytes");
}

TEST(Stacks, SleepTakesAnyDuration) {
  Runtime rt({.num_workers = 1});
  auto sleeper = rt.task([] {
    auto start = std::chrono::steady_clock::now();
    this_task::sleep_for(std::chrono::milliseconds(2));
    this_task::sleep_for(std::chrono::duration<double>(0.001));
    this_task::sleep_for(std::chrono::microseconds(-5));  // nothing, as std::this_thread's
    return std::chrono::steady_clock::now() - start;
  });
  EXPECT_GE(sleeper.remote().get(), std::chrono::milliseconds(3));
}

}  // namespace
}  // namespace spindle
