// Tasks: functions, arguments, dependencies, errors, retries, cancel, admission, deadlock.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <nlohmann/json.hpp>
#include <numeric>
#include <thread>

#include "spindle/spindle.hpp"
#include "support/gate.hpp"
#include "support/values.hpp"

namespace spindle {
namespace {

using namespace std::chrono_literals;
using testing::Gate;
using testing::error_of;
using ::testing::HasSubstr;

int add(int a, int b) { return a + b; }

struct Multiplier {
  int factor;
  int operator()(int x) const { return x * factor; }
};

TEST(Task, RunsFreeFunctionsLambdasAndFunctors) {
  Runtime rt;
  EXPECT_EQ(rt.task(add).remote(2, 3).get(), 5);
  EXPECT_EQ(rt.task([](int x) { return x + 1; }).remote(41).get(), 42);
  EXPECT_EQ(rt.task(Multiplier{3}).remote(5).get(), 15);
  std::atomic<int> calls{0};
  ObjectRef<void> done = rt.task([&calls] { ++calls; }).remote();
  done.get();
  EXPECT_EQ(calls, 1);
}

TEST(Task, ResolvesRefsAndValuesAsArguments) {
  Runtime rt;
  auto text = rt.put(std::string("spin"));
  auto concat = rt.task([](const std::string& a, const std::string& b) { return a + b; });
  EXPECT_EQ(concat.remote(text, std::string("dle")).get(), "spindle");
  EXPECT_EQ(concat.remote(text, concat.remote(text, text)).get(), "spinspinspin");
}

TEST(Task, DependencyChainsAndDiamonds) {
  Runtime rt;
  auto inc = rt.task([](int x) { return x + 1; });
  ObjectRef<int> ref = rt.put(0);
  for (int i = 0; i < 200; ++i) ref = inc.remote(ref);
  EXPECT_EQ(ref.get(), 200);

  auto top = rt.put(10);
  auto left = inc.remote(top);
  auto right = rt.task([](int x) { return x * 2; }).remote(top);
  auto bottom = rt.task(add).remote(left, right);
  EXPECT_EQ(bottom.get(), 31);
}

// A result is kept apart from its task's record; the arguments must not live on with it.
TEST(Task, AKeptResultDoesNotKeepItsArguments) {
  Runtime rt;
  auto input = std::make_shared<int>(7);
  auto read = rt.task([](const std::shared_ptr<int>& p) { return *p; });
  ObjectRef<int> ok = read.remote(input);
  EXPECT_EQ(ok.get(), 7);
  EXPECT_EQ(input.use_count(), 1);  // the task's copy went as it finished

  auto fail = rt.task([](const std::shared_ptr<int>&) -> int { throw std::runtime_error("no"); });
  ObjectRef<int> failed = fail.remote(input);
  EXPECT_THROW((void)failed.get(), TaskError);
  EXPECT_EQ(input.use_count(), 1);

  // An argument ref's object is freed once its consumer is done, though the result is kept.
  auto upstream = rt.put(std::make_shared<int>(8));
  std::weak_ptr<int> weak = upstream.get();
  ObjectRef<int> downstream = read.remote(upstream);
  upstream = ObjectRef<std::shared_ptr<int>>();
  EXPECT_EQ(downstream.get(), 8);
  EXPECT_TRUE(weak.expired());

  // A call's arguments too.
  struct Reader {
    int read(const std::shared_ptr<int>& p) { return *p; }
  };
  auto actor = rt.actor<Reader>().remote();
  ObjectRef<int> called = actor.call(&Reader::read, input);
  EXPECT_EQ(called.get(), 7);
  EXPECT_EQ(input.use_count(), 1);
}

// A task's arguments live in its record's block, its result in a block of its own: an
// over-aligned type keeps its alignment in both.
TEST(Task, OverAlignedArgumentsAndResultsKeepTheirAlignment) {
  struct alignas(128) Wide {
    double values[16] = {};
  };
  Runtime rt;
  auto address_of = rt.task([](const Wide& wide) { return reinterpret_cast<std::uintptr_t>(&wide); });
  auto make = rt.task([](double first) { return Wide{{first}}; });
  // Many blocks, so that a 16-byte alignment cannot pass by chance.
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(address_of.remote(Wide{}).get() % 128, 0u);
    ObjectRef<Wide> made = make.remote(i);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(&made.get()) % 128, 0u);
    EXPECT_EQ(made.get().values[0], i);
  }
}

