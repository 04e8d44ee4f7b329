// ResourcePool: packing of GPU shares, infeasible demands, and thread safety.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <random>
#include <thread>

#include "spindle/spindle.hpp"

namespace spindle {
namespace {

Quantity q(double amount) { return Quantity::from_double(amount, "test"); }

ResourcePool make_pool(double cpus, double gpus) {
  ResourceSet totals;
  totals.set("cpu", cpus).set("gpu", gpus).set("memory", 1 << 30).set("disk", 2.0);
  return ResourcePool(totals);
}

int device_of(const std::optional<Allocation>& allocation) {
  EXPECT_TRUE(allocation.has_value());
  EXPECT_EQ(allocation->gpus.size(), 1u);
  return allocation->gpus.at(0).device;
}

TEST(ResourcePool, PacksFractionalGpusOntoOneDeviceBeforeTheNext) {
  ResourcePool pool = make_pool(16, 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(device_of(pool.try_acquire(ResourceSet::demand(0, 0.25))), 0) << "share " << i;
  }
  EXPECT_EQ(device_of(pool.try_acquire(ResourceSet::demand(0, 0.5))), 1);
  EXPECT_EQ(device_of(pool.try_acquire(ResourceSet::demand(0, 0.75))), 2);
  // Best fit: GPU 2 has 0.25 free, GPU 1 has 0.5; the fuller one takes it.
  EXPECT_EQ(device_of(pool.try_acquire(ResourceSet::demand(0, 0.25))), 2);
  EXPECT_EQ(device_of(pool.try_acquire(ResourceSet::demand(0, 0.5))), 1);
  EXPECT_EQ(pool.gpu_available(), (std::vector<Quantity>{q(0), q(0), q(0), q(1)}));
}

TEST(ResourcePool, WholeDemandsTakeEntirelyFreeDevices) {
  ResourcePool pool = make_pool(16, 4);
  std::optional<Allocation> share = pool.try_acquire(ResourceSet::demand(0, 0.5));
  ASSERT_TRUE(share);
  std::optional<Allocation> two = pool.try_acquire(ResourceSet::demand(1, 2));
  ASSERT_TRUE(two);
  EXPECT_EQ(two->gpu_ids(), (std::vector<int>{1, 2}));
  EXPECT_EQ(two->gpus[0].amount, Quantity::whole(1));
  // GPU 3 is free and GPU 0 half free: 2 whole GPUs are not, though 1.5 is in total.
  EXPECT_FALSE(pool.try_acquire(ResourceSet::demand(0, 2)));
  pool.release(*share);
  std::optional<Allocation> again = pool.try_acquire(ResourceSet::demand(0, 2));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->gpu_ids(), (std::vector<int>{0, 3}));
}

TEST(ResourcePool, FragmentedSharesDoNotCombine) {
  ResourcePool pool = make_pool(4, 2);
  ASSERT_TRUE(pool.try_acquire(ResourceSet::demand(0, 0.75)));
  ASSERT_TRUE(pool.try_acquire(ResourceSet::demand(0, 0.75)));
  EXPECT_EQ(pool.available().gpu(), q(0.5));
  EXPECT_FALSE(pool.try_acquire(ResourceSet::demand(0, 0.5)));
  EXPECT_TRUE(pool.try_acquire(ResourceSet::demand(0, 0.25)));
}

TEST(ResourcePool, WaitsWhenBusyAndGrantsAfterRelease) {
  ResourcePool pool = make_pool(2, 0);
  ResourceSet most;  // a total-like amount: the demand rule (whole above 1) does not apply
  most.set("cpu", 1.5);
  std::optional<Allocation> first = pool.try_acquire(most);
  ASSERT_TRUE(first);
  EXPECT_FALSE(pool.try_acquire(ResourceSet::demand(1)));
  pool.release(*first);
  EXPECT_TRUE(pool.try_acquire(ResourceSet::demand(1)));
  EXPECT_EQ(pool.available().cpu(), q(1));
}

TEST(ResourcePool, InfeasibleDemandNamesDemandAndTotals) {
  ResourcePool pool = make_pool(2, 1);
  try {
    (void)pool.try_acquire(ResourceSet::demand(4));
    FAIL() << "no error";
  } catch (const InfeasibleError& error) {
    EXPECT_STREQ(error.what(),
                 "demand {cpu: 4} can never be met: the totals are "
                 "{cpu: 2, gpu: 1, memory: 1 GiB, disk: 2}");
  }
  EXPECT_THROW(pool.check_feasible(ResourceSet::demand(1, 2)), InfeasibleError);
  EXPECT_THROW(pool.check_feasible(ResourceSet::demand(0, 0, 2.0 * (1 << 30))), InfeasibleError);
  EXPECT_NO_THROW(pool.check_feasible(ResourceSet::demand(2, 1, 1 << 30, {{"disk", 2}})));
  // Nothing was taken by the failed attempts.
  EXPECT_EQ(pool.available(), pool.totals());
}

TEST(ResourcePool, NoGpusMeansEveryGpuDemandIsInfeasible) {
  ResourcePool pool = make_pool(2, 0);
  EXPECT_EQ(pool.num_gpu_devices(), 0);
  EXPECT_THROW(pool.check_feasible(ResourceSet::demand(1, 0.25)), InfeasibleError);
}

TEST(ResourcePool, UnknownCustomResourceIsNamed) {
  ResourcePool pool = make_pool(2, 0);
  try {
    pool.check_feasible(ResourceSet::demand(1, 0, 0, {{"tpu", 1}}));
    FAIL() << "no error";
  } catch (const InvalidArgumentError& error) {
    EXPECT_STREQ(error.what(),
                 "unknown resource 'tpu' in demand {cpu: 1, tpu: 1}: this runtime has cpu, disk, "
                 "memory");
  }
}

TEST(ResourcePool, RejectsFractionalGpuTotal) {
  ResourceSet totals;
  totals.set("gpu", 1.5);
  try {
    ResourcePool pool(totals);
    FAIL() << "no error";
  } catch (const InvalidArgumentError& error) {
    EXPECT_STREQ(error.what(),
                 "gpu total = 1.5: GPUs are whole devices, so the total must be whole");
  }
}

TEST(ResourcePool, ReleasingTwiceIsCaught) {
  ResourcePool pool = make_pool(2, 1);
  std::optional<Allocation> allocation = pool.try_acquire(ResourceSet::demand(1, 0.5));
  ASSERT_TRUE(allocation);
  pool.release(*allocation);
  EXPECT_THROW(pool.release(*allocation), std::logic_error);
  EXPECT_EQ(pool.available(), pool.totals());
  EXPECT_EQ(pool.gpu_available(), std::vector<Quantity>{q(1)});
}

// Many threads acquire and release at random. A ledger kept outside the pool checks that
// no unit is ever granted twice: per-resource and per-GPU holdings never exceed the totals.
TEST(ResourcePool, StressKeepsInvariantsAcrossThreads) {
  constexpr int kGpus = 3;
  ResourcePool pool = make_pool(4, kGpus);
  const std::array demands = {ResourceSet::demand(1, 0.25),
                              ResourceSet::demand(0.5, 0.5),
                              ResourceSet::demand(0, 1),
                              ResourceSet::demand(1, 2),
                              ResourceSet::demand(0.25, 0.75, 1 << 20, {{"disk", 1}}),
                              ResourceSet::demand(2)};
  std::atomic<std::int64_t> cpu_held{0};
  std::array<std::atomic<std::int64_t>, kGpus> gpu_held{};
  std::atomic<int> violations{0};
  std::atomic<int> grants{0};

  auto worker = [&](unsigned seed) {
    std::mt19937 random(seed);
    for (int i = 0; i < 20000; ++i) {
      const ResourceSet& demand = demands[random() % demands.size()];
      std::optional<Allocation> allocation = pool.try_acquire(demand);
      if (!allocation) continue;
      ++grants;
      if (cpu_held += demand.cpu().units(); cpu_held > Quantity::whole(4).units()) ++violations;
      for (const GpuShare& share : allocation->gpus) {
        if ((gpu_held[share.device] += share.amount.units()) > Quantity::kUnitsPerWhole)
          ++violations;
      }
      for (const GpuShare& share : allocation->gpus) gpu_held[share.device] -= share.amount.units();
      cpu_held -= demand.cpu().units();
      pool.release(*allocation);
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 8; ++t) threads.emplace_back(worker, t + 1);
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(violations, 0);
  EXPECT_GT(grants, 0);
  EXPECT_EQ(pool.available(), pool.totals());
  EXPECT_EQ(pool.gpu_available(), std::vector<Quantity>(kGpus, q(1)));
}

}  // namespace
}  // namespace spindle
