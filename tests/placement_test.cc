// Placement policies on simulated devices: small tasks stay on the CPU, large ones go to the
// GPU, a consumer follows its data, the model calibrates and persists, and the model-based
// policy beats the others on the mixed workload, close to the lower bound.
#include <gtest/gtest.h>

#include <filesystem>

#include "spindle/spindle.hpp"

namespace {

namespace placement = spindle::placement;
using placement::Policy;
using spindle::DeviceKind;
using spindle::PerfModel;

// A model calibrated on `workload` by one run under the model-based policy.
void calibrate(const placement::Workload& workload, const placement::SimMachine& machine,
               PerfModel& model) {
  (void)placement::simulate(workload.kinds, workload.tasks, machine, Policy::earliest_finish,
                            model);
}

// The model-based policy's second run on `workload`, its model calibrated by the first.
placement::SimResult calibrated_run(const placement::Workload& workload,
                                    const placement::SimMachine& machine) {
  PerfModel model("simulated");
  calibrate(workload, machine, model);
  return placement::simulate(workload.kinds, workload.tasks, machine, Policy::earliest_finish,
                             model);
}

TEST(Placement, SmallTasksStayOnTheCpuAndLargeOnesGoToTheGpu) {
  placement::Workload workload = placement::mixed_workload(2);
  auto result = calibrated_run(workload, placement::SimMachine{});
  std::size_t small_on_gpu = 0, small = 0, dense_on_gpu = 0, dense = 0;
  for (std::size_t i = 0; i < workload.tasks.size(); ++i) {
    bool gpu = result.placement[i] == DeviceKind::gpu;
    if (workload.tasks[i].kind == 1) {
      ++small;
      small_on_gpu += gpu;
    } else if (workload.tasks[i].kind == 0) {
      ++dense;
      dense_on_gpu += gpu;
    }
  }
  EXPECT_EQ(small_on_gpu, 0u) << "of " << small << " element-wise tasks";
  EXPECT_EQ(dense_on_gpu, dense);
}

TEST(Placement, AConsumerFollowsItsDataToTheGpu) {
  // The consumer is a little faster on the CPU, but its 64 MB input lives on the GPU.
  std::vector<placement::TaskKind> kinds = {{"producer", 0, 1e-9, 0, 1e-11},
                                            {"consumer", 0, 1e-11, 0, 1.2e-11}};
  std::vector<placement::SimTask> tasks;
  // Rounds in a chain (each producer reads the last consumer's output), so no queue of other
  // work on the GPU argues against it.
  for (int round = 0; round < 30; ++round) {
    std::vector<std::size_t> after;
    if (!tasks.empty()) after.push_back(tasks.size() - 1);
    tasks.push_back({0, std::size_t{64} << 20, after});
    tasks.push_back({1, std::size_t{64} << 20, {tasks.size() - 1}});
  }
  placement::SimMachine machine{.cpus = 2, .gpus = 1};
  PerfModel model("simulated");
  calibrate({kinds, tasks}, machine, model);
  auto result = placement::simulate(kinds, tasks, machine, Policy::earliest_finish, model);
  for (std::size_t i = 1; i < tasks.size(); i += 2) {
    EXPECT_EQ(result.placement[i - 1], DeviceKind::gpu) << "producer " << i - 1;
    EXPECT_EQ(result.placement[i], DeviceKind::gpu) << "consumer " << i;
  }
  // Without data to follow, the same consumer runs on the CPU.
  auto alone = placement::simulate(kinds, {{1, std::size_t{64} << 20, {}}}, machine,
                                   Policy::earliest_finish, model);
  EXPECT_EQ(alone.placement.back(), DeviceKind::cpu);
}

TEST(Placement, TheModelCalibratesAndPersists) {
  placement::Workload workload = placement::mixed_workload(1);
  placement::SimMachine machine;
  PerfModel model("simulated");
  EXPECT_FALSE(model.estimate("dense", std::size_t{16} << 20, DeviceKind::gpu));
  calibrate(workload, machine, model);
  EXPECT_TRUE(model.estimate("elementwise", std::size_t{64} << 10, DeviceKind::cpu));
  EXPECT_TRUE(model.estimate("chain step", std::size_t{16} << 20, DeviceKind::gpu));
  EXPECT_TRUE(model.transfer_seconds(DeviceKind::cpu, DeviceKind::gpu, std::size_t{16} << 20));

  auto path = std::filesystem::temp_directory_path() / "spindle_placement_model.json";
  calibrate(workload, machine, model);  // enough samples for every kind
  model.save(path.string());
  PerfModel loaded("simulated");
  ASSERT_EQ(loaded.load(path.string()), "");
  PerfModel fresh("simulated");
  auto with_model =
      placement::simulate(workload.kinds, workload.tasks, machine, Policy::earliest_finish, loaded);
  auto without =
      placement::simulate(workload.kinds, workload.tasks, machine, Policy::earliest_finish, fresh);
  EXPECT_LT(with_model.makespan, without.makespan);  // a loaded model needs no calibration
  std::filesystem::remove(path);
}

TEST(Placement, TheModelBasedPolicyBeatsTheOthersWithinOnePointTwoOfTheLowerBound) {
  placement::Workload workload = placement::mixed_workload(2);
  placement::SimMachine machine;
  auto best = calibrated_run(workload, machine);
  EXPECT_LE(best.makespan, 1.2 * best.lower_bound);
  for (Policy policy : {Policy::cpu_only, Policy::gpu_first, Policy::round_robin}) {
    PerfModel unused("simulated");
    auto other = placement::simulate(workload.kinds, workload.tasks, machine, policy, unused);
    EXPECT_LT(best.makespan, other.makespan) << placement::to_string(policy);
    EXPECT_GE(other.makespan, other.lower_bound * (1 - 1e-9)) << placement::to_string(policy);
  }
}

TEST(Placement, BadWorkloadsAreRejectedNamingTheTask) {
  PerfModel model("simulated");
  std::vector<placement::TaskKind> kinds = {{"k", 0, 1e-9, 0, 1e-9}};
  try {
    (void)placement::simulate(kinds, {{0, 1, {}}, {0, 1, {1}}}, {}, Policy::cpu_only, model);
    FAIL() << "a task read its own output";
  } catch (const spindle::InvalidArgumentError& error) {
    EXPECT_STREQ(error.what(), "tasks[1] reads task 1: inputs must be earlier tasks");
  }
  EXPECT_THROW((void)placement::simulate(kinds, {{3, 1, {}}}, {}, Policy::cpu_only, model),
               spindle::InvalidArgumentError);
  EXPECT_THROW((void)placement::simulate(kinds, {}, {.cpus = 0}, Policy::cpu_only, model),
               spindle::InvalidArgumentError);
}

}  // namespace
