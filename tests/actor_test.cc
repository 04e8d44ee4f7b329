// Actors: ordered calls, concurrency, lifecycle, crashes and restarts, names, shutdown.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "spindle/spindle.hpp"
#include "support/gate.hpp"

namespace spindle {
namespace {

using namespace std::chrono_literals;
using testing::Gate;
using ::testing::HasSubstr;

// The Ray crash course's Counter.
struct Counter {
  int value = 0;
  int increment() { return ++value; }
  int add(int k) { return value += k; }
  [[nodiscard]] int read() const { return value; }
};

// Counts constructions and destructions of the instances that share it.
struct Probe {
  std::atomic<int> built{0};
  std::atomic<int> destroyed{0};
  std::atomic<bool> destroyed_in_actor{false};
  Gate gone;  // opened by the first destructor
};

struct Probed {
  explicit Probed(std::shared_ptr<Probe> probe) : probe(std::move(probe)) { ++this->probe->built; }
  ~Probed() {
    probe->destroyed_in_actor = this_actor::in_actor() && this_task::in_task();
    if (++probe->destroyed == 1) probe->gone.open();
  }
  Probed(const Probed&) = delete;
  Probed& operator=(const Probed&) = delete;
  int value = 0;
  int increment() { return ++value; }
  int wait_for(const std::shared_ptr<Gate>& started, const std::shared_ptr<Gate>& release) {
    started->open();
    release->wait();
    return this_task::cancelled() ? -1 : 1;
  }
  std::shared_ptr<Probe> probe;
};

// An actor whose first call runs and waits at a gate, so that the calls made after it queue.
struct BusyActor {
  BusyActor(Runtime& rt, const ActorOptions& options)
      : actor(rt.actor<Probed>().options(options).remote(probe)),
        running(actor.call(&Probed::wait_for, started, release)) {
    started->wait();
  }
  std::shared_ptr<Probe> probe = std::make_shared<Probe>();
  std::shared_ptr<Gate> started = std::make_shared<Gate>();
  std::shared_ptr<Gate> release = std::make_shared<Gate>();
  ActorHandle<Probed> actor;
  ObjectRef<int> running;
};

template <typename Error, typename T>
std::string error_of(const ObjectRef<T>& ref) {
  try {
    (void)ref.get(30s);
  } catch (const Error& error) {
    return error.what();
  }
  ADD_FAILURE() << "no " << typeid(Error).name();
  return {};
}

TEST(Actor, CounterSeedOneActorCallsRunInOrder) {
  Runtime rt;
  ActorHandle<Counter> counter = rt.actor<Counter>().remote();
  std::vector<ObjectRef<int>> refs;
  for (int i = 0; i < 5; ++i) refs.push_back(counter.call(&Counter::increment));
  EXPECT_EQ(get(refs), (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_EQ(counter.call(&Counter::read).get(), 5);
}

TEST(Actor, CounterSeedTenActorsKeepTheirOwnState) {
  Runtime rt;
  std::vector<ActorHandle<Counter>> counters;
  for (int i = 0; i < 10; ++i) counters.push_back(rt.actor<Counter>().remote());
  std::vector<ObjectRef<int>> refs;
  for (const auto& counter : counters) refs.push_back(counter.call(&Counter::increment));
  EXPECT_EQ(get(refs), std::vector<int>(10, 1));
  refs.clear();
  for (int i = 0; i < 5; ++i) refs.push_back(counters[0].call(&Counter::increment));
  EXPECT_EQ(get(refs), (std::vector<int>{2, 3, 4, 5, 6}));
  EXPECT_EQ(counters[1].call(&Counter::read).get(), 1);
}

TEST(Actor, CallsTakeLambdasRefsAndConstMethods) {
  Runtime rt;
  auto counter = rt.actor<Counter>().remote();
  EXPECT_EQ(counter.call([](Counter& c, int k) { return c.value += k; }, 5).get(), 5);
  auto three = rt.task([] { return 3; }).remote();
  EXPECT_EQ(counter.call(&Counter::add, three).get(), 8);
  EXPECT_EQ(counter.call(&Counter::read).get(), 8);
  ObjectRef<void> nothing = counter.call([](Counter& c) { c.value = 0; });
  nothing.get();
  EXPECT_EQ(counter.call(&Counter::read).get(), 0);
}

struct Log {
  std::vector<std::pair<int, int>> entries;
  void record(int caller, int seq) { entries.emplace_back(caller, seq); }
  [[nodiscard]] std::vector<std::pair<int, int>> all() const { return entries; }
};

void expect_in_order_per_caller(const std::vector<std::pair<int, int>>& entries, int callers,
                                int calls) {
  ASSERT_EQ(entries.size(), static_cast<std::size_t>(callers * calls));
  std::vector<int> next(callers, 0);
  for (const auto& [caller, seq] : entries) {
    ASSERT_EQ(seq, next[caller]) << "caller " << caller;
    ++next[caller];
  }
}

TEST(Actor, CallsFromManyThreadsAndTasksKeepEachCallersOrder) {
  Runtime rt;
  auto log = rt.actor<Log>().remote();
  constexpr int kThreads = 4, kTasks = 4, kCalls = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<ObjectRef<void>> refs;
      for (int i = 0; i < kCalls; ++i) refs.push_back(log.call(&Log::record, t, i));
      for (const auto& ref : refs) ref.get();
    });
  }
  auto caller = rt.task([](ActorHandle<Log> log, int id) {
    std::vector<ObjectRef<void>> refs;
    for (int i = 0; i < kCalls; ++i) refs.push_back(log.call(&Log::record, id, i));
    for (const auto& ref : refs) ref.get();
  });
  std::vector<ObjectRef<void>> tasks;
  for (int t = 0; t < kTasks; ++t) tasks.push_back(caller.remote(log, kThreads + t));
  for (auto& thread : threads) thread.join();
  for (const auto& task : tasks) task.get();
  expect_in_order_per_caller(log.call(&Log::all).get(), kThreads + kTasks, kCalls);
}

TEST(Actor, ACallWaitingForItsArgumentHoldsBackLaterCalls) {
  Runtime rt;
  auto log = rt.actor<Log>().remote();
  auto gate = std::make_shared<Gate>();
  auto late = rt.task([gate] {
    gate->wait();
    return 1;
  });
  ObjectRef<int> seq = late.remote();
  auto first = log.call(&Log::record, 0, seq);
  auto second = log.call(&Log::record, 0, 2);
  gate->open();
  second.get();
  EXPECT_TRUE(first.done());
  EXPECT_EQ(log.call(&Log::all).get(), (std::vector<std::pair<int, int>>{{0, 1}, {0, 2}}));
}

TEST(Actor, AFailedArgumentFailsThatCallOnly) {
  Runtime rt;
  auto counter = rt.actor<Counter>().remote();
  auto broken = rt.task([]() -> int { throw std::runtime_error("no input"); }).remote();
  auto failed = counter.call(&Counter::add, broken);
  auto next = counter.call(&Counter::add, 2);
  EXPECT_THAT(error_of<TaskError>(failed), HasSubstr("because its argument 0 failed"));
  EXPECT_EQ(next.get(), 2);
}

struct Overlap {
  std::atomic<int> running{0};
  std::atomic<int> started{0};
  std::atomic<int> peak{0};
  /// Returns how many calls started so far, this one included.
  int enter() {
    int now = ++running;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    return ++started;
  }
};

struct Concurrent {
  std::shared_ptr<Overlap> overlap;
  std::shared_ptr<Gate> all_in, release;
  int limit;
  int hold() {
    if (overlap->enter() == limit) all_in->open();  // the others still hold
    release->wait();
    --overlap->running;
    return 1;
  }
  int signal_then_hold(const std::shared_ptr<Gate>& in) {
    in->open();
    return hold();
  }
  [[nodiscard]] int read_limit() const { return limit; }
  int yield_once() {
    overlap->enter();
    this_task::yield();
    this_task::sleep_for(100us);
    --overlap->running;
    return 1;
  }
};

TEST(Actor, MaxConcurrencyBoundsTheCallsRunningAtOnce) {
  Runtime rt;
  auto overlap = std::make_shared<Overlap>();
  auto all_in = std::make_shared<Gate>(), release = std::make_shared<Gate>();
  auto actor = rt.actor<Concurrent>()
                   .options({.max_concurrency = 4})
                   .remote(Concurrent{overlap, all_in, release, 4});
  std::vector<ObjectRef<int>> refs;
  for (int i = 0; i < 8; ++i) refs.push_back(actor.call(&Concurrent::hold));
  all_in->wait();                         // four calls hold at once
  EXPECT_EQ(overlap->started.load(), 4);  // the fifth waits for one of them
  release->open();
  EXPECT_EQ(get(refs), std::vector<int>(8, 1));
  EXPECT_EQ(overlap->peak.load(), 4);
}

// A call made while every runner is inside a call starts beside them when max_concurrency
// allows (a call without a lock must not wait for a busy runner).
TEST(Actor, ACallMadeWhileItsRunnerIsBusyStartsBesideIt) {
  Runtime rt;
  auto overlap = std::make_shared<Overlap>();
  auto started = std::make_shared<Gate>(), release = std::make_shared<Gate>();
  auto actor = rt.actor<Concurrent>()
                   .options({.max_concurrency = 2})
                   .remote(Concurrent{overlap, std::make_shared<Gate>(), release, 3});
  ObjectRef<int> first = actor.call(&Concurrent::signal_then_hold, started);
  started->wait();
  int second = 0;  // made while the first still holds
  try {
    second = actor.call(&Concurrent::read_limit).get(30s);
  } catch (const GetTimeoutError&) {
  }
  release->open();  // in any case: the runtime waits for the first call as it ends
  EXPECT_EQ(second, 3) << "the call waited for the busy runner";
  EXPECT_EQ(first.get(), 1);
}

TEST(Actor, DefaultConcurrencyRunsOneCallAtATimeEvenWhenCallsSuspend) {
  Runtime rt;
  auto overlap = std::make_shared<Overlap>();
  auto actor = rt.actor<Concurrent>().remote(
      Concurrent{overlap, std::make_shared<Gate>(), std::make_shared<Gate>(), 1});
  std::vector<ObjectRef<int>> refs;
  for (int i = 0; i < 50; ++i) refs.push_back(actor.call(&Concurrent::yield_once));
  EXPECT_EQ(get(refs), std::vector<int>(50, 1));
  EXPECT_EQ(overlap->peak.load(), 1);
}

TEST(Actor, MethodsSubmitTasksAndCallActorsOnOneWorker) {
  // One worker thread and one CPU: only fibers can make this progress.
  Runtime rt({.num_cpus = 1, .num_workers = 1});
  auto counter = rt.actor<Counter>().remote();
  struct Driver {
    ActorHandle<Counter> counter;
    int run(Runtime* rt) {
      int square = rt->task([](int x) { return x * x; }).remote(7).get();
      return counter.call(&Counter::add, square).get() + counter.call(&Counter::read).get();
    }
  };
  auto driver = rt.actor<Driver>().remote(Driver{counter});
  EXPECT_EQ(driver.call(&Driver::run, &rt).get(), 98);
}

TEST(Actor, HandlesPassIntoTasksAndOtherActors) {
  Runtime rt;
  auto counter = rt.actor<Counter>().remote();
  auto bump =
      rt.task([](const ActorHandle<Counter>& c) { return c.call(&Counter::increment).get(); });
  std::vector<ObjectRef<int>> refs;
  for (int i = 0; i < 10; ++i) refs.push_back(bump.remote(counter));
  auto results = get(refs);
  std::sort(results.begin(), results.end());
  std::vector<int> expected(10);
  std::iota(expected.begin(), expected.end(), 1);
  EXPECT_EQ(results, expected);

  struct Trainer {
    int steps(const ActorHandle<Counter>& ps, int n) {
      int last = 0;
      for (int i = 0; i < n; ++i) last = ps.call(&Counter::increment).get();
      return last;
    }
  };
  auto trainer = rt.actor<Trainer>().remote();
  EXPECT_EQ(trainer.call(&Trainer::steps, counter, 5).get(), 15);
}

TEST(Actor, AnExceptionFailsTheCallAndKeepsTheState) {
  Runtime rt;
  auto counter = rt.actor<Counter>().options({.name = "kept"}).remote();
  EXPECT_EQ(counter.call(&Counter::add, 5).get(), 5);
  auto bad = counter.call([](Counter&) -> int { throw std::out_of_range("slot 9"); });
  try {
    (void)bad.get();
    FAIL() << "no error";
  } catch (const TaskError& error) {
    EXPECT_THAT(error.what(), HasSubstr("of actor 'kept' failed: slot 9"));
    EXPECT_THROW(std::rethrow_if_nested(error), std::out_of_range);
  }
  EXPECT_EQ(counter.call(&Counter::add, 1).get(), 6);
}

struct Fragile {
  Fragile(std::shared_ptr<Probe> probe, int fail_first) : probe(std::move(probe)) {
    if (++this->probe->built <= fail_first) throw std::invalid_argument("bad config");
  }
  std::shared_ptr<Probe> probe;
  int value = 0;
  int increment() { return ++value; }
  int crash() { throw ActorCrash("simulated failure"); }
  int fail_plainly() { throw std::runtime_error("plain failure"); }
  [[nodiscard]] bool restarted() const { return this_actor::was_restarted(); }
  [[nodiscard]] int restarts() const { return this_actor::restarts(); }
};

TEST(Actor, AThrowingConstructorFailsCreationAndEveryCall) {
  Runtime rt;
  auto probe = std::make_shared<Probe>();
  auto actor = rt.actor<Fragile>().options({.name = "fragile"}).remote(probe, 1);
  auto early = actor.call(&Fragile::increment);  // made before the constructor ran
  try {
    actor.ready().get();
    FAIL() << "no error";
  } catch (const TaskError& error) {
    EXPECT_THROW(std::rethrow_if_nested(error), std::invalid_argument);
  }
  for (const auto& ref : {early, actor.call(&Fragile::increment)}) {
    try {
      (void)ref.get();
      FAIL() << "no error";
    } catch (const ActorDiedError& error) {
      EXPECT_THAT(error.what(), HasSubstr("actor 'fragile'"));
      EXPECT_THAT(error.what(), HasSubstr("failed in its constructor: bad config"));
      EXPECT_THROW(std::rethrow_if_nested(error), std::invalid_argument);
    }
  }
}

TEST(Actor, CrashesRestartFromTheConstructorArgumentsUpToMaxRestarts) {
  Runtime rt;
  auto probe = std::make_shared<Probe>();
  auto actor = rt.actor<Fragile>().options({.max_restarts = 2}).remote(probe, 0);
  EXPECT_EQ(actor.call(&Fragile::increment).get(), 1);
  EXPECT_EQ(actor.call(&Fragile::increment).get(), 2);
  EXPECT_FALSE(actor.call(&Fragile::restarted).get());
  for (int restart = 1; restart <= 2; ++restart) {
    std::string message = error_of<ActorDiedError>(actor.call(&Fragile::crash));
    EXPECT_THAT(message, HasSubstr("max_task_retries = 0 allows no further attempt"));
    EXPECT_THAT(message, HasSubstr("simulated failure"));
    EXPECT_EQ(actor.call(&Fragile::increment).get(), 1) << "a fresh instance";
    EXPECT_EQ(actor.call(&Fragile::restarts).get(), restart);
  }
  EXPECT_EQ(probe->built.load(), 3);
  auto last = actor.call(&Fragile::crash);
  try {
    (void)last.get();
    FAIL() << "no error";
  } catch (const ActorDiedError& error) {
    EXPECT_THAT(error.what(), HasSubstr("crashed with no restarts left (max_restarts = 2)"));
    EXPECT_THROW(std::rethrow_if_nested(error), ActorCrash);
  }
  // Every later call gets the error the actor died of.
  EXPECT_THAT(error_of<ActorDiedError>(actor.call(&Fragile::increment)),
              HasSubstr("crashed with no restarts left"));
  EXPECT_EQ(probe->built.load(), 3);
}

TEST(Actor, MaxTaskRetriesRunsTheInterruptedCallOnTheNewInstance) {
  Runtime rt;
  auto crashes_left = std::make_shared<std::atomic<int>>(2);
  struct Flaky {
    std::shared_ptr<std::atomic<int>> crashes_left;
    int attempt() {
      if (crashes_left->fetch_sub(1) > 0) throw ActorCrash("flaky");
      return this_actor::restarts();
    }
  };
  auto actor = rt.actor<Flaky>()
                   .options({.max_restarts = -1, .max_task_retries = 2})
                   .remote(Flaky{crashes_left});
  EXPECT_EQ(actor.call(&Flaky::attempt).get(), 2);  // ran a third time, after two restarts

  crashes_left->store(3);
  EXPECT_THAT(error_of<ActorDiedError>(actor.call(&Flaky::attempt)),
              HasSubstr("max_task_retries = 2 allows no further attempt"));
  EXPECT_EQ(actor.call(&Flaky::attempt).get(), 5);  // the actor itself lives on
}

TEST(Actor, CrashOnExceptionMakesAnyExceptionACrash) {
  Runtime rt;
  auto probe = std::make_shared<Probe>();
  auto actor =
      rt.actor<Fragile>().options({.max_restarts = 1, .crash_on_exception = true}).remote(probe, 0);
  EXPECT_EQ(actor.call(&Fragile::increment).get(), 1);
  EXPECT_THROW((void)actor.call(&Fragile::fail_plainly).get(), ActorDiedError);
  EXPECT_EQ(actor.call(&Fragile::increment).get(), 1);
  EXPECT_TRUE(actor.call(&Fragile::restarted).get());
}

TEST(Actor, AConstructorFailingOnRestartKillsTheActor) {
  Runtime rt;
  struct Once {
    explicit Once(std::shared_ptr<std::atomic<int>> built) {
      if (++*built > 1) throw std::runtime_error("disk gone");
    }
    int crash() { throw ActorCrash("boom"); }
  };
  auto actor =
      rt.actor<Once>().options({.max_restarts = 3}).remote(std::make_shared<std::atomic<int>>(0));
  EXPECT_THROW((void)actor.call(&Once::crash).get(), ActorDiedError);
  std::string message = error_of<ActorDiedError>(actor.call(&Once::crash));
  EXPECT_THAT(message, HasSubstr("failed in its constructor on restart 1: disk gone"));
}

// Resources the actor held are free again once this task can run.
void expect_resources_returned(Runtime& rt, double num_cpus) {
  auto probe = rt.task([] { return 1; }).options({.num_cpus = num_cpus}).remote();
  EXPECT_EQ(probe.get(30s), 1);
}

// Running out of memory while an actor is built fails its creation and its calls, with the
// bad_alloc nested; what it held returns to the pool and the runtime goes on. Out of memory in
// a method fails that call only.
TEST(Actor, BadAllocInAConstructorFailsThatActorOnly) {
  Runtime rt({.num_cpus = 1});
  struct Hungry {
    explicit Hungry(bool starve) {
      if (starve) throw std::bad_alloc();
    }
    int grab(bool starve) {
      if (starve) throw std::bad_alloc();
      return ++calls;
    }
    int calls = 0;
  };
  auto starved = rt.actor<Hungry>().options({.num_cpus = 1, .name = "starved"}).remote(true);
  auto early = starved.call(&Hungry::grab, false);
  try {
    starved.ready().get();
    FAIL() << "the constructor's bad_alloc was lost";
  } catch (const TaskError& error) {
    EXPECT_THROW(std::rethrow_if_nested(error), std::bad_alloc);
  }
  try {
    (void)early.get();
    FAIL() << "a call on an actor that was never built succeeded";
  } catch (const ActorDiedError& error) {
    EXPECT_THAT(error.what(), HasSubstr("actor 'starved'"));
    EXPECT_THAT(error.what(), HasSubstr("failed in its constructor"));
    EXPECT_THROW(std::rethrow_if_nested(error), std::bad_alloc);
  }
  expect_resources_returned(rt, 1);

  auto fed = rt.actor<Hungry>().options({.num_cpus = 1}).remote(false);
  EXPECT_EQ(fed.call(&Hungry::grab, false).get(), 1);
  try {
    (void)fed.call(&Hungry::grab, true).get();
    FAIL() << "the method's bad_alloc was lost";
  } catch (const TaskError& error) {
    EXPECT_THROW(std::rethrow_if_nested(error), std::bad_alloc);
  }
  EXPECT_EQ(fed.call(&Hungry::grab, false).get(), 2);  // the same instance goes on
}

TEST(Actor, KillFailsUnstartedCallsFlagsRunningOnesAndReturnsResources) {
  Runtime rt({.num_cpus = 1});
  BusyActor busy(rt, {.num_cpus = 1});
  auto& [probe, started, release, actor, running] = busy;
  std::vector<ObjectRef<int>> queued;
  for (int i = 0; i < 3; ++i) queued.push_back(actor.call(&Probed::increment));
  EXPECT_EQ(rt.status().available.cpu(), Quantity());

  rt.kill(actor);
  for (const auto& ref : queued) {
    EXPECT_TRUE(ref.failed());  // at once
    EXPECT_THAT(error_of<ActorDiedError>(ref), HasSubstr("was killed before this call ran"));
  }
  EXPECT_THAT(error_of<ActorDiedError>(actor.call(&Probed::increment)), HasSubstr("was killed"));
  release->open();
  EXPECT_THAT(error_of<ActorDiedError>(running), HasSubstr("was killed while this call ran"));
  probe->gone.wait();
  EXPECT_TRUE(probe->destroyed_in_actor.load());
  expect_resources_returned(rt, 1);
  EXPECT_EQ(probe->destroyed.load(), 1);
  rt.kill(actor);  // a dead actor: nothing happens
}

// Calls from several threads race a kill for good: each ends once, and for each caller the
// calls that ran come before the calls that failed (the kill takes what is queued, in order,
// and refuses what comes after).
TEST(Actor, CallsRacingAKillEachEndAndFailuresFollowSuccessesPerCaller) {
  Runtime rt;
  auto actor = rt.actor<Counter>().remote();
  constexpr int kThreads = 3, kCalls = 3000;
  std::vector<std::vector<ObjectRef<int>>> refs(kThreads);
  std::latch calling(1), killed(1);  // between plain threads: not fiber gates
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        refs[t].push_back(actor.call(&Counter::increment));
        if (t == 0 && i == kCalls / 3) {  // caller 0 goes on calling once the kill is made
          calling.count_down();
          killed.wait();
        }
      }
    });
  }
  calling.wait();
  rt.kill(actor, {.no_restart = true});
  killed.count_down();
  for (auto& thread : threads) thread.join();
  int ran = 0;
  for (int t = 0; t < kThreads; ++t) {
    bool failed = false;
    for (const auto& ref : refs[t]) {
      try {
        (void)ref.get(30s);
        EXPECT_FALSE(failed) << "caller " << t << ": a call ran after an earlier one failed";
        ++ran;
      } catch (const ActorDiedError&) {
        failed = true;
      }
    }
    if (t == 0) EXPECT_TRUE(failed) << "caller 0 made calls after the kill";
  }
  EXPECT_LT(ran, kThreads * kCalls);
  expect_resources_returned(rt, 1);
}

