// The GPU path: CUDA kernels against their CPU twins, buffer copies in every direction, the
// task's device and stream, replicas for consumers on other devices, CUDA errors. Every case
// is skipped, with the reason, where no GPU is present.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <vector>

#include "spindle/spindle.hpp"
#include "support/values.hpp"

namespace {

using spindle::testing::random_values;

using spindle::Buffer;
using spindle::Location;
namespace kernels = spindle::kernels;

class Gpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (spindle::device_count() == 0) {
      GTEST_SKIP() << "no GPU: " << spindle::Topology::discover().gpu_note;
    }
  }
};

// Element-wise kernels may differ from the twins by fused multiply-adds.
template <typename T>
void expect_close(const std::vector<T>& got, const std::vector<T>& want) {
  const double tolerance = std::is_same_v<T, float> ? 1e-5 : 1e-13;
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tolerance * (1 + std::abs(want[i]))) << "at " << i;
  }
}

// Runs one update on the CPU twin and on the GPU, from the same start, with every array
// offset by `offset` elements (1 makes the pointers misaligned: the scalar path).
template <typename T>
void compare_updates(std::size_t n, std::size_t offset) {
  const std::size_t total = n + offset;
  std::vector<std::vector<T>> host;
  for (unsigned k = 0; k < 4; ++k) host.push_back(random_values<T>(total, 40 + k));
  for (T& v : host[3]) v = std::abs(v);  // a second moment is not negative
  std::vector<Buffer<T>> gpu;
  for (const auto& values : host) gpu.emplace_back(values, Location::gpu(0));
  auto h = [&](unsigned k) { return host[k].data() + offset; };
  auto d = [&](unsigned k) { return gpu[k].data() + offset; };
  spindle::Stream stream = spindle::this_task::stream();

  kernels::Sgd sgd{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true};
  kernels::cpu::sgd<T>(h(0), h(1), h(2), n, sgd);
  kernels::cuda::sgd<T>(d(0), d(1), d(2), n, sgd, stream);
  kernels::Adam adam{.lr = 1e-2, .weight_decay = 0.1, .decoupled = true, .step = 2};
  kernels::cpu::adam<T>(h(0), h(1), h(2), h(3), n, adam);
  kernels::cuda::adam<T>(d(0), d(1), d(2), d(3), n, adam, stream);
  kernels::cpu::axpy<T>(h(1), T(0.5), h(0), n);
  kernels::cuda::axpy<T>(d(1), T(0.5), d(0), n, stream);
  kernels::cpu::scale<T>(h(2), T(-2), n);
  kernels::cuda::scale<T>(d(2), T(-2), n, stream);
  std::vector<const T*> host_in = {h(0), h(1), h(2)}, gpu_in = {d(0), d(1), d(2)};
  kernels::cpu::aggregate<T>(h(3), host_in, n, kernels::Reduction::mean);
  kernels::cuda::aggregate<T>(d(3), gpu_in, n, kernels::Reduction::mean, stream);
  for (unsigned k = 0; k < 4; ++k) expect_close(gpu[k].to_vector(), host[k]);

  Buffer<T> result(2, Location::gpu(0));
  kernels::cuda::dot<T>(d(0), d(1), n, result.data(), stream);
  kernels::cuda::norm2<T>(d(2), n, result.data() + 1, stream);
  T want_dot = 0, want_norm = 0;
  kernels::cpu::dot<T>(h(0), h(1), n, &want_dot);
  kernels::cpu::norm2<T>(h(2), n, &want_norm);
  std::vector<T> got = result.to_vector();
  const double tolerance = (std::is_same_v<T, float> ? 1e-5 : 1e-12) * (1 + std::sqrt(double(n)));
  EXPECT_NEAR(got[0], want_dot, tolerance);
  EXPECT_NEAR(got[1], want_norm, tolerance);
}

TEST_F(Gpu, KernelsMatchTheirCpuTwins) {
  for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{1001}, std::size_t{1 << 20}}) {
    for (std::size_t offset : {0, 1}) {
      SCOPED_TRACE("n = " + std::to_string(n) + ", offset = " + std::to_string(offset));
      compare_updates<float>(n, offset);
      compare_updates<double>(n, offset);
    }
  }
}

