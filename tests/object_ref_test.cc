// Object refs: put, get, wait, timeouts and zero-copy passing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

#include "spindle/spindle.hpp"
#include "support/gate.hpp"

namespace spindle {
namespace {

using namespace std::chrono_literals;
using testing::Gate;

// Counts copies, so tests can assert that passing objects never copies them.
struct Tracked {
  static inline std::atomic<int> copies{0};
  std::vector<int> payload = std::vector<int>(1000, 7);
  Tracked() = default;
  Tracked(const Tracked& other) : payload(other.payload) { ++copies; }
  Tracked(Tracked&&) noexcept = default;
  Tracked& operator=(const Tracked&) = delete;
};

TEST(ObjectRef, PutThenGetReturnsTheValue) {
  Runtime rt;
  ObjectRef<std::string> ref = rt.put(std::string("hello"));
  EXPECT_TRUE(ref.valid());
  EXPECT_TRUE(ref.done());
  EXPECT_EQ(ref.get(), "hello");
  EXPECT_EQ(get(ref), "hello");
  EXPECT_FALSE(ObjectRef<int>().valid());
}

TEST(ObjectRef, GetOnATemporaryRefReturnsACopyThatOutlivesIt) {
  Runtime rt;
  auto make = rt.task([] { return std::vector<int>{1, 2, 3}; });
  // A reference into the object would dangle here, once the temporary ref is gone.
  static_assert(std::is_same_v<decltype(make.remote().get()), std::vector<int>>);
  int sum = 0;
  for (int v : make.remote().get()) sum += v;
  EXPECT_EQ(sum, 6);
  ObjectRef<std::vector<int>> kept = make.remote();
  static_assert(std::is_same_v<decltype(kept.get()), const std::vector<int>&>);
  EXPECT_EQ(&kept.get(), &kept.get());  // a kept ref gives the one stored value
}

TEST(ObjectRef, EmptyRefsAreRejectedWithAClearError) {
  Runtime rt;
  ObjectRef<int> empty;
  try {
    (void)empty.get();
    FAIL() << "no error";
  } catch (const InvalidArgumentError& error) {
    EXPECT_STREQ(error.what(),
                 "this ObjectRef is an empty ObjectRef: default-constructed or moved from, it "
                 "refers to no object");
  }
  try {
    (void)get(std::vector{rt.put(1), empty});
    FAIL() << "no error";
  } catch (const InvalidArgumentError& error) {
    EXPECT_THAT(error.what(), ::testing::StartsWith("refs[1] is an empty ObjectRef"));
  }
  auto add = rt.task([](int a, int b) { return a + b; });
  try {
    (void)add.remote(1, empty);
    FAIL() << "no error";
  } catch (const InvalidArgumentError& error) {
    EXPECT_THAT(error.what(), ::testing::StartsWith("argument 1 is an empty ObjectRef"));
  }
  EXPECT_THROW(rt.cancel(empty), InvalidArgumentError);
  EXPECT_EQ(rt.status().waiting_for_dependencies + rt.status().waiting_for_resources, 0u);
}

TEST(ObjectRef, PutTaskArgumentsAndGetNeverCopy) {
  Runtime rt;
  Tracked::copies = 0;
  ObjectRef<Tracked> ref = rt.put(Tracked{});
  const Tracked* stored = &ref.get();
  auto same = rt.task([stored](const Tracked& t) { return &t == stored; }).remote(ref);
  EXPECT_TRUE(same.get());
  auto sum = rt.task([](const Tracked& t) { return t.payload.size(); }).remote(ref);
  EXPECT_EQ(sum.get(), 1000u);
  ObjectRef<Tracked> copy_of_ref = ref;
  EXPECT_EQ(&copy_of_ref.get(), stored);
  EXPECT_EQ(Tracked::copies, 0);
}

TEST(ObjectRef, GetOfManyKeepsOrder) {
  Runtime rt;
  auto square = rt.task([](int x) { return x * x; });
  std::vector<ObjectRef<int>> refs;
  for (int i = 0; i < 100; ++i) refs.push_back(square.remote(i));
  std::vector<int> values = get(refs);
  ASSERT_EQ(values.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(values[i], i * i);
}

TEST(ObjectRef, GetOfManyVoidRefsWaitsForAllAndThrowsTheFirstError) {
  Runtime rt;
  std::atomic<int> ran{0};
  auto work = rt.task([&ran](int i) {
    ++ran;
    if (i % 2 == 1) throw std::runtime_error("odd " + std::to_string(i));
  });
  std::vector<ObjectRef<void>> even = {work.remote(0), work.remote(2)};
  static_assert(std::is_void_v<decltype(get(even))>);
  get(even);
  EXPECT_TRUE(even[0].done() && even[1].done());
  std::vector<ObjectRef<void>> refs;
  for (int i = 0; i < 6; ++i) refs.push_back(work.remote(i));
  try {
    get(refs);
    FAIL() << "no error";
  } catch (const TaskError& error) {
    EXPECT_THAT(error.what(), ::testing::HasSubstr("odd 1"));
  }
  EXPECT_EQ(ran.load(), 8);  // every task ran before the error was thrown
}

TEST(ObjectRef, GetWithTimeoutThrowsWhenNotReady) {
  Runtime rt;
  Gate gate;
  auto blocked = rt.task([&gate] {
                     gate.wait();
                     return 1;
                   }).remote();
  try {
    (void)blocked.get(20ms);
    FAIL() << "no timeout";
  } catch (const GetTimeoutError& error) {
    EXPECT_STREQ(error.what(), "get timed out after 20 ms: 0 of 1 object was ready");
  }
  EXPECT_THROW((void)get(std::vector{blocked, rt.put(2)}, 5ms), GetTimeoutError);
  gate.open();
  EXPECT_EQ(blocked.get(60s), 1);
}

TEST(Wait, ReturnsReadyAndPendingInInputOrder) {
  Runtime rt;
  Gate gate;
  auto gated = rt.task([&gate](int x) {
    gate.wait();
    return x;
  });
  std::vector<ObjectRef<int>> refs = {gated.remote(0), rt.put(1), gated.remote(2), rt.put(3),
                                      rt.put(4)};
  auto [ready, pending] = wait(refs, {.num_returns = 2});
  EXPECT_EQ(ready, (std::vector{refs[1], refs[3]}));
  EXPECT_EQ(pending, (std::vector{refs[0], refs[2], refs[4]}));

  auto timed = wait(refs, {.num_returns = 5, .timeout = 10ms});
  EXPECT_EQ(timed.ready, (std::vector{refs[1], refs[3], refs[4]}));
  EXPECT_EQ(timed.pending, (std::vector{refs[0], refs[2]}));

  gate.open();
  auto all = wait(refs, {.num_returns = 0});
  EXPECT_EQ(all.ready, refs);
  EXPECT_TRUE(all.pending.empty());
}

TEST(Wait, CountsFailedObjectsAsDone) {
  Runtime rt;
  auto fails = rt.task([]() -> int { throw std::runtime_error("no"); }).remote();
  auto [ready, pending] = wait(std::vector{fails}, {.num_returns = 1});
  EXPECT_EQ(ready.size(), 1u);
  EXPECT_TRUE(fails.failed());
}

TEST(Wait, RejectsTooManyReturns) {
  Runtime rt;
  try {
    (void)wait(std::vector{rt.put(1)}, {.num_returns = 3});
    FAIL() << "no error";
  } catch (const InvalidArgumentError& error) {
    EXPECT_STREQ(error.what(), "num_returns = 3: at most the number of refs (1) is allowed");
  }
}

TEST(Wait, WorksInsideTasks) {
  Runtime rt({.num_cpus = 1, .num_workers = 1});
  auto inner = rt.task([](int x) { return x + 1; });
  auto outer = rt.task([&] {
    std::vector<ObjectRef<int>> refs;
    for (int i = 0; i < 10; ++i) refs.push_back(inner.remote(i));
    auto [ready, pending] = wait(refs, {.num_returns = 10});
    int sum = 0;
    for (const auto& ref : ready) sum += ref.get();
    return sum + static_cast<int>(pending.size());
  });
  EXPECT_EQ(outer.remote().get(), 55);
}

}  // namespace
}  // namespace spindle