TEST(Actor, KillWithRestartBuildsTheActorAgain) {
  Runtime rt;
  auto probe = std::make_shared<Probe>();
  auto actor = rt.actor<Fragile>().options({.max_restarts = 1}).remote(probe, 0);
  EXPECT_EQ(actor.call(&Fragile::increment).get(), 1);
  rt.kill(actor, {.no_restart = false});
  EXPECT_EQ(actor.call(&Fragile::increment).get(), 1);
  EXPECT_TRUE(actor.call(&Fragile::restarted).get());
  rt.kill(actor, {.no_restart = false});  // no restarts left: it dies
  EXPECT_THROW((void)actor.call(&Fragile::increment).get(), ActorDiedError);
  EXPECT_EQ(probe->built.load(), 2);
}

// A kill with no_restart = false counts as a crash: calls not started wait for the rebuilt
// instance, and the running call runs again on it within max_task_retries, else fails.
TEST(Actor, AKillWithRestartKeepsQueuedCallsAndRetriesTheRunningOne) {
  Runtime rt;
  struct Resumable {
    explicit Resumable(const std::shared_ptr<Probe>& probe) { ++probe->built; }
    int hold(const std::shared_ptr<Gate>& started, const std::shared_ptr<Gate>& release,
             const std::shared_ptr<std::atomic<int>>& attempts) {
      if (++*attempts == 1) {
        started->open();
        release->wait();
      }
      return this_task::cancelled() ? -1 : 100;
    }
    int increment() { return ++value; }
    int value = 0;
  };
  for (int retries : {1, 0}) {
    SCOPED_TRACE("max_task_retries = " + std::to_string(retries));
    auto probe = std::make_shared<Probe>();
    auto started = std::make_shared<Gate>();
    auto release = std::make_shared<Gate>();
    auto attempts = std::make_shared<std::atomic<int>>(0);
    auto actor = rt.actor<Resumable>()
                     .options({.max_restarts = 1, .max_task_retries = retries})
                     .remote(probe);
    auto running = actor.call(&Resumable::hold, started, release, attempts);
    started->wait();
    std::vector<ObjectRef<int>> queued;
    for (int i = 0; i < 3; ++i) queued.push_back(actor.call(&Resumable::increment));
    rt.kill(actor, {.no_restart = false});
    for (const auto& ref : queued) EXPECT_FALSE(ref.failed());
    release->open();
    if (retries == 1) {
      EXPECT_EQ(running.get(30s), 100);  // the second attempt, not cancelled
      EXPECT_EQ(attempts->load(), 2);
    } else {
      EXPECT_THAT(error_of<ActorDiedError>(running), HasSubstr("was killed while this call ran"));
      EXPECT_EQ(attempts->load(), 1);
    }
    for (int i = 0; i < 3; ++i) EXPECT_EQ(queued[i].get(30s), i + 1);  // on the new instance
    EXPECT_EQ(probe->built.load(), 2);
  }
}