// Refs keep only their results: the tasks' records, and with them the function's copies, are
// freed once the tasks have run (at the latest with their runtime).
TEST(Task, KeptRefsKeepNeitherTheirTasksRecordsNorTheFunction) {
  auto captured = std::make_shared<int>(5);
  std::vector<ObjectRef<int>> kept;
  {
    Runtime rt({.num_cpus = 2, .num_workers = 2});
    auto read = rt.task([captured](int plus) { return *captured + plus; });
    for (int i = 0; i < 100; ++i) kept.push_back(read.remote(i));
    for (auto& ref : kept) ref.get();
  }
  EXPECT_EQ(captured.use_count(), 1);  // the function that captured it is gone
  for (int i = 0; i < 100; ++i) EXPECT_EQ(kept[i].get(), 5 + i);
}

TEST(Task, ARefOutlivesItsRuntime) {
  ObjectRef<std::string> kept;
  {
    Runtime rt({.num_cpus = 1, .num_workers = 1});
    kept = rt.task([] { return std::string("still here"); }).remote();
    kept.get();
  }
  EXPECT_EQ(kept.get(), "still here");
  Runtime other({.num_cpus = 1, .num_workers = 1});
  other.cancel(kept);  // its task finished with a runtime now gone: nothing happens
  EXPECT_EQ(kept.get(), "still here");
}

TEST(Task, ExceptionReachesGetNestedInTaskError) {
  Runtime rt;
  auto ref = rt.task([]() -> int { throw std::out_of_range("index 7"); })
                 .options({.name = "lookup"})
                 .remote();
  try {
    (void)ref.get();
    FAIL() << "no error";
  } catch (const TaskError& error) {
    EXPECT_EQ(error.task_name(), "lookup");
    EXPECT_THAT(error.what(), HasSubstr("task 'lookup' (#"));
    EXPECT_THAT(error.what(), HasSubstr("failed: index 7"));
    EXPECT_THROW(std::rethrow_if_nested(error), std::out_of_range);
  }
  // Every get sees the same error.
  EXPECT_THROW((void)ref.get(), TaskError);
  EXPECT_THROW((void)get(std::vector{ref}), TaskError);
}

TEST(Task, FailedDependencyFailsTheTaskWithTheCauseNested) {
  Runtime rt;
  auto source = rt.task([]() -> int { throw std::invalid_argument("bad input"); })
                    .options({.name = "source"})
                    .remote();
  std::atomic<bool> ran{false};
  auto consumer = rt.task([&ran](int x) {
                      ran = true;
                      return x;
                    }).options({.name = "consumer"});
  auto ref = consumer.remote(source);
  try {
    (void)ref.get();
    FAIL() << "no error";
  } catch (const TaskError& error) {
    EXPECT_EQ(error.task_name(), "consumer");
    EXPECT_THAT(error.what(), HasSubstr("because its argument 0 failed"));
    try {
      std::rethrow_if_nested(error);
      FAIL() << "nothing nested";
    } catch (const TaskError& cause) {
      EXPECT_EQ(cause.task_name(), "source");
      EXPECT_THROW(std::rethrow_if_nested(cause), std::invalid_argument);
    }
  }
  EXPECT_FALSE(ran);
}

TEST(Task, RetriesUpToMaxRetriesWhenAllowed) {
  Runtime rt;
  std::atomic<int> runs{0};
  auto flaky = [&runs] {
    if (++runs < 3) throw std::runtime_error("flaky");
    return runs.load();
  };
  EXPECT_EQ(rt.task(flaky).options({.max_retries = 5, .retry_exceptions = true}).remote().get(), 3);

  runs = 0;
  auto exhausted = rt.task(flaky).options({.max_retries = 1, .retry_exceptions = true}).remote();
  try {
    (void)exhausted.get();
    FAIL() << "no error";
  } catch (const TaskError& error) {
    EXPECT_THAT(error.what(), HasSubstr("failed on attempt 2: flaky"));
  }
  EXPECT_EQ(runs, 2);

  runs = 0;
  EXPECT_THROW((void)rt.task(flaky).options({.max_retries = 5}).remote().get(), TaskError);
  EXPECT_EQ(runs, 1) << "retry_exceptions is off: no retry";
}