TEST_F(Gpu, BuffersCopyInEveryDirection) {
  // 20 MB crosses the 8 MB staging chunks of pageable copies.
  auto values = random_values<float>(5 << 20, 50);
  Buffer<float> on_gpu(values, Location::gpu(0));  // pageable host to GPU, staged
  EXPECT_EQ(on_gpu.location(), Location::gpu(0));
  EXPECT_EQ(on_gpu.to_vector(), values);  // GPU to pageable host, staged
  Buffer<float> pinned = on_gpu.to(Location::pinned());
  EXPECT_EQ(pinned.location(), Location::pinned());
  EXPECT_EQ(pinned.to_vector(), values);
  Buffer<float> again(values.size(), Location::gpu(0));
  again.copy_from(pinned);                          // pinned to GPU
  Buffer<float> twin = again.to(Location::gpu(0));  // GPU to GPU
  EXPECT_EQ(twin.to_vector(), values);
  if (spindle::device_count() > 1) {
    Buffer<float> peer = twin.to(Location::gpu(1));
    EXPECT_EQ(peer.to_vector(), values);
  }
  EXPECT_THROW((void)on_gpu.host_span(), spindle::DeviceError);
}

TEST_F(Gpu, ATaskRunsOnItsGpuBeforeAndAfterSuspending) {
  spindle::Runtime rt({.num_cpus = 2, .num_workers = 1});
  auto probe = rt.task([] {
                   int before = -1, after = -1;
                   cudaGetDevice(&before);
                   spindle::Stream first = spindle::this_task::stream();
                   spindle::this_task::sleep_for(std::chrono::milliseconds(1));
                   cudaGetDevice(&after);
                   return std::make_tuple(spindle::this_task::gpu_ids().at(0), before, after,
                                          first == spindle::this_task::stream(), first.device(),
                                          first.native_handle() != nullptr);
                 }).options({.num_gpus = 1});
  int last = spindle::device_count() - 1;
  // Another fiber on the same worker switches devices meanwhile.
  auto other = rt.task([&] {
                   cudaSetDevice(last);
                   spindle::this_task::sleep_for(std::chrono::milliseconds(2));
                 }).remote();
  auto [gpu, before, after, same_stream, stream_device, real] = probe.remote().get();
  other.get();
  EXPECT_EQ(before, gpu);
  EXPECT_EQ(after, gpu);
  EXPECT_TRUE(same_stream);
  EXPECT_EQ(stream_device, gpu);
  EXPECT_TRUE(real);
}

TEST_F(Gpu, ATaskResultIsReadyOnlyAfterItsGpuWorkFinished) {
  spindle::Runtime rt({.num_cpus = 2});
  const std::size_t n = 1 << 24;
  auto made = rt.task([n] {
                  Buffer<double> b(n);
                  for (int i = 0; i < 20; ++i) spindle::ops::axpy(b, 1.0, b);  // queued only
                  spindle::ops::fill(b, 3.0);
                  return b;
                }).options({.num_gpus = 1});
  auto ref = made.remote();
  const Buffer<double>& b = ref.get();
  EXPECT_EQ(b.location(), Location::gpu(0));
  // Read on the raw API, outside spindle's streams: the work must already be done.
  std::vector<double> host(n);
  ASSERT_EQ(cudaMemcpy(host.data(), b.data(), n * sizeof(double), cudaMemcpyDeviceToHost),
            cudaSuccess);
  EXPECT_EQ(host.front(), 3.0);
  EXPECT_EQ(host.back(), 3.0);
}

TEST_F(Gpu, AHostConsumerOfAGpuBufferGetsACopyShownInTheTimeline) {
  spindle::Runtime rt({.num_cpus = 2, .timeline = true});
  auto ref = rt.task([] {
                 return Buffer<float>(std::vector<float>{1, 2, 3});
               })
                 .options({.num_gpus = 0.5})
                 .remote();
  auto sum = [](const Buffer<float>& b) {
    float s = 0;
    for (float v : b.host_span()) s += v;
    return std::make_pair(s, b.location());
  };
  auto first = rt.task(sum).remote(ref), second = rt.task(sum).remote(ref);
  EXPECT_EQ(first.get(), std::make_pair(6.0f, Location::host()));
  EXPECT_EQ(second.get(), std::make_pair(6.0f, Location::host()));
  EXPECT_EQ(ref.get().location(), Location::gpu(0));
  auto path = std::filesystem::temp_directory_path() / "spindle_cuda_timeline.json";
  rt.timeline(path.string());
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  std::string json = text.str();
  std::size_t at = json.find("copy of a Buffer from GPU 0 to host");
  ASSERT_NE(at, std::string::npos) << json;
  EXPECT_EQ(json.find("copy of a Buffer from GPU 0 to host", at + 1), std::string::npos)
      << "the copy is made once and kept";
  std::filesystem::remove(path);
}