// Calls that a kill with restart interrupts go back to the front of the queue, in call order:
// the rebuilt instance starts them before the calls that were queued behind them.
TEST(Actor, InterruptedCallsRunAgainFirstInCallOrder) {
  Runtime rt;
  struct Log {
    std::mutex mutex;
    std::vector<int> starts;  // labels, in the order the calls started
    std::latch both_running{2};
    Gate release;
    std::atomic<int> rerun{0};
    Gate both_rerun;  // so that neither rerun ends, freeing a slot, before both have started
  };
  struct Logged {
    int call(int label, const std::shared_ptr<Log>& log) {
      bool first = false;
      {
        std::lock_guard lock(log->mutex);
        first = std::ranges::count(log->starts, label) == 0;
        log->starts.push_back(label);
      }
      if (label <= 2 && first) {
        log->both_running.count_down();
        log->release.wait();
      } else if (label <= 2) {
        if (++log->rerun == 2) log->both_rerun.open();
        log->both_rerun.wait();
      }
      return label;
    }
  };
  auto log = std::make_shared<Log>();
  auto actor = rt.actor<Logged>()
                   .options({.max_concurrency = 2, .max_restarts = 1, .max_task_retries = 1})
                   .remote();
  std::vector<ObjectRef<int>> refs;
  for (int label = 1; label <= 2; ++label) refs.push_back(actor.call(&Logged::call, label, log));
  log->both_running.wait();
  for (int label = 3; label <= 4; ++label) refs.push_back(actor.call(&Logged::call, label, log));
  rt.kill(actor, {.no_restart = false});
  log->release.open();
  for (int label = 1; label <= 4; ++label) EXPECT_EQ(refs[label - 1].get(30s), label);
  std::lock_guard lock(log->mutex);
  ASSERT_EQ(log->starts.size(), 6U);
  // Two run at once, so each pair may start in either order; the queued two come last.
  using ::testing::UnorderedElementsAre;
  const std::vector<int>& starts = log->starts;
  EXPECT_THAT(std::vector(starts.begin(), starts.begin() + 2), UnorderedElementsAre(1, 2));
  EXPECT_THAT(std::vector(starts.begin() + 2, starts.begin() + 4), UnorderedElementsAre(1, 2));
  EXPECT_THAT(std::vector(starts.begin() + 4, starts.end()), UnorderedElementsAre(3, 4));
}

