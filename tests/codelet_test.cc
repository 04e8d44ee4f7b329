// Codelets in a real runtime: tasks with a CPU and a GPU implementation, placed by the
// runtime's policy and performance model. GPUs here are logical (declared, none behind them),
// on which a GPU implementation runs on the host: placement is the same as on real ones.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <latch>
#include <string>
#include <vector>

#include "spindle/spindle.hpp"
#include "support/values.hpp"

namespace spindle {
// gtest prints a DeviceKind by name in failures.
void PrintTo(DeviceKind kind, std::ostream* out) { *out << to_string(kind); }
}  // namespace spindle

namespace {

using spindle::DeviceKind;
using spindle::PerfModel;
using spindle::Runtime;
using spindle::RuntimeOptions;
using spindle::placement::Policy;
using spindle::testing::error_of;
using ::testing::HasSubstr;

// Where each call ran: its own report, checked against what the runtime granted it.
struct Ran {
  DeviceKind implementation;
  DeviceKind seen;  // this_task::device_kind()
  bool holds_gpu;
};

Ran report(DeviceKind implementation) {
  return {implementation, spindle::this_task::device_kind(),
          !spindle::this_task::gpu_ids().empty()};
}

auto which() {
  return spindle::codelet(
      "which", [](const std::vector<float>&) { return report(DeviceKind::cpu); },
      [](const std::vector<float>&) { return report(DeviceKind::gpu); });
}

RuntimeOptions options(double gpus, Policy policy = Policy::earliest_finish) {
  return {.num_gpus = gpus, .num_workers = 2, .pin_workers = false, .placement = policy,
          .perf_model_file = ""};
}

// Runs `calls` calls one after another; where each ran.
std::vector<DeviceKind> run_one_by_one(Runtime& rt, std::size_t calls, std::size_t floats = 256) {
  auto task = rt.task(which());
  std::vector<DeviceKind> where;
  for (std::size_t i = 0; i < calls; ++i) {
    Ran ran = task.remote(std::vector<float>(floats)).get();
    EXPECT_EQ(ran.seen, ran.implementation);
    EXPECT_EQ(ran.holds_gpu, ran.implementation == DeviceKind::gpu);
    where.push_back(ran.implementation);
  }
  return where;
}

std::size_t count(const std::vector<DeviceKind>& where, DeviceKind kind) {
  return static_cast<std::size_t>(std::ranges::count(where, kind));
}

// Gives the model calibrated estimates for `task` on inputs of `bytes`.
void seed(PerfModel& model, const std::string& task, std::size_t bytes, double cpu, double gpu) {
  for (std::size_t i = 0; i <= PerfModel::kCalibrationSamples; ++i) {
    model.record(task, bytes, DeviceKind::cpu, cpu);
    model.record(task, bytes, DeviceKind::gpu, gpu);
  }
}

TEST(Codelet, WithoutGpusTheCpuImplementationRuns) {
  Runtime rt(options(0));
  std::vector<DeviceKind> where = run_one_by_one(rt, 30);
  EXPECT_EQ(count(where, DeviceKind::cpu), 30u);
}

TEST(Codelet, TheDeviceOptionPinsTheImplementation) {
  Runtime rt(options(1));
  auto task = rt.task(which());
  for (int i = 0; i < 5; ++i) {
    Ran gpu = task.options({.device = DeviceKind::gpu}).remote(std::vector<float>(8)).get();
    EXPECT_EQ(gpu.implementation, DeviceKind::gpu);
    EXPECT_TRUE(gpu.holds_gpu);
    Ran cpu = task.options({.device = DeviceKind::cpu}).remote(std::vector<float>(8)).get();
    EXPECT_EQ(cpu.implementation, DeviceKind::cpu);
    EXPECT_FALSE(cpu.holds_gpu);
  }
  // A share of a GPU, as num_gpus asks.
  Ran shared = task.options({.num_gpus = 0.25, .device = DeviceKind::gpu})
                   .remote(std::vector<float>(8))
                   .get();
  EXPECT_TRUE(shared.holds_gpu);
}

TEST(Codelet, PinningToAGpuWithoutOneIsInfeasible) {
  Runtime rt(options(0));
  auto pinned = rt.task(which()).options({.device = DeviceKind::gpu});
  std::string message = error_of<spindle::InfeasibleError>(
      [&] { (void)pinned.remote(std::vector<float>(8)); });
  EXPECT_THAT(message, HasSubstr("'which'"));
  EXPECT_THAT(message, HasSubstr("device = gpu"));
}

TEST(Codelet, OnlyCodeletsTakeADevice) {
  Runtime rt(options(1));
  auto plain = rt.task([] { return 1; });
  std::string message = error_of<spindle::InvalidArgumentError>(
      [&] { (void)plain.options({.device = DeviceKind::gpu}); });
  EXPECT_THAT(message, HasSubstr("device = gpu"));
  EXPECT_THAT(message, HasSubstr("num_gpus"));
}

TEST(Codelet, AnUnknownPolicyIsRejected) {
  std::string message = error_of<spindle::InvalidArgumentError>(
      [] { Runtime rt(options(1, static_cast<Policy>(9))); });
  EXPECT_THAT(message, HasSubstr("placement = 9"));
  EXPECT_THAT(message, HasSubstr("earliest_finish"));
}

TEST(Codelet, FixedPoliciesPlaceAsTheySay) {
  {
    Runtime rt(options(1, Policy::cpu_only));
    EXPECT_EQ(count(run_one_by_one(rt, 12), DeviceKind::cpu), 12u);
  }
  {
    Runtime rt(options(1, Policy::gpu_first));
    EXPECT_EQ(count(run_one_by_one(rt, 12), DeviceKind::gpu), 12u);
  }
  {
    Runtime rt(options(1, Policy::round_robin));  // 2 workers, then 1 GPU, in turn
    std::vector<DeviceKind> where = run_one_by_one(rt, 6);
    EXPECT_THAT(where, ::testing::ElementsAre(DeviceKind::cpu, DeviceKind::cpu, DeviceKind::gpu,
                                            DeviceKind::cpu, DeviceKind::cpu, DeviceKind::gpu));
  }
}

TEST(Codelet, AnUncalibratedCodeletRunsWhereSamplesAreMissingUntilBothAreCalibrated) {
  Runtime rt(options(1));
  const std::size_t bytes = 256 * sizeof(float);
  const std::size_t runs = 2 * (PerfModel::kCalibrationSamples + 1);  // the first is dropped
  std::vector<DeviceKind> where = run_one_by_one(rt, runs);
  EXPECT_EQ(count(where, DeviceKind::cpu), runs / 2);
  EXPECT_EQ(rt.perf_model().samples("which", bytes, DeviceKind::cpu),
            PerfModel::kCalibrationSamples);
  EXPECT_EQ(rt.perf_model().samples("which", bytes, DeviceKind::gpu),
            PerfModel::kCalibrationSamples);
  EXPECT_TRUE(rt.perf_model().estimate("which", bytes, DeviceKind::cpu));
  EXPECT_TRUE(rt.perf_model().estimate("which", bytes, DeviceKind::gpu));
}

TEST(Codelet, SmallCallsStayOnTheCpuAndLargeOnesGoToTheGpu) {
  Runtime rt(options(1));
  const std::size_t small = 256, large = 1 << 20;  // floats
  seed(rt.perf_model(), "which", small * sizeof(float), 1e-6, 100e-6);
  seed(rt.perf_model(), "which", large * sizeof(float), 10e-3, 100e-6);
  EXPECT_EQ(run_one_by_one(rt, 1, small), std::vector{DeviceKind::cpu});
  EXPECT_EQ(run_one_by_one(rt, 1, large), std::vector{DeviceKind::gpu});
}

// Data that says it lives on a GPU (a Buffer on a real one says so itself).
struct OnGpu {
  std::size_t bytes;
};
struct OnHost {
  std::size_t bytes;
};

}  // namespace