TEST(Task, InvalidOptionsAreRejectedWithTheirValue) {
  Runtime rt({.num_cpus = 2, .num_gpus = 1});
  auto noop = rt.task([] {});
  auto expect_invalid = [&](const TaskOptions& options, const std::string& message) {
    try {
      (void)noop.options(options);
      ADD_FAILURE() << "no error for " << message;
    } catch (const InvalidArgumentError& error) {
      EXPECT_EQ(error.what(), message);
    }
  };
  expect_invalid({.num_gpus = 1.5}, "num_gpus = 1.5: a demand above 1 must be a whole number");
  expect_invalid({.num_cpus = -1}, "num_cpus = -1: must not be negative");
  expect_invalid({.num_cpus = 0.00001}, "num_cpus = 1e-05: the finest fraction allowed is 0.0001");
  expect_invalid({.max_retries = -2}, "max_retries = -2: must be -1 (no limit) or more");
  expect_invalid({.resources = {{"tpu", 1}}},
                 "unknown resource 'tpu' in demand {cpu: 1, tpu: 1}: this runtime has cpu, gpu, "
                 "memory");
}

TEST(Task, InfeasibleDemandFailsAtSubmit) {
  Runtime rt({.num_cpus = 2, .num_gpus = 1});
  auto big = rt.task([] { return 1; }).options({.num_cpus = 4, .name = "big"});
  try {
    (void)big.remote();
    FAIL() << "no error";
  } catch (const InfeasibleError& error) {
    EXPECT_THAT(error.what(), HasSubstr("task 'big': demand {cpu: 4} can never be met: the totals "
                                        "are {cpu: 2, gpu: 1, memory: "));
  }
  EXPECT_THROW((void)rt.task([] {}).options({.num_gpus = 2}).remote(), InfeasibleError);
  EXPECT_EQ(rt.status().finished + rt.status().waiting_for_resources, 0u);
}

TEST(Task, CancelFailsAQueuedTask) {
  Runtime rt({.num_cpus = 1, .num_workers = 1});
  Gate gate;
  auto blocker = rt.task([&gate] {
                     gate.wait();
                     return 1;
                   }).remote();
  std::atomic<bool> ran{false};
  auto victim = rt.task([&ran] {
                    ran = true;
                    return 2;
                  })
                    .options({.name = "victim"})
                    .remote();
  rt.cancel(victim);
  try {
    (void)victim.get();
    FAIL() << "no error";
  } catch (const CancelledError& error) {
    EXPECT_THAT(error.what(), HasSubstr("task 'victim' (#"));
    EXPECT_THAT(error.what(), HasSubstr("was cancelled: cancel() was called before it ran"));
  }
  gate.open();
  EXPECT_EQ(blocker.get(), 1);
  EXPECT_FALSE(ran);
  EXPECT_EQ(rt.status().cancelled, 1u);
  rt.cancel(blocker);    // finished: nothing happens
  rt.cancel(rt.put(3));  // put objects have no task
  EXPECT_EQ(blocker.get(), 1);
}

TEST(Task, CancelSetsTheFlagOfARunningTask) {
  Runtime rt;
  boost::fibers::promise<void> started;
  auto started_future = started.get_future();
  auto task = rt.task([&started] {
    started.set_value();
    while (!this_task::cancelled()) this_task::yield();
    return 42;
  });
  auto ref = task.remote();
  started_future.wait();
  EXPECT_FALSE(ref.done());
  rt.cancel(ref);
  EXPECT_EQ(ref.get(), 42);
}