// A call its caller cancelled is not run again when a kill with restart interrupts it.
TEST(Actor, ACancelledCallIsNotRetriedAfterAKill) {
  Runtime rt;
  struct Waiter {
    int hold(const std::shared_ptr<Gate>& started, const std::shared_ptr<Gate>& release,
             const std::shared_ptr<std::atomic<int>>& attempts) {
      if (++*attempts == 1) {
        started->open();
        release->wait();
      }
      return 1;
    }
  };
  auto started = std::make_shared<Gate>();
  auto release = std::make_shared<Gate>();
  auto attempts = std::make_shared<std::atomic<int>>(0);
  auto actor = rt.actor<Waiter>().options({.max_restarts = 1, .max_task_retries = 1}).remote();
  auto running = actor.call(&Waiter::hold, started, release, attempts);
  started->wait();
  rt.cancel(running);
  rt.kill(actor, {.no_restart = false});
  release->open();
  EXPECT_THAT(error_of<ActorDiedError>(running), HasSubstr("was killed while this call ran"));
  EXPECT_EQ(attempts->load(), 1);
  EXPECT_EQ(actor.call(&Waiter::hold, started, release, attempts).get(30s), 1);  // rebuilt
}

TEST(Actor, DestroyedOnItsFiberWhenTheLastHandleIsGoneAndCallsAreDone) {
  Runtime rt({.num_cpus = 1});
  auto probe = std::make_shared<Probe>();
  std::vector<ObjectRef<int>> refs;
  {
    auto actor = rt.actor<Probed>().options({.num_cpus = 1}).remote(probe);
    for (int i = 0; i < 100; ++i) refs.push_back(actor.call(&Probed::increment));
    auto copy = actor;
  }  // calls are pending: they still run
  EXPECT_EQ(refs.back().get(), 100);
  probe->gone.wait();
  EXPECT_TRUE(probe->destroyed_in_actor.load());
  expect_resources_returned(rt, 1);
}

