// Quantity and ResourceSet: fixed-point arithmetic and validation messages.
#include <gtest/gtest.h>

#include <limits>

#include "spindle/spindle.hpp"

namespace spindle {
namespace {

// Expects `call` to throw InvalidArgumentError with exactly `message`.
template <typename Call>
void expect_invalid(Call call, const std::string& message) {
  try {
    call();
    ADD_FAILURE() << "no error; expected: " << message;
  } catch (const InvalidArgumentError& error) {
    EXPECT_EQ(error.what(), message);
  }
}

TEST(Quantity, KeepsFourDecimalPlacesExactly) {
  EXPECT_EQ(Quantity::from_double(0.25, "x").units(), 2500);
  EXPECT_EQ(Quantity::from_double(0.0001, "x").units(), 1);
  EXPECT_EQ(Quantity::from_double(0.1 + 0.2, "x").units(), 3000);
  EXPECT_EQ(Quantity::from_double(0.0003, "x").units(), 3);
  EXPECT_EQ(Quantity::from_double(16, "x"), Quantity::whole(16));
  Quantity sum;
  for (int i = 0; i < 10000; ++i) sum += Quantity::from_double(0.0001, "x");
  EXPECT_EQ(sum, Quantity::whole(1));
}

TEST(Quantity, PrintsExactDecimals) {
  EXPECT_EQ(Quantity::from_double(0.25, "x").to_string(), "0.25");
  EXPECT_EQ(Quantity::from_double(3, "x").to_string(), "3");
  EXPECT_EQ(Quantity::from_double(0.0001, "x").to_string(), "0.0001");
  EXPECT_EQ(Quantity::from_double(1.05, "x").to_string(), "1.05");
  EXPECT_EQ(Quantity().to_string(), "0");
}

TEST(Quantity, RejectsBadAmountsNamingTheValueAndRule) {
  expect_invalid([] { Quantity::from_double(-1, "num_cpus"); },
                 "num_cpus = -1: must not be negative");
  expect_invalid(
      [] { Quantity::from_double(std::numeric_limits<double>::quiet_NaN(), "num_cpus"); },
      "num_cpus = nan: must be a finite number");
  expect_invalid([] { Quantity::from_double(std::numeric_limits<double>::infinity(), "num_gpus"); },
                 "num_gpus = inf: must be a finite number");
  expect_invalid([] { Quantity::from_double(0.00005, "num_cpus"); },
                 "num_cpus = 5e-05: the finest fraction allowed is 0.0001");
  expect_invalid([] { Quantity::from_double(0.12345, "num_gpus"); },
                 "num_gpus = 0.12345: the finest fraction allowed is 0.0001");
  expect_invalid([] { Quantity::from_double(1e15, "memory"); },
                 "memory = 1e+15: must be at most 1e+14");
}

TEST(ResourceSetDemand, AcceptsRaysRules) {
  ResourceSet demand = ResourceSet::demand(0.5, 0.25, 1024, {{"disk", 2}});
  EXPECT_EQ(demand.cpu(), Quantity::from_double(0.5, "x"));
  EXPECT_EQ(demand.gpu(), Quantity::from_double(0.25, "x"));
  EXPECT_EQ(demand.memory(), Quantity::whole(1024));
  EXPECT_EQ(demand.get("disk"), Quantity::whole(2));
  EXPECT_EQ(demand.to_string(), "{cpu: 0.5, gpu: 0.25, memory: 1 KiB, disk: 2}");
  EXPECT_EQ(ResourceSet::demand(4, 2).to_string(), "{cpu: 4, gpu: 2}");
}

TEST(ResourceSetDemand, RejectsFractionsAboveOne) {
  expect_invalid([] { ResourceSet::demand(1, 1.5); },
                 "num_gpus = 1.5: a demand above 1 must be a whole number");
  expect_invalid([] { ResourceSet::demand(2.5); },
                 "num_cpus = 2.5: a demand above 1 must be a whole number");
  expect_invalid(
      [] {
        ResourceSet::demand(1, 0, 0, {{"disk", 1.25}});
      },
      "resources[\"disk\"] = 1.25: a demand above 1 must be a whole number");
}

TEST(ResourceSetDemand, RejectsFractionalBytes) {
  expect_invalid([] { ResourceSet::demand(1, 0, 1.5); },
                 "memory = 1.5: must be a whole number of bytes");
}

TEST(ResourceSetDemand, RejectsBadCustomNames) {
  expect_invalid(
      [] {
        ResourceSet::demand(1, 0, 0, {{"", 1}});
      },
      "resource name '': a resource needs a non-empty name");
  expect_invalid(
      [] {
        ResourceSet::demand(1, 0, 0, {{"fast disk", 1}});
      },
      "resource name 'fast disk': only letters, digits and _ - . : / are allowed");
  expect_invalid(
      [] {
        ResourceSet::demand(1, 0, 0, {{"gpu", 1}});
      },
      "resources[\"gpu\"]: 'gpu' is reserved; use num_cpus, num_gpus or memory");
  expect_invalid(
      [] {
        ResourceSet::demand(1, 0, 0, {{std::string(65, 'a'), 1}});
      },
      "resource name '" + std::string(65, 'a') + "': at most 64 characters are allowed");
  expect_invalid(
      [] {
        ResourceSet::demand(1, 0, 0, {{"disk", -2}});
      },
      "resources[\"disk\"] = -2: must not be negative");
}

TEST(ResourceSet, ZeroAmountsAreAbsent) {
  ResourceSet a = ResourceSet::demand(1, 0);
  ResourceSet b;
  b.set("cpu", 1.0).set("disk", 0.0);
  EXPECT_EQ(a, b);
  EXPECT_EQ(b.amounts().size(), 1u);
  EXPECT_EQ(ResourceSet().to_string(), "{}");
}

TEST(ResourceSet, AddsSubtractsAndCompares) {
  ResourceSet total = ResourceSet::demand(2, 1, 0, {{"disk", 1}});
  ResourceSet part = ResourceSet::demand(0.5, 0.25);
  EXPECT_TRUE(total.contains(part));
  EXPECT_FALSE(part.contains(total));
  total -= part;
  EXPECT_EQ(total.to_string(), "{cpu: 1.5, gpu: 0.75, disk: 1}");
  total += part;
  EXPECT_EQ(total, ResourceSet::demand(2, 1, 0, {{"disk", 1}}));
  EXPECT_THROW(part -= total, std::logic_error);
}

TEST(ResourceTotals, TakeTheMachineThenOverrides) {
  Topology topology;
  topology.cores.resize(3);
  topology.memory_bytes = 8ull << 30;
  topology.memory_limit_bytes = 2ull << 30;
  ResourceSet machine = resource_totals(topology);
  EXPECT_EQ(machine.to_string(), "{cpu: 3, memory: 2 GiB}");

  ResourceOverrides overrides{
      .num_cpus = 16, .num_gpus = 4, .memory = 1024, .resources = {{"disk", 2}}};
  EXPECT_EQ(resource_totals(topology, overrides).to_string(),
            "{cpu: 16, gpu: 4, memory: 1 KiB, disk: 2}");
}

TEST(ResourceTotals, RejectBadOverrides) {
  Topology topology;
  expect_invalid([&] { resource_totals(topology, {.num_gpus = 1.5}); },
                 "num_gpus = 1.5: the total is a number of devices, so it must be whole");
  expect_invalid([&] { resource_totals(topology, {.num_cpus = -4}); },
                 "num_cpus = -4: must not be negative");
  expect_invalid(
      [&] {
        resource_totals(topology, {.resources = {{"memory", 1}}});
      },
      "resources[\"memory\"]: 'memory' is reserved; use num_cpus, num_gpus or memory");
}

}  // namespace
}  // namespace spindle