// A codelet on a real GPU: its GPU implementation runs with the GPU current and its buffers
// there; placement learns both kinds, and a consumer of GPU-resident data follows it there.
TEST_F(Gpu, ACodeletRunsItsCudaImplementationOnTheGpuAndFollowsItsData) {
  spindle::Runtime rt({.num_gpus = 1,
                       .placement = spindle::placement::Policy::earliest_finish,
                       .perf_model_file = ""});
  auto scale = rt.task(spindle::codelet(
      "scale",
      [](const Buffer<float>& x) {
        Buffer<float> y(x.size(), Location::host());
        y.copy_from(x);
        spindle::ops::scale(y, 2.0f);
        return y.to_vector();
      },
      [](const Buffer<float>& x) {
        EXPECT_EQ(Location::here(), Location::gpu(0));
        EXPECT_EQ(x.location(), Location::gpu(0));  // the replica where it runs
        Buffer<float> y(x.size());
        y.copy_from(x);
        spindle::ops::scale(y, 2.0f);
        return y.to_vector();
      }));
  std::vector<float> values = random_values<float>(1 << 16, 9), doubled = values;
  for (float& v : doubled) v *= 2;
  auto on_host = rt.put(Buffer<float>(values, Location::host()));
  auto pinned = scale.options({.device = spindle::DeviceKind::gpu});
  EXPECT_EQ(pinned.remote(on_host).get(), doubled);
  // Calibrate both kinds, then a consumer of data on the GPU, where the GPU is not slower,
  // stays there.
  for (std::size_t i = 0; i < 2 * (spindle::PerfModel::kCalibrationSamples + 2); ++i) {
    EXPECT_EQ(scale.remote(on_host).get(), doubled);
  }
  const std::size_t bytes = values.size() * sizeof(float);
  EXPECT_TRUE(rt.perf_model().estimate("scale", bytes, spindle::DeviceKind::gpu));
  EXPECT_TRUE(
      rt.perf_model().transfer_seconds(spindle::DeviceKind::cpu, spindle::DeviceKind::gpu, bytes));
  // A Buffer on the GPU draws its consumer there when moving it costs more than the CPU's
  // lead; the same on the host stays on the CPU.
  for (std::size_t i = 0; i <= spindle::PerfModel::kCalibrationSamples; ++i) {
    rt.perf_model().record("consume", bytes, spindle::DeviceKind::cpu, 1e-3);
    rt.perf_model().record("consume", bytes, spindle::DeviceKind::gpu, 1.5e-3);
  }
  rt.perf_model().record_transfer(spindle::DeviceKind::gpu, spindle::DeviceKind::cpu, bytes, 5e-3);
  auto consume = rt.task(spindle::codelet(
      "consume", [](const Buffer<float>&) { return spindle::DeviceKind::cpu; },
      [](const Buffer<float>&) { return spindle::DeviceKind::gpu; }));
  EXPECT_EQ(consume.remote(rt.put(Buffer<float>(values, Location::gpu(0)))).get(),
            spindle::DeviceKind::gpu);
  EXPECT_EQ(consume.remote(on_host).get(), spindle::DeviceKind::cpu);
}

TEST_F(Gpu, CudaErrorsBecomeDeviceErrorsNamingTheCallAndDevice) {
  try {
    Buffer<char> huge(std::size_t{1} << 50, Location::gpu(0));
    FAIL() << "a petabyte was allocated";
  } catch (const spindle::DeviceError& error) {
    EXPECT_NE(std::string(error.what()).find("cudaMallocAsync(1125899906842624 bytes) on GPU 0"),
              std::string::npos)
        << error.what();
  }
  Buffer<float> host(3, Location::host()), gpu(3, Location::gpu(0));
  try {
    spindle::ops::axpy(gpu, 1.0f, host);
    FAIL() << "an operation mixed host and GPU buffers";
  } catch (const spindle::DeviceError& error) {
    EXPECT_STREQ(error.what(),
                 "ops::axpy: x is on host but y is on GPU 0; an operation's buffers must be in "
                 "one place (copy with Buffer::to)");
  }
}