TEST(Actor, HoldsItsResourcesForItsLife) {
  Runtime rt({.num_cpus = 2, .num_gpus = 1});
  auto actor = rt.actor<Counter>().options({.num_cpus = 1, .num_gpus = 0.25}).remote();
  actor.ready().get();
  RuntimeStatus status = rt.status();
  EXPECT_EQ(status.available.cpu(), Quantity::whole(1));
  EXPECT_EQ(status.available.gpu(), Quantity::from_units(7500));
  EXPECT_EQ(status.actors, 1u);
  auto gpus = actor.call([](Counter&) { return this_task::gpu_ids(); }).get();
  EXPECT_EQ(gpus, std::vector<int>{0});
  auto held = actor.call([](Counter&) { return this_task::resources().to_string(); }).get();
  EXPECT_EQ(held, "{cpu: 1, gpu: 0.25}");
}

TEST(Actor, AnActorWaitsForResourcesBeforeItsConstructorRuns) {
  Runtime rt({.num_cpus = 1});
  auto started = std::make_shared<Gate>(), gate = std::make_shared<Gate>();
  auto hog = rt.task([started, gate] {
                 started->open();
                 gate->wait();
               }).remote();
  started->wait();
  auto actor = rt.actor<Counter>().options({.num_cpus = 1}).remote();
  auto call = actor.call(&Counter::increment);
  const RuntimeStatus status = rt.status();
  EXPECT_EQ(status.waiting_for_resources, 1u) << status.to_string();
  gate->open();
  EXPECT_EQ(call.get(), 1);
  hog.get();
}

