// The performance model: calibration (first run dropped, 10 samples, outliers rejected), size
// buckets, transfer fits, and the cache file (kept across runs, damaged or foreign files
// ignored with a warning).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "spindle/spindle.hpp"

namespace {

using spindle::DeviceKind;
using spindle::PerfModel;

constexpr std::size_t kMiB = std::size_t{1} << 20;

TEST(PerfModel, CalibratesAfterTenSamplesDroppingTheFirstAndRejectingOutliers) {
  PerfModel model("test");
  model.record("scale", kMiB, DeviceKind::gpu, 5.0);  // warm-up: dropped
  for (int i = 0; i < 9; ++i) model.record("scale", kMiB, DeviceKind::gpu, 1.0 + 0.01 * (i % 3));
  EXPECT_EQ(model.samples("scale", kMiB, DeviceKind::gpu), 9u);
  EXPECT_FALSE(model.estimate("scale", kMiB, DeviceKind::gpu));
  model.record("scale", kMiB, DeviceKind::gpu, 100.0);  // an outlier
  auto estimate = model.estimate("scale", kMiB, DeviceKind::gpu);
  ASSERT_TRUE(estimate);
  EXPECT_NEAR(*estimate, 1.01, 0.005);
  // Other devices and other sizes are other keys.
  EXPECT_FALSE(model.estimate("scale", kMiB, DeviceKind::cpu));
  EXPECT_FALSE(model.estimate("scale", 4 * kMiB, DeviceKind::gpu));
  EXPECT_TRUE(model.estimate("scale", kMiB + 1000, DeviceKind::gpu));  // the same bucket
}

TEST(PerfModel, BucketsArePowersOfTwo) {
  EXPECT_EQ(PerfModel::bucket(0), 0u);
  EXPECT_EQ(PerfModel::bucket(1), 0u);
  EXPECT_EQ(PerfModel::bucket(1024), 10u);
  EXPECT_EQ(PerfModel::bucket(2047), 10u);
  EXPECT_EQ(PerfModel::bucket(2048), 11u);
}

TEST(PerfModel, TransfersFitLatencyAndBandwidth) {
  PerfModel model("test");
  EXPECT_FALSE(model.transfer_seconds(DeviceKind::cpu, DeviceKind::gpu, kMiB));
  EXPECT_EQ(model.transfer_seconds(DeviceKind::gpu, DeviceKind::gpu, kMiB), 0.0);
  // 10 µs latency, 10 GB/s.
  for (double bytes : {1e6, 1e7, 1e8}) {
    model.record_transfer(DeviceKind::cpu, DeviceKind::gpu, static_cast<std::size_t>(bytes),
                          1e-5 + bytes / 1e10);
  }
  EXPECT_NEAR(*model.transfer_seconds(DeviceKind::cpu, DeviceKind::gpu, 1'000'000'000), 0.10001,
              1e-6);
  EXPECT_FALSE(model.transfer_seconds(DeviceKind::gpu, DeviceKind::cpu, kMiB));
}

TEST(PerfModel, PersistsAcrossRunsInTheCacheFolder) {
  auto folder = std::filesystem::temp_directory_path() / "spindle_perf_model_test";
  std::filesystem::remove_all(folder);
  ::setenv("XDG_CACHE_HOME", folder.c_str(), 1);
  spindle::Topology topology = spindle::Topology::discover();
  std::string path = PerfModel::default_path(topology);
  EXPECT_EQ(path.rfind((folder / "spindle" / "perfmodel-").string(), 0), 0u) << path;
  {
    PerfModel model(PerfModel::machine_key(topology));
    for (int i = 0; i < 11; ++i) model.record("axpy", kMiB, DeviceKind::cpu, 2e-3);
    model.record_transfer(DeviceKind::cpu, DeviceKind::gpu, kMiB, 1e-4);
    model.save(path);
  }
  PerfModel later(PerfModel::machine_key(topology));
  EXPECT_EQ(later.load(path), "");
  EXPECT_DOUBLE_EQ(*later.estimate("axpy", kMiB, DeviceKind::cpu), 2e-3);
  EXPECT_NEAR(*later.transfer_seconds(DeviceKind::cpu, DeviceKind::gpu, 2 * kMiB), 2e-4, 1e-12);
  EXPECT_NE(later.to_string().find("axpy"), std::string::npos);

  // Another machine's file is not used.
  PerfModel elsewhere("another machine");
  EXPECT_NE(elsewhere.load(path).find("it describes machine"), std::string::npos);
  EXPECT_FALSE(elsewhere.estimate("axpy", kMiB, DeviceKind::cpu));
  ::unsetenv("XDG_CACHE_HOME");
  std::filesystem::remove_all(folder);
}

TEST(PerfModel, ADamagedFileIsIgnoredWithAWarningAndTheModelRebuilt) {
  auto path = std::filesystem::temp_directory_path() / "spindle_perf_model_damaged.json";
  PerfModel model("test");
  for (int i = 0; i < 11; ++i) model.record("sgd", kMiB, DeviceKind::gpu, 1e-3);
  model.save(path.string());
  std::string text;
  {
    std::ifstream in(path);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::ofstream(path, std::ios::trunc) << text.substr(0, text.size() / 2);  // cut short
  PerfModel loaded("test");
  std::string warning = loaded.load(path.string());
  EXPECT_NE(warning.find("ignored: damaged"), std::string::npos) << warning;
  EXPECT_FALSE(loaded.estimate("sgd", kMiB, DeviceKind::gpu));
  for (int i = 0; i < 11; ++i) loaded.record("sgd", kMiB, DeviceKind::gpu, 1e-3);  // rebuilt
  loaded.save(path.string());
  PerfModel again("test");
  EXPECT_EQ(again.load(path.string()), "");
  EXPECT_TRUE(again.estimate("sgd", kMiB, DeviceKind::gpu));
  EXPECT_EQ(PerfModel("test").load((path.string() + ".missing")), "");  // missing: no warning
  std::filesystem::remove(path);
}

TEST(PerfModel, RejectsDurationsThatAreNotTimes) {
  PerfModel model("test");
  EXPECT_THROW(model.record("x", 1, DeviceKind::cpu, -1), spindle::InvalidArgumentError);
  EXPECT_THROW(model.record_transfer(DeviceKind::cpu, DeviceKind::gpu, 1, NAN),
               spindle::InvalidArgumentError);
}

}  // namespace