// ---- kernels: the shapes the first comparison missed --------------------------------------

template <typename T>
std::vector<Buffer<T>> on_gpu(const std::vector<std::vector<T>>& host) {
  std::vector<Buffer<T>> buffers;
  for (const auto& values : host) buffers.emplace_back(values, Location::gpu(0));
  return buffers;
}

template <typename T>
void compare_aggregate(std::size_t inputs, kernels::Reduction reduction, bool out_is_input) {
  const std::size_t n = 1001;
  std::vector<std::vector<T>> host;
  for (std::size_t k = 0; k <= inputs; ++k) host.push_back(random_values<T>(n, 60 + k));
  std::vector<Buffer<T>> gpu = on_gpu(host);
  std::vector<const T*> host_in, gpu_in;
  for (std::size_t k = 1; k <= inputs; ++k) {
    host_in.push_back(host[k].data());
    gpu_in.push_back(gpu[k].data());
  }
  std::size_t out = out_is_input ? 1 : 0;  // out is inputs[0] itself
  kernels::cpu::aggregate<T>(host[out].data(), host_in, n, reduction);
  kernels::cuda::aggregate<T>(gpu[out].data(), gpu_in, n, reduction, spindle::this_task::stream());
  expect_close(gpu[out].to_vector(), host[out]);
}

TEST_F(Gpu, AggregateTakesFewAndManyInputsAndAnOutputThatIsAnInput) {
  for (std::size_t inputs : {std::size_t{4}, std::size_t{17}, std::size_t{256}}) {
    for (auto reduction : {kernels::Reduction::sum, kernels::Reduction::mean}) {
      for (bool out_is_input : {false, true}) {
        SCOPED_TRACE(std::to_string(inputs) + " inputs, " +
                     (reduction == kernels::Reduction::sum ? "sum" : "mean") +
                     (out_is_input ? ", out = inputs[0]" : ""));
        compare_aggregate<float>(inputs, reduction, out_is_input);
        compare_aggregate<double>(inputs, reduction, out_is_input);
      }
    }
  }
}

// Plain SGD and coupled Adam (weight decay added to the gradient), at offsets that give every
// path: all aligned (0, 0), one shared misalignment peeled (1, 1), mixed (0, 1: scalar).
template <typename T>
void compare_plain_updates(std::size_t n, std::size_t params_offset, std::size_t other_offset) {
  const std::size_t total = n + 2;
  std::vector<std::vector<T>> host;
  for (unsigned k = 0; k < 4; ++k) host.push_back(random_values<T>(total, 70 + k));
  for (T& v : host[3]) v = std::abs(v);
  std::vector<Buffer<T>> gpu = on_gpu(host);
  auto h = [&](unsigned k) { return host[k].data() + (k == 0 ? params_offset : other_offset); };
  auto d = [&](unsigned k) { return gpu[k].data() + (k == 0 ? params_offset : other_offset); };
  spindle::Stream stream = spindle::this_task::stream();
  kernels::Sgd sgd{.lr = 0.05, .weight_decay = 0.01};
  kernels::cpu::sgd<T>(h(0), h(1), nullptr, n, sgd);
  kernels::cuda::sgd<T>(d(0), d(1), nullptr, n, sgd, stream);
  kernels::Adam adam{.lr = 1e-2, .weight_decay = 0.1, .decoupled = false, .step = 3};
  kernels::cpu::adam<T>(h(0), h(1), h(2), h(3), n, adam);
  kernels::cuda::adam<T>(d(0), d(1), d(2), d(3), n, adam, stream);
  kernels::cpu::fill<T>(h(1), T(0.25), n);
  kernels::cuda::fill<T>(d(1), T(0.25), n, stream);
  for (unsigned k = 0; k < 4; ++k) expect_close(gpu[k].to_vector(), host[k]);
  Buffer<T> result(1, Location::gpu(0));
  kernels::cuda::dot<T>(d(0), d(2), n, result.data(), stream);
  T want = 0;
  kernels::cpu::dot<T>(h(0), h(2), n, &want);
  const double tolerance = (std::is_same_v<T, float> ? 1e-5 : 1e-12) * (1 + std::sqrt(double(n)));
  EXPECT_NEAR(result.to_vector()[0], want, tolerance);
}