// A task of the default demand runs while an older one that needs every CPU waits for them;
// that one runs once they are free.
TEST(Task, ADefaultTaskRunsWhileABiggerDemandWaits) {
  Runtime rt({.num_cpus = 2, .num_workers = 2});
  auto gate = std::make_shared<Gate>();
  auto holder = rt.task([gate] { gate->wait(); }).options({.num_cpus = 0.5}).remote();
  auto big = rt.task([] { return 2; }).options({.num_cpus = 2}).remote();
  EXPECT_EQ(rt.task([] { return 1; }).remote().get(60s), 1);
  EXPECT_FALSE(big.done());
  gate->open();
  EXPECT_EQ(big.get(60s), 2);
  holder.get();
}

// A queued child that fits in what its parent holds runs inline in the parent's get: the
// parent is not blocked meanwhile. A child that needs more runs on its own, after the parent
// blocked and gave its CPU back. One worker, so nothing else can take the child first.
TEST(Task, GetRunsAQueuedChildInlineWhenTheParentLendsEnough) {
  Runtime rt({.num_cpus = 2, .num_workers = 1});
  auto blocked_seen = rt.task([&rt] { return rt.status().blocked; });
  auto fits = rt.task([&] { return blocked_seen.remote().get(); });
  EXPECT_EQ(fits.remote().get(), 0u);
  auto needs_two = blocked_seen.options({.num_cpus = 2});
  auto too_big = rt.task([&] { return needs_two.remote().get(); });
  EXPECT_EQ(too_big.remote().get(), 1u);
}

// A task waiting on another runtime's object, when its own runtime goes first, is cancelled
// with it; the object's later completion reaches nothing of the runtime that is gone.
TEST(Task, ATaskWaitingOnAnotherRuntimesObjectIsCancelledWithItsRuntime) {
  Runtime b({.num_cpus = 1, .num_workers = 1});
  for (double cpus : {1.0, 0.5}) {  // a lane task, and one admitted by the scheduler
    SCOPED_TRACE(cpus);
    auto gate = std::make_shared<Gate>();
    auto slow = b.task([gate] {
                   gate->wait();
                   return 7;
                 }).remote();
    ObjectRef<int> waiting;
    {
      Runtime a({.num_cpus = 1, .num_workers = 1});
      waiting = a.task([](int x) { return x + 1; }).options({.num_cpus = cpus}).remote(slow);
      EXPECT_EQ(a.status().waiting_for_dependencies, 1u);
    }
    EXPECT_THAT(error_of<CancelledError>([&] { (void)waiting.get(); }),
                HasSubstr("while it waited for another runtime's object"));
    gate->open();
    EXPECT_EQ(slow.get(), 7);
  }
}

// A task waiting on another runtime's object runs once it completes even when nobody keeps
// a ref to it (as with its own runtime's objects).
TEST(Task, ATaskWaitingOnAnotherRuntimesObjectRunsWithoutARefToIt) {
  Runtime a({.num_cpus = 1, .num_workers = 1}), b({.num_cpus = 1, .num_workers = 1});
  auto gate = std::make_shared<Gate>();
  auto slow = b.task([gate] {
                 gate->wait();
                 return 7;
               }).remote();
  auto ran = std::make_shared<std::promise<int>>();
  std::future<int> seen = ran->get_future();
  (void)a.task([ran](int x) { ran->set_value(x); }).remote(slow);  // the ref is dropped
  gate->open();
  EXPECT_EQ(seen.get(), 7);
}

// A task of one runtime never runs another runtime's task inline: that one runs on its own
// runtime's worker, once that worker is free. Nor is the wait a deadlock of the first
// runtime, though nothing runs there.
TEST(Task, GetNeverRunsAnotherRuntimesTaskInline) {
  Runtime a({.num_cpus = 1, .num_workers = 1}), b({.num_cpus = 1, .num_workers = 1});
  auto gate = std::make_shared<Gate>();
  auto b_worker = b.task([gate] {
                     gate->wait();
                     return std::this_thread::get_id();
                   }).remote();
  auto b_task = b.task([] { return std::this_thread::get_id(); }).remote();
  auto a_task = a.task([b_task] { return b_task.get(); }).remote();
  while (a.status().blocked == 0 && !a_task.done()) std::this_thread::yield();
  EXPECT_FALSE(a_task.done()) << "a waits for b's task, which b runs once its worker is free";
  gate->open();
  EXPECT_EQ(a_task.get(), b_worker.get());
}