TEST(Actor, NamedActorsAreFoundAndUnique) {
  Runtime rt;
  auto ps = rt.actor<Counter>().options({.name = "ps"}).remote();
  EXPECT_EQ(ps.name(), "ps");
  EXPECT_EQ(ps.call(&Counter::add, 3).get(), 3);
  auto found = rt.get_actor<Counter>("ps");
  EXPECT_EQ(found, ps);
  EXPECT_EQ(found.call(&Counter::add, 4).get(), 7);

  try {
    (void)rt.actor<Counter>().options({.name = "ps"}).remote();
    FAIL() << "no error";
  } catch (const InvalidArgumentError& error) {
    EXPECT_THAT(error.what(), HasSubstr("actor name 'ps' is taken by a live actor"));
  }
  auto same = rt.actor<Counter>().options({.name = "ps", .get_if_exists = true}).remote();
  EXPECT_EQ(same.id(), ps.id());
  EXPECT_EQ(same.call(&Counter::read).get(), 7);

  EXPECT_THAT([&] { (void)rt.get_actor<Log>("ps"); },
              ::testing::ThrowsMessage<InvalidArgumentError>(
                  HasSubstr("actor 'ps' is of class spindle::(anonymous namespace)::Counter, not "
                            "spindle::(anonymous namespace)::Log")));
  EXPECT_THAT(
      [&] { (void)rt.get_actor<Counter>("nobody"); },
      ::testing::ThrowsMessage<InvalidArgumentError>(HasSubstr("no live actor is named 'nobody'")));

  rt.kill(ps);  // frees the name at once
  auto next = rt.actor<Counter>().options({.name = "ps"}).remote();
  EXPECT_EQ(rt.get_actor<Counter>("ps").call(&Counter::read).get(), 0);
}