TEST_F(Gpu, PlainSgdAndCoupledAdamMatchTheTwinsAtEveryAlignment) {
  for (std::size_t n : {std::size_t{0}, std::size_t{3}, std::size_t{4099}, std::size_t{1 << 20}}) {
    for (auto [p, other] : {std::pair{0, 0}, std::pair{1, 1}, std::pair{0, 1}, std::pair{2, 1}}) {
      SCOPED_TRACE("n = " + std::to_string(n) + ", offsets " + std::to_string(p) + " and " +
                   std::to_string(other));
      compare_plain_updates<float>(n, p, other);
      compare_plain_updates<double>(n, p, other);
    }
  }
}

TEST_F(Gpu, ArraysAbove2To31ElementsAreUpdatedToTheirLastElement) {
  const std::size_t n = (std::size_t{1} << 31) + 37;
  std::size_t free = 0, total = 0;
  ASSERT_EQ(cudaMemGetInfo(&free, &total), cudaSuccess);
  if (free < 3 * n * sizeof(float) + (std::size_t{1} << 30)) {
    GTEST_SKIP() << "needs " << 3 * n * sizeof(float) / (1 << 20) << " MiB free on GPU 0; "
                 << free / (1 << 20) << " MiB are";
  }
  Buffer<float> x = Buffer<float>::uninitialized(n, Location::gpu(0));
  Buffer<float> y = Buffer<float>::uninitialized(n, Location::gpu(0));
  spindle::ops::fill(x, 1.0f);
  spindle::ops::fill(y, 2.0f);
  spindle::ops::axpy(y, 3.0f, x);  // 5 everywhere
  Buffer<float> last(4, Location::host());
  last.copy_from(y, n - 4);
  EXPECT_EQ(last.to_vector(), std::vector<float>(4, 5.0f));
  Buffer<float> first(4, Location::host());
  first.copy_from(y, 0);
  EXPECT_EQ(first.to_vector(), std::vector<float>(4, 5.0f));
  // The sum of n ones, exact in double; float sums of 2^31 ones are not, so the check is
  // relative.
  EXPECT_NEAR(spindle::ops::dot(x, x), static_cast<double>(n), 1e-3 * n);
}

// ---- errors: an old error is not a new launch's --------------------------------------------

TEST_F(Gpu, ALaunchAfterACaughtCudaErrorSucceeds) {
  auto fail_then_launch = [] {
    EXPECT_THROW(Buffer<char>(std::size_t{1} << 50, Location::gpu(0)), spindle::DeviceError);
    EXPECT_EQ(cudaPeekAtLastError(), cudaSuccess) << "the caught error was left for others";
    Buffer<float> b(1000, Location::gpu(0));
    spindle::ops::fill(b, 4.0f);  // threw cudaErrorMemoryAllocation before the fix
    return b.to_vector();
  };
  EXPECT_EQ(fail_then_launch(), std::vector<float>(1000, 4.0f));
  spindle::Runtime rt({.num_cpus = 1, .num_workers = 1});
  // Two tasks on one worker thread: the second must not inherit the first's error.
  auto failing = rt.task([] {
                     Buffer<char> huge(std::size_t{1} << 50);
                     return huge.size();
                   }).options({.num_gpus = 1});
  auto launching = rt.task([] {
                       Buffer<float> b(1000);
                       spindle::ops::fill(b, 4.0f);
                       return b.to_vector();
                     }).options({.num_gpus = 1});
  EXPECT_THROW(failing.remote().get(), spindle::TaskError);
  EXPECT_EQ(launching.remote().get(), std::vector<float>(1000, 4.0f));
  EXPECT_EQ(rt.task(fail_then_launch).options({.num_gpus = 1}).remote().get(),
            std::vector<float>(1000, 4.0f));
}

// ---- streams: every use waits for the one before ------------------------------------------

TEST_F(Gpu, ABufferMadeOutsideATaskIsReadyInsideOne) {
  spindle::Runtime rt({.num_cpus = 2});
  const std::size_t n = 1 << 24;
  for (int round = 0; round < 3; ++round) {
    Buffer<double> b(n, Location::gpu(0));  // zero fill queued on the shared stream
    for (int i = 0; i < 10; ++i) spindle::ops::scale(b, 2.0);
    spindle::ops::fill(b, 1.5);  // queued only
    auto ref = rt.put(std::move(b));
    auto sum = rt.task([](const Buffer<double>& values) {
                   return spindle::ops::dot(values, values);
                 }).options({.num_gpus = 1});
    EXPECT_EQ(sum.remote(ref).get(), 2.25 * n);
  }
}