// get() inside a task gives its CPU back, so recursion never deadlocks, even with one CPU.
TEST(Task, NestedTasksOnOneCpuDoNotDeadlock) {
  Runtime rt({.num_cpus = 1, .num_workers = 1});
  std::function<int(int)> depth = [&](int n) {
    return n == 0 ? 0 : 1 + rt.task(depth).remote(n - 1).get();
  };
  EXPECT_EQ(rt.task(depth).remote(300).get(), 300);

  std::function<long(int)> fib = [&](int n) -> long {
    if (n < 2) return n;
    auto a = rt.task(fib).remote(n - 1);
    auto b = rt.task(fib).remote(n - 2);
    return a.get() + b.get();
  };
  EXPECT_EQ(rt.task(fib).remote(15).get(), 610);
}

// The ray#5790 case: a task holding the only GPU waits for a task that needs it.
TEST(Task, GpuTaskWaitingOnGpuTaskIsReportedAsDeadlock) {
  Runtime rt({.num_cpus = 4, .num_gpus = 1});
  auto inner = rt.task([] { return 7; }).options({.num_gpus = 1, .name = "inner"});
  ObjectRef<int> inner_ref;
  auto outer = rt.task([&] {
                   inner_ref = inner.remote();
                   return inner_ref.get();
                 }).options({.num_gpus = 1, .name = "outer"});
  try {
    (void)outer.remote().get();
    FAIL() << "no error";
  } catch (const TaskError& error) {
    try {
      std::rethrow_if_nested(error);
      FAIL() << "nothing nested";
    } catch (const DeadlockError& deadlock) {
      std::string message = deadlock.what();
      EXPECT_THAT(message, HasSubstr("deadlock: no task can make progress"));
      EXPECT_THAT(message,
                  HasSubstr("task 'outer' (#1) holding {gpu: 1} waits for task 'inner' (#2)"));
      EXPECT_THAT(message,
                  HasSubstr("Waiting for resources: task 'inner' (#2) needs {cpu: 1, gpu: 1}"));
    }
  }
  // Once outer failed and gave its GPU back, inner ran.
  EXPECT_EQ(inner_ref.get(), 7);
}

TEST(Task, BlockedGetWithTimeoutIsNotADeadlock) {
  Runtime rt({.num_cpus = 4, .num_gpus = 1});
  auto inner = rt.task([] { return 7; }).options({.num_gpus = 1});
  auto outer = rt.task([&] {
                   auto ref = inner.remote();
                   try {
                     return ref.get(20ms);
                   } catch (const GetTimeoutError&) {
                     return -1;
                   }
                 }).options({.num_gpus = 1});
  EXPECT_EQ(outer.remote().get(), -1);
}

TEST(Task, AdmissionRespectsResources) {
  Runtime rt({.num_cpus = 2});
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  auto heavy = rt.task([&] {
                   int now = ++running;
                   int seen = most.load();
                   while (seen < now && !most.compare_exchange_weak(seen, now)) {
                   }
                   this_task::yield();
                   --running;
                 }).options({.num_cpus = 1});
  std::vector<ObjectRef<void>> refs;
  for (int i = 0; i < 200; ++i) refs.push_back(heavy.remote());
  for (auto& ref : refs) ref.get();
  EXPECT_LE(most, 2);
  EXPECT_GE(most, 1);
}

TEST(Task, FractionalGpusAreVisibleToTheTask) {
  Runtime rt({.num_cpus = 2, .num_gpus = 2});
  auto ids = [] { return this_task::gpu_ids(); };
  EXPECT_EQ(rt.task(ids).options({.num_gpus = 0.5}).remote().get(), std::vector<int>{0});
  EXPECT_EQ(rt.task(ids).options({.num_gpus = 2}).remote().get(), (std::vector<int>{0, 1}));
  auto info = rt.task([] {
                  return this_task::resources().to_string() + " " + this_task::name();
                }).options({.num_cpus = 0.5, .num_gpus = 0.25, .name = "probe"});
  EXPECT_EQ(info.remote().get(), "{cpu: 0.5, gpu: 0.25} probe");
  EXPECT_FALSE(this_task::in_task());
  EXPECT_TRUE(this_task::gpu_ids().empty());
}

