// The quickstart's ParameterServerShard: parameters (100 MB of float64 by default) in shards;
// workers pull every shard, concatenate, compute an update, split it and push it back. Then
// the same with shards and updates kept on the GPU (host memory where there is none), and a
// sequential baseline that does the same arithmetic on one plain vector.
//
//   sharded_parameter_server [--quick] [--mb 100] [--shards 2] [--workers 4] [--iterations 10]
#include <algorithm>
#include <cstdio>
#include <vector>

#include "sample_support.hpp"
#include "spindle/spindle.hpp"

namespace {

// The update a worker computes from the parameters: a gradient that pulls them toward 0.
void compute_gradient(const std::vector<double>& params, std::vector<double>& gradient) {
  for (std::size_t i = 0; i < params.size(); ++i) gradient[i] = 1e-3 * params[i] + 1e-6;
}

}  // namespace

int main(int argc, char** argv) {
  samples::Flags flags(argc, argv,
                       {{"mb", {100, 4, "parameters, in MB of float64", 0.01, 65536, false}},
                        {"shards", {2, 2, "shards", 1, 1024}},
                        {"workers", {4, 2, "workers pushing at once", 1, 10000}},
                        {"iterations", {10, 2, "iterations per worker", 1, 1e6}}});
  const std::size_t n = static_cast<std::size_t>(flags["mb"] * (1 << 20) / sizeof(double));
  const long workers = flags.count("workers"), iterations = flags.count("iterations");
  spindle::Runtime rt;
  std::printf(
      "sharded parameter server: %zu float64 (%.0f MB) in %ld shards, %ld workers x %ld "
      "iterations, %u runtime workers, %d GPU(s)\n",
      n, flags["mb"], flags.count("shards"), workers, iterations, rt.num_workers(),
      spindle::device_count());

  // Sequential: one vector, the same pulls, gradients and updates, one after another.
  samples::Stopwatch sequential_clock;
  std::vector<double> reference(n, 1.0), pulled(n), gradient(n);
  for (long step = 0; step < workers * iterations; ++step) {
    pulled = reference;
    compute_gradient(pulled, gradient);
    spindle::kernels::cpu::sgd<double>(reference.data(), gradient.data(), nullptr, n, {.lr = 0.1});
  }
  double sequential = sequential_clock.seconds();

  // Host shards, workers as tasks: pull all, concatenate, compute, split and push.
  spindle::ParameterServerOptions options{
      .num_shards = static_cast<std::size_t>(flags["shards"]), .lr = 0.1, .use_gpus = false};
  spindle::ParameterServer<double> host(rt, std::vector<double>(n, 1.0), options);
  auto worker = rt.task([&host, iterations](long) {
    std::vector<double> params(host.size()), gradient(host.size());
    for (long i = 0; i < iterations; ++i) {
      host.pull(params);  // every shard, concatenated
      compute_gradient(params, gradient);
      for (const auto& ref : host.push(gradient)) ref.get();  // split by shard
    }
  });
  samples::Stopwatch host_clock;
  std::vector<spindle::ObjectRef<void>> done;
  for (long w = 0; w < workers; ++w) done.push_back(worker.remote(w));
  for (const auto& ref : done) ref.get();
  double host_seconds = host_clock.seconds();

  // Device-resident: shards on the GPUs, and workers that build the gradient on the GPU
  // from the shards' buffers (host memory where there is no GPU).
  options.use_gpus = true;
  spindle::ParameterServer<double> device(rt, std::vector<double>(n, 1.0), options);
  auto device_worker = rt.task([&device, iterations](long) {
    spindle::Buffer<double> gradient(device.size()), offset(device.size());  // where this runs
    spindle::ops::fill(offset, 1e-6);
    for (long i = 0; i < iterations; ++i) {
      std::vector<spindle::ObjectRef<spindle::Buffer<double>>> shards = device.pull_shards();
      for (std::size_t s = 0; s < shards.size(); ++s) {
        shards[s].get().copy_to(gradient, device.range(s).first);  // concatenate
      }
      spindle::ops::scale(gradient, 1e-3);
      spindle::ops::axpy(gradient, 1.0, offset);
      for (const auto& ref : device.push(gradient)) ref.get();  // split by shard
    }
  });
  samples::Stopwatch device_clock;
  done.clear();
  for (long w = 0; w < workers; ++w) {
    done.push_back(
        device_worker.options({.num_gpus = spindle::device_count() > 0 ? 0.5 : 0.0}).remote(w));
  }
  for (const auto& ref : done) ref.get();
  double device_seconds = device_clock.seconds();

  auto mean = [](const std::vector<double>& values) {
    double sum = 0;
    for (double v : values) sum += v;
    return sum / static_cast<double>(values.size());
  };
  std::vector<std::uint64_t> steps = host.steps();
  std::printf(
      "%ld updates per shard; mean parameter: sequential %.6f, host shards %.6f, %s "
      "shards %.6f\n",
      static_cast<long>(steps.front()), mean(reference), mean(host.pull()),
      spindle::device_count() > 0 ? "GPU" : "host-memory (no GPU)", mean(device.pull()));
  const double moved_gb = 2.0 * static_cast<double>(workers * iterations) *
                          static_cast<double>(n * sizeof(double)) / 1e9;  // pulls + pushes
  samples::report("sequential (one vector, one thread)", sequential);
  samples::report("host shards, workers as tasks", host_seconds, sequential);
  samples::report(spindle::device_count() > 0 ? "GPU shards, workers on the GPU"
                                              : "device-resident variant (host memory, no GPU)",
                  device_seconds, sequential);
  std::printf(
      "  parameters moved (pulls + pushes): %.1f GB; host shards %.1f GB/s, "
      "device-resident %.1f GB/s\n",
      moved_gb, moved_gb / host_seconds, moved_gb / device_seconds);
  return 0;
}