TEST_F(Gpu, AConsumerOnAnotherStreamWaitsForTheProducersKernels) {
  spindle::Runtime rt({.num_cpus = 2});
  const std::size_t n = 1 << 24;
  auto read = rt.task([](const Buffer<float>& b) {
                  return std::make_pair(b.to_vector().back(), spindle::ops::norm2(b));
                }).options({.num_gpus = 0.5});
  // The producer starts the reader itself, while its own kernels may still be queued on its
  // stream: the reader's stream must wait for them (and the free for both).
  auto produce = rt.task([&rt, &read, n] {
                     Buffer<float> b(n);
                     for (int i = 0; i < 20; ++i) spindle::ops::axpy(b, 1.0f, b);
                     spindle::ops::fill(b, 3.0f);
                     return read.remote(rt.put(std::move(b)));
                   }).options({.num_gpus = 0.5});
  auto [back, norm] = produce.remote().get().get();
  EXPECT_EQ(back, 3.0f);
  EXPECT_NEAR(norm, 3.0 * std::sqrt(double(n)), 1e-3 * norm);
}

TEST_F(Gpu, OpsOnABufferOfAnotherGpuFinishBeforeTheTaskResult) {
  if (spindle::device_count() < 2) GTEST_SKIP() << "needs two GPUs; this machine has one";
  spindle::Runtime rt({.num_cpus = 2});
  const std::size_t n = 1 << 24;
  auto made = rt.task([n] {
                  int other = spindle::this_task::gpu_ids().at(0) == 0 ? 1 : 0;
                  Buffer<double> b(n, Location::gpu(other));  // not the task's GPU
                  for (int i = 0; i < 20; ++i) spindle::ops::axpy(b, 1.0, b);
                  spindle::ops::fill(b, 3.0);
                  return b;
                }).options({.num_gpus = 1});
  auto ref = made.remote();
  const Buffer<double>& b = ref.get();
  ASSERT_TRUE(b.location().on_gpu());
  std::vector<double> host(n);
  ASSERT_EQ(cudaMemcpy(host.data(), b.data(), n * sizeof(double), cudaMemcpyDeviceToHost),
            cudaSuccess);
  EXPECT_EQ(host.back(), 3.0);
}

TEST_F(Gpu, ACopyToAnotherGpuWaitsForTheWorkOnItsSource) {
  if (spindle::device_count() < 2) GTEST_SKIP() << "needs two GPUs; this machine has one";
  const std::size_t n = 1 << 24;
  Buffer<float> g(n, Location::gpu(0));
  for (int i = 0; i < 20; ++i) spindle::ops::scale(g, 2.0f);
  spindle::ops::fill(g, 7.0f);
  Buffer<float> there = g.to(Location::gpu(1));
  EXPECT_EQ(there.to_vector(), std::vector<float>(n, 7.0f));
}

// ---- actors: a restart keeps the actor's GPU ------------------------------------------------

TEST_F(Gpu, AShardRestartsOnItsGpuAndGoesOnFromItsState) {
  using Shard = spindle::ParameterServer<float>::Shard;
  spindle::Runtime rt({.num_cpus = 2});
  spindle::ParameterServerOptions options{.num_shards = 1, .lr = 0.5};
  auto shard = rt.actor<Shard>()
                   .options({.num_gpus = 1, .max_restarts = 1})
                   .remote(Shard::initial_state(std::vector<float>(1000, 1.0f)), options);
  const Location at = shard.call(&Shard::pull).get().get().location();
  ASSERT_TRUE(at.on_gpu()) << "a shard granted a GPU keeps its values there";
  auto push = [&] {
    return shard.call(&Shard::push, spindle::detail::next_push_id(),
                      std::make_shared<const Buffer<float>>(std::vector<float>(1000, 1.0f), at));
  };
  EXPECT_EQ(push().get(), 1u);
  rt.kill(shard, {.no_restart = false});  // a crash: rebuilt over the state it kept
  EXPECT_EQ(push().get(), 2u) << "the rebuilt shard goes on from its step count";
  auto values = shard.call(&Shard::pull).get();
  EXPECT_EQ(values.get().location(), at) << "the rebuilt shard left its GPU";
  EXPECT_EQ(values.get().to_vector(), std::vector<float>(1000, 0.0f));
}

}  // namespace