TEST(Actor, ANameIsFreeOnceEveryHandleIsGone) {
  Runtime rt;
  { auto ps = rt.actor<Counter>().options({.name = "ps"}).remote(); }
  EXPECT_THROW((void)rt.get_actor<Counter>("ps"), InvalidArgumentError);
  auto again = rt.actor<Counter>().options({.name = "ps"}).remote();
  EXPECT_EQ(again.call(&Counter::increment).get(), 1);
}

TEST(Actor, MaxPendingCallsRefusesCallsPastTheBound) {
  Runtime rt;
  BusyActor busy(rt, {.max_pending_calls = 2});
  auto& [probe, started, release, actor, running] = busy;
  auto a = actor.call(&Probed::increment);
  auto b = actor.call(&Probed::increment);
  EXPECT_THAT([&busy] { (void)busy.actor.call(&Probed::increment); },
              ::testing::ThrowsMessage<PendingCallsLimitError>(
                  HasSubstr("max_pending_calls = 2 calls already wait; the call was not queued")));
  release->open();
  EXPECT_EQ(running.get(), 1);
  EXPECT_EQ(b.get(), 2);  // the refused call was never queued
  EXPECT_EQ(actor.call(&Probed::increment).get(), 3);
}

TEST(Actor, CancelFailsAQueuedCallAndLaterCallsStillRun) {
  Runtime rt;
  BusyActor busy(rt, {});
  auto& [probe, started, release, actor, running] = busy;
  auto cancelled = actor.call(&Probed::increment);
  auto later = actor.call(&Probed::increment);
  rt.cancel(cancelled);
  EXPECT_THAT(error_of<CancelledError>(cancelled), HasSubstr("cancel() was called before it ran"));
  rt.cancel(running);
  release->open();
  EXPECT_EQ(running.get(), -1);  // it saw this_task::cancelled()
  EXPECT_EQ(later.get(), 1);
}

TEST(Actor, CallsFailedByAKillDropTheirArguments) {
  Runtime rt;
  BusyActor busy(rt, {});
  auto argument = std::make_shared<int>(1);
  std::vector<ObjectRef<int>> queued;
  for (int i = 0; i < 3; ++i) {
    queued.push_back(
        busy.actor.call([](Probed&, const std::shared_ptr<int>& p) { return *p; }, argument));
  }
  EXPECT_EQ(argument.use_count(), 4);
  rt.kill(busy.actor);
  for (const auto& ref : queued) EXPECT_TRUE(ref.failed());
  EXPECT_EQ(argument.use_count(), 1);
  busy.release->open();
}

TEST(Actor, ACancelledCallDropsItsArgumentsThoughItsRefIsKept) {
  Runtime rt;
  BusyActor busy(rt, {});
  auto& [probe, started, release, actor, running] = busy;
  auto argument = std::make_shared<int>(1);
  auto cancelled = actor.call([](Probed&, const std::shared_ptr<int>& p) { return *p; }, argument);
  EXPECT_EQ(argument.use_count(), 2);  // the queued call's copy
  rt.cancel(cancelled);
  EXPECT_EQ(argument.use_count(), 1);
  EXPECT_THAT(error_of<CancelledError>(cancelled), HasSubstr("cancel() was called before it ran"));
  release->open();
  (void)running.get();
}

TEST(Actor, ACallWaitingOnALaterCallOfItsOwnActorIsADeadlock) {
  Runtime rt;
  struct Selfish {
    int value = 1;
    int twice(const ActorHandle<Selfish>& self) {
      return 2 * self.call([](Selfish& s) { return s.value; }).get();
    }
  };
  auto actor = rt.actor<Selfish>().options({.name = "selfish"}).remote();
  try {
    (void)actor.call(&Selfish::twice, actor).get(30s);
    FAIL() << "no error";
  } catch (const TaskError& error) {
    EXPECT_THAT(error.what(), HasSubstr("deadlock"));
    EXPECT_THAT(error.what(), HasSubstr("of actor 'selfish' holding {} waits for call #"));
    EXPECT_THROW(std::rethrow_if_nested(error), DeadlockError);
  }
  // The actor goes on with the call it could not wait for, and then others.
  EXPECT_EQ(actor.call([](Selfish& s) { return s.value + 1; }).get(), 2);
}