TEST(Task, ATaskFindsTheRuntimeRunningItAndSubmitsWithIt) {
  Runtime rt({.num_cpus = 2});
  EXPECT_EQ(rt.task([] { return &this_task::runtime(); }).remote().get(), &rt);
  auto nested = rt.task([] {
    Runtime& here = this_task::runtime();
    return here.task([] { return 7; }).remote().get() + 1;
  });
  EXPECT_EQ(nested.remote().get(), 8);
  try {
    (void)this_task::runtime();
    FAIL() << "this_task::runtime() answered outside a task";
  } catch (const Error& error) {
    EXPECT_THAT(error.what(), HasSubstr("outside a task"));
  }
}

TEST(Task, SleepingSuspendsOnlyTheFiber) {
  Runtime rt({.num_cpus = 2, .num_workers = 1});
  boost::fibers::promise<void> signal;
  auto future = signal.get_future().share();
  auto waiter = rt.task([future] {
    this_task::sleep_for(1ms);
    future.wait();  // a fiber primitive: the one worker keeps running other tasks
    return 1;
  });
  auto first = waiter.remote();
  auto second = rt.task([&signal] {
                    signal.set_value();
                    return 2;
                  }).remote();
  EXPECT_EQ(second.get(60s), 2);
  EXPECT_EQ(first.get(60s), 1);
}

// A worker that polls for the next task between calls from main must still let a sleeping
// task of its own wake when its time comes.
TEST(Task, ASleepingTaskWakesWhileMainKeepsItsWorkerBusy) {
  Runtime rt({.num_workers = 1});
  auto sleeper = rt.task([] {
                     this_task::sleep_for(1ms);
                     return 1;
                   }).remote();
  auto empty = rt.task([] {});
  long round_trips = 0;
  while (!sleeper.done()) {
    empty.remote().get();
    ASSERT_LT(++round_trips, 50'000'000) << "the sleeping task never woke";
  }
  EXPECT_EQ(sleeper.get(), 1);
}