template <>
struct spindle::DataTraits<OnGpu> {
  static std::size_t bytes(const OnGpu& data) { return data.bytes; }
  static DeviceKind location(const OnGpu&) { return DeviceKind::gpu; }
};
template <>
struct spindle::DataTraits<OnHost> {
  static std::size_t bytes(const OnHost& data) { return data.bytes; }
  static DeviceKind location(const OnHost&) { return DeviceKind::cpu; }
};

namespace {

TEST(Codelet, AConsumerFollowsItsDataWhenThatFinishesSooner) {
  Runtime rt(options(1));
  const std::size_t bytes = std::size_t{64} << 20;
  // The CPU runs it a little faster, but moving 64 MB costs more than the difference.
  seed(rt.perf_model(), "consume", bytes, 1e-3, 1.5e-3);
  rt.perf_model().record_transfer(DeviceKind::gpu, DeviceKind::cpu, bytes, 5e-3);
  rt.perf_model().record_transfer(DeviceKind::cpu, DeviceKind::gpu, bytes, 5e-3);
  auto consume = rt.task(spindle::codelet(
      "consume", [](const auto&) { return DeviceKind::cpu; },
      [](const auto&) { return DeviceKind::gpu; }));
  auto on_gpu = rt.put(OnGpu{bytes});
  auto on_host = rt.put(OnHost{bytes});
  EXPECT_EQ(consume.remote(on_gpu).get(), DeviceKind::gpu);
  EXPECT_EQ(consume.remote(on_host).get(), DeviceKind::cpu);
}

TEST(Codelet, QueuedWorkSpreadsCallsOverCpusAndGpus) {
  Runtime rt(options(1));
  const std::size_t floats = 1024;
  // Twice as fast on the GPU, but the two workers together keep up with it.
  seed(rt.perf_model(), "gated", floats * sizeof(float), 2e-3, 1e-3);
  std::promise<void> open;
  std::shared_future<void> gate = open.get_future().share();
  auto gated = rt.task(spindle::codelet(
      "gated",
      [gate](const std::vector<float>&) {
        gate.wait();  // holds the worker: nothing finishes before every call is placed
        return DeviceKind::cpu;
      },
      [gate](const std::vector<float>&) {
        gate.wait();
        return DeviceKind::gpu;
      }));
  std::vector<spindle::ObjectRef<DeviceKind>> refs;
  for (int i = 0; i < 12; ++i) refs.push_back(gated.remote(std::vector<float>(floats)));
  open.set_value();
  std::vector<DeviceKind> where = spindle::get(refs);
  EXPECT_GE(count(where, DeviceKind::cpu), 4u);
  EXPECT_GE(count(where, DeviceKind::gpu), 4u);
}

TEST(Codelet, CancelledCallsNoLongerCountAsQueuedWork) {
  RuntimeOptions two_cpus = options(1);
  two_cpus.num_cpus = 2;
  Runtime rt(two_cpus);
  const std::size_t floats = 1024, bytes = floats * sizeof(float);
  seed(rt.perf_model(), "queued", bytes, 100e-3, 1e-3);  // every call goes to the GPU
  seed(rt.perf_model(), "probe", bytes, 5e-3, 1e-3);     // the GPU, unless 4 ms are queued there
  // Two blockers hold both CPUs, so every call of "queued" waits in the queue, placed.
  std::promise<void> open;
  std::shared_future<void> gate = open.get_future().share();
  std::latch started(2);
  auto block = rt.task([gate, &started] {
    started.count_down();
    gate.wait();
  });
  std::vector<spindle::ObjectRef<void>> blockers = {block.remote(), block.remote()};
  started.wait();
  auto queued = rt.task(spindle::codelet(
      "queued", [](const std::vector<float>&) { return DeviceKind::cpu; },
      [](const std::vector<float>&) { return DeviceKind::gpu; }));
  std::vector<spindle::ObjectRef<DeviceKind>> refs;
  for (int i = 0; i < 10; ++i) refs.push_back(queued.remote(std::vector<float>(floats)));
  for (const auto& ref : refs) rt.cancel(ref);
  open.set_value();
  spindle::get(blockers);
  for (const auto& ref : refs) {
    EXPECT_THAT(error_of<spindle::CancelledError>([&] { (void)ref.get(); }),
                HasSubstr("cancel() was called before it ran"));
  }
  // Ten calls of 1 ms on the GPU would make the probe's 5 ms on the CPU the sooner finish.
  auto probe = rt.task(spindle::codelet(
      "probe", [](const std::vector<float>&) { return DeviceKind::cpu; },
      [](const std::vector<float>&) { return DeviceKind::gpu; }));
  EXPECT_EQ(probe.remote(std::vector<float>(floats)).get(), DeviceKind::gpu);
}

TEST(Codelet, ArgumentsAreMeasuredByTheirBytes) {
  Runtime rt(options(1, Policy::cpu_only));
  auto sum = rt.task(spindle::codelet(
      "sum",
      [](const spindle::Buffer<double>& values, const std::vector<int>& more, int) {
        return values.size() + more.size();
      },
      [](const spindle::Buffer<double>& values, const std::vector<int>& more, int) {
        return values.size() + more.size();
      }));
  auto values = rt.put(spindle::Buffer<double>(std::vector<double>(1000, 1.0)));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(sum.remote(values, std::vector<int>(10), 7).get(), 1010u);
  // 8000 + 40 + 4 bytes; the first run is dropped.
  EXPECT_EQ(rt.perf_model().samples("sum", 8044, DeviceKind::cpu), 2u);
}

TEST(Codelet, TheModelIsKeptAcrossRunsAndADamagedFileIsRebuilt) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("spindle-codelet-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "model.json").string();
  RuntimeOptions kept = options(1);
  kept.perf_model_file = path;
  {
    Runtime rt(kept);
    (void)run_one_by_one(rt, 2 * (PerfModel::kCalibrationSamples + 1));
  }
  ASSERT_TRUE(std::filesystem::exists(path));
  {
    Runtime rt(kept);
    EXPECT_TRUE(rt.perf_model().estimate("which", 256 * sizeof(float), DeviceKind::gpu));
    // Calibrated from the start: no more calibration runs are needed.
    seed(rt.perf_model(), "which", 256 * sizeof(float), 1e-6, 1e-3);
    EXPECT_EQ(run_one_by_one(rt, 1), std::vector{DeviceKind::cpu});
  }
  std::ofstream(path) << "{ not json";
  ::testing::internal::CaptureStderr();
  {
    Runtime rt(kept);
    EXPECT_FALSE(rt.perf_model().estimate("which", 256 * sizeof(float), DeviceKind::cpu));
    (void)run_one_by_one(rt, 2 * (PerfModel::kCalibrationSamples + 1));
  }
  std::string warning = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(warning, HasSubstr(path));
  PerfModel rebuilt(PerfModel::machine_key(spindle::Topology::discover()));
  EXPECT_EQ(rebuilt.load(path), "");
  EXPECT_TRUE(rebuilt.estimate("which", 256 * sizeof(float), DeviceKind::cpu));
  std::filesystem::remove_all(dir);
}

}  // namespace