TEST(Actor, InvalidOptionsAndInputsAreRejectedWithTheirValue) {
  Runtime rt({.num_cpus = 2, .num_gpus = 1});
  auto expect_error = [&](ActorOptions options, const std::string& message) {
    EXPECT_THAT([&] { (void)rt.actor<Counter>().options(options); },
                ::testing::ThrowsMessage<InvalidArgumentError>(HasSubstr(message)));
  };
  expect_error({.max_concurrency = 0}, "max_concurrency = 0: at least 1 is needed");
  expect_error({.max_restarts = -2}, "max_restarts = -2: must be -1 (no limit) or more");
  expect_error({.max_task_retries = -3}, "max_task_retries = -3");
  expect_error({.max_pending_calls = 0},
               "max_pending_calls = 0: must be -1 (no limit) or at least 1");
  expect_error({.get_if_exists = true}, "get_if_exists = true: the actor needs a name");
  expect_error({.num_gpus = 1.5}, "num_gpus = 1.5: a demand above 1 must be a whole number");
  EXPECT_THAT([&] { (void)rt.actor<Counter>().options({.num_gpus = 2, .name = "big"}).remote(); },
              ::testing::ThrowsMessage<InfeasibleError>(HasSubstr("actor 'big': ")));
  ActorHandle<Counter> empty;
  EXPECT_THROW((void)empty.call(&Counter::increment), InvalidArgumentError);
  EXPECT_THROW(rt.kill(empty), InvalidArgumentError);
  auto actor = rt.actor<Counter>().remote();
  EXPECT_THROW((void)actor.call(&Counter::add, ObjectRef<int>()), InvalidArgumentError);
  EXPECT_EQ(actor.call(&Counter::increment).get(), 1);  // the bad call was not queued
}

TEST(Actor, ShutdownCancelsPendingCallsAndDestroysInstances) {
  auto probe = std::make_shared<Probe>();
  std::vector<ObjectRef<int>> queued;
  ObjectRef<int> running;
  {
    Runtime rt;
    auto actor = rt.actor<Probed>().remote(probe);
    auto idle = rt.actor<Probed>().remote(probe);
    actor.ready().get();
    idle.ready().get();
    struct Spinner {
      std::shared_ptr<Gate> started;
      int until_cancelled() {
        started->open();
        while (!this_task::cancelled()) this_task::sleep_for(1ms);
        return 7;
      }
    };
    auto started = std::make_shared<Gate>();
    auto spinner = rt.actor<Spinner>().remote(Spinner{started});
    running = spinner.call(&Spinner::until_cancelled);
    started->wait();
    for (int i = 0; i < 5; ++i) queued.push_back(spinner.call(&Spinner::until_cancelled));
    for (int i = 0; i < 5; ++i) queued.push_back(actor.call(&Probed::increment));
  }
  EXPECT_EQ(running.get(), 7);  // the running call finished
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_THAT(error_of<CancelledError>(queued[i]), HasSubstr("the runtime shut down"));
  }
  EXPECT_EQ(probe->destroyed.load(), 2);  // both instances, including the idle one
}

TEST(Actor, TenThousandActorsAreCreatedCalledAndDestroyed) {
  auto probe = std::make_shared<Probe>();
  {
    Runtime rt;
    std::vector<ActorHandle<Probed>> actors;
    actors.reserve(10'000);
    for (int i = 0; i < 10'000; ++i) actors.push_back(rt.actor<Probed>().remote(probe));
    std::vector<ObjectRef<int>> refs;
    refs.reserve(actors.size());
    for (const auto& actor : actors) refs.push_back(actor.call(&Probed::increment));
    EXPECT_EQ(get(refs), std::vector<int>(10'000, 1));
    actors.resize(5'000);  // half go now, half at shutdown
  }
  EXPECT_EQ(probe->built.load(), 10'000);
  EXPECT_EQ(probe->destroyed.load(), 10'000);
}

TEST(Actor, ThisActorOutsideAnActorIsEmpty) {
  EXPECT_FALSE(this_actor::in_actor());
  EXPECT_EQ(this_actor::id(), 0u);
  EXPECT_EQ(this_actor::name(), "");
  EXPECT_FALSE(this_actor::was_restarted());
  Runtime rt;
  auto actor = rt.actor<Counter>().options({.name = "me"}).remote();
  auto who = actor.call(
      [](Counter&) { return this_actor::name() + "/" + std::to_string(this_actor::id()); });
  EXPECT_EQ(who.get(), "me/" + std::to_string(actor.id()));
  EXPECT_FALSE(rt.task([] { return this_actor::in_actor(); }).remote().get());
}

// A runner counts as idle before its call's result is out: a caller holding every result
// sees nothing running, each time.
TEST(Actor, StatusShowsNothingRunningOnceTheCallsResultIsIn) {
  Runtime rt;
  auto actor = rt.actor<Counter>().remote();
  int busy = 0;
  for (int i = 0; i < 500; ++i) {
    (void)actor.call(&Counter::increment).get();
    const RuntimeStatus status = rt.status();
    if (status.running != 0 || status.waiting_for_resources != 0) ++busy;
  }
  EXPECT_EQ(busy, 0) << "of 500 looks right after a call's result";
}

TEST(Actor, StatusAndTimelineShowActors) {
  Runtime rt({.timeline = true});
  auto actor = rt.actor<Counter>().options({.name = "shown"}).remote();
  for (int i = 0; i < 3; ++i) (void)actor.call(&Counter::increment).get();
  auto failing = actor.call([](Counter&) -> int { throw std::runtime_error("x"); });
  EXPECT_THROW((void)failing.get(), TaskError);
  EXPECT_THAT(rt.status().to_string(), HasSubstr("Actors: 1 alive; calls finished: 3, failed: 1"));
  auto path = std::filesystem::temp_directory_path() / "spindle_actor_timeline.json";
  rt.timeline(path.string());
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::filesystem::remove(path);
  EXPECT_THAT(text.str(), HasSubstr("\"name\":\"shown\""));
}

}  // namespace
}  // namespace spindle