TEST(Task, HundredThousandTasks) {
  Runtime rt;
  auto square = rt.task([](long x) { return x * x; });
  auto sum = rt.task([](long a, long b) { return a + b; }).options({.num_cpus = 0.5});
  std::vector<ObjectRef<long>> refs;
  refs.reserve(100'000);
  for (long i = 0; i < 50'000; ++i) refs.push_back(square.remote(i % 100));
  for (std::size_t i = 0; i + 1 < 50'000; i += 2) refs.push_back(sum.remote(refs[i], refs[i + 1]));
  long total = 0;
  for (std::size_t i = 50'000; i < refs.size(); ++i) total += refs[i].get();
  long expected = 0;
  for (long i = 0; i < 50'000; ++i) expected += (i % 100) * (i % 100);
  EXPECT_EQ(total, expected);
  EXPECT_EQ(rt.status().finished, refs.size());
}

TEST(Runtime, ShutdownCancelsQueuedTasksAndFinishesRunningOnes) {
  std::vector<ObjectRef<int>> refs;
  ObjectRef<int> runner;
  boost::fibers::promise<void> started;
  auto started_future = started.get_future();
  {
    Runtime rt({.num_cpus = 1, .num_workers = 1});
    runner = rt.task([&started] {
                 started.set_value();
                 while (!this_task::cancelled()) this_task::sleep_for(100us);
                 return 1;
               }).remote();
    started_future.wait();
    for (int i = 0; i < 100; ++i) refs.push_back(rt.task([] { return 2; }).remote());
  }
  EXPECT_EQ(runner.get(), 1);
  for (const auto& ref : refs) {
    ASSERT_TRUE(ref.done());
    EXPECT_THROW((void)ref.get(), CancelledError);
  }
}

// A runtime destroyed on another thread than the one that made it, while tasks are queued
// and others are blocked in get on a task that runs until it is cancelled: the stop cancels
// it, the blocked ones finish, the queued ones fail with CancelledError, and nothing hangs.
TEST(Runtime, DestroyedFromAnotherThreadWithWorkQueuedAndBlocked) {
  auto rt = std::make_unique<Runtime>(RuntimeOptions{.num_cpus = 2, .num_workers = 2});
  boost::fibers::promise<void> started;
  auto started_future = started.get_future();
  auto endless = rt->task([&started] {
                     started.set_value();
                     while (!this_task::cancelled()) this_task::sleep_for(100us);
                     return 0;
                   }).remote();
  started_future.wait();
  std::vector<ObjectRef<int>> blocked, queued;
  for (int i = 0; i < 4; ++i) {
    blocked.push_back(
        rt->task([endless] { return endless.get() + 1; }).options({.num_cpus = 0}).remote());
  }
  for (int i = 0; i < 50; ++i) {
    queued.push_back(rt->task([] { return 2; }).options({.num_cpus = 2}).remote());
  }
  std::thread destroyer([&rt] { rt.reset(); });
  destroyer.join();
  EXPECT_EQ(endless.get(), 0);
  for (const auto& ref : blocked) {
    ASSERT_TRUE(ref.done());
    try {
      EXPECT_EQ(ref.get(), 1);
    } catch (const CancelledError&) {  // it had not started when the runtime stopped
    }
  }
  for (const auto& ref : queued) {
    ASSERT_TRUE(ref.done());
    EXPECT_THROW((void)ref.get(), CancelledError);  // the endless task held a CPU throughout
  }
}

// Running out of memory in a task fails that task, with the bad_alloc nested; the runtime
// and later tasks go on.
TEST(Task, BadAllocFailsThatTaskOnly) {
  Runtime rt({.num_cpus = 2});
  auto failing = rt.task([]() -> int { throw std::bad_alloc(); }).remote();
  try {
    (void)failing.get();
    FAIL() << "the task's bad_alloc was lost";
  } catch (const spindle::TaskError& error) {
    EXPECT_THROW(std::rethrow_if_nested(error), std::bad_alloc);
  }
  EXPECT_EQ(rt.task([] { return 1; }).remote().get(), 1);
}

TEST(Runtime, StatusCountsTasksAndPendingDemands) {
  Runtime rt({.num_cpus = 1, .num_workers = 1});
  Gate gate;
  auto blocker = rt.task([&gate] { gate.wait(); }).remote();
  std::vector<ObjectRef<void>> queued;
  for (int i = 0; i < 3; ++i) queued.push_back(rt.task([] {}).remote());
  RuntimeStatus status = rt.status();
  EXPECT_EQ(status.running + status.waiting_for_resources, 4u);
  EXPECT_EQ(status.total.cpu(), Quantity::whole(1));
  EXPECT_THAT(status.to_string(), HasSubstr("{cpu: 1}: "));
  gate.open();
  for (auto& ref : queued) ref.get();
  blocker.get();
  status = rt.status();
  EXPECT_EQ(status.finished, 4u);
  EXPECT_EQ(status.running + status.waiting_for_resources, 0u);
  EXPECT_THAT(status.to_string(), HasSubstr("finished: 4, failed: 0, cancelled: 0"));
}

// Default tasks queue in lock-free lanes, counted rather than listed: the count stays exact
// through cancels and through tasks run inline by a get.
TEST(Runtime, StatusCountsQueuedDefaultTasksThroughCancelsAndInlineRuns) {
  Runtime rt({.num_cpus = 1, .num_workers = 1});
  Gate started, release;
  auto blocker = rt.task([&] {
                     started.open();
                     release.wait();
                   }).remote();
  started.wait();
  std::vector<ObjectRef<int>> queued;
  for (int i = 0; i < 5; ++i) queued.push_back(rt.task([i] { return i; }).remote());
  EXPECT_EQ(rt.status().waiting_for_resources, 5u);
  rt.cancel(queued[1]);
  rt.cancel(queued[3]);
  EXPECT_EQ(rt.status().waiting_for_resources, 3u);
  release.open();
  blocker.get();
  EXPECT_EQ(queued[4].get(), 4);
  auto parent = rt.task([&rt] {
    std::vector<ObjectRef<int>> children;
    for (int i = 0; i < 10; ++i) children.push_back(rt.task([i] { return i; }).remote());
    int sum = 0;
    for (const auto& child : children) sum += child.get();  // inline, mostly
    return sum;
  });
  EXPECT_EQ(parent.remote().get(), 45);
  RuntimeStatus status = rt.status();
  EXPECT_EQ(status.waiting_for_resources, 0u);
  EXPECT_EQ(status.cancelled, 2u);
  EXPECT_EQ(status.finished, 1u + 3u + 1u + 10u);
}

TEST(Task, ADeadlockReportCountsTheQueuedDefaultTasks) {
  Runtime rt({.num_cpus = 1, .num_workers = 1});
  struct Holder {
    Runtime* rt;
    int run_one() const { return rt->task([] { return 1; }).remote().get(); }
  };
  // The actor holds half the CPU while its call waits for a task that needs a whole one.
  auto holder = rt.actor<Holder>().options({.num_cpus = 0.5}).remote(&rt);
  try {
    (void)holder.call(&Holder::run_one).get(30s);
    FAIL() << "no error";
  } catch (const TaskError& error) {
    EXPECT_THAT(error.what(), HasSubstr("deadlock"));
    EXPECT_THAT(error.what(), HasSubstr("Waiting for resources: 1 task needs {cpu: 1}"));
  }
}

TEST(Runtime, TimelineIsOffUnlessAskedFor) {
  Runtime rt;
  rt.task([] {}).remote().get();
  try {
    rt.timeline((std::filesystem::temp_directory_path() / "spindle_no_timeline.json").string());
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_THAT(error.what(), HasSubstr("recording is off"));
    EXPECT_THAT(error.what(), HasSubstr("SPINDLE_TIMELINE=1"));
  }
  setenv("SPINDLE_TIMELINE", "1", 1);
  Runtime recording;
  unsetenv("SPINDLE_TIMELINE");
  recording.task([] {}).options({.name = "seen"}).remote().get();
  auto path = std::filesystem::temp_directory_path() / "spindle_env_timeline.json";
  recording.timeline(path.string());
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  std::filesystem::remove(path);
  EXPECT_THAT(text.str(), HasSubstr("\"name\":\"seen\""));
}

TEST(Runtime, TimelineIsChromeTraceJson) {
  Runtime rt({.num_cpus = 2, .num_gpus = 1, .timeline = true});
  auto work = rt.task([](int x) { return x; }).options({.name = "work"});
  auto on_gpu = rt.task([] {}).options({.num_gpus = 0.5, .name = "gpu work"});
  std::vector<ObjectRef<int>> refs;
  for (int i = 0; i < 20; ++i) refs.push_back(work.remote(i));
  (void)get(refs);
  on_gpu.remote().get();
  auto path = std::filesystem::temp_directory_path() / "spindle_timeline_test.json";
  rt.timeline(path.string());
  nlohmann::json trace = nlohmann::json::parse(std::ifstream(path));
  std::size_t work_spans = 0;
  bool gpu_span = false;
  for (const auto& event : trace["traceEvents"]) {
    if (event["ph"] != "X") continue;
    EXPECT_GE(event["dur"].get<double>(), 0.0);
    work_spans += event["name"] == "work";
    if (event["name"] == "gpu work") {
      gpu_span = true;
      EXPECT_EQ(event["args"]["device"], "cpu,gpu:0");
      EXPECT_EQ(event["args"]["resources"], "{cpu: 1, gpu: 0.5}");
    }
  }
  EXPECT_EQ(work_spans, 20u);
  EXPECT_TRUE(gpu_span);
  std::filesystem::remove(path);
  EXPECT_THROW(rt.timeline("/nonexistent/dir/trace.json"), Error);
}

}  // namespace
}  // namespace spindle
