// The quickstart's ParameterServerShard: parameters (100 MB of float64 by default) in shards;
// workers pull every shard, concatenate, compute an update, split it and push it back. Then
// the same with shards and updates kept on the GPU (host memory where there is none), and a
// sequential baseline that does the same arithmetic on one plain vector. Each variant runs
// alone: the one before it is freed first, and its peak memory is its own. A STREAM-style
// copy measured first says what the memory bandwidth allows: this workload is bound by it.
//
//   sharded_parameter_server [--quick] [--mb 100] [--shards 2] [--workers 4] [--iterations 10]
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "sample_support.hpp"
#include "spindle/spindle.hpp"

namespace {

// The best of three copies of `n` doubles by `threads` threads, each its own part, in GB/s
// counted as STREAM counts a copy (bytes read plus bytes written).
double copy_bandwidth(std::size_t n, unsigned threads) {
  std::vector<double> from(n, 1.0), to(n, 0.0);
  double best = 0;
  for (int repeat = 0; repeat < 3; ++repeat) {
    samples::Stopwatch clock;
    std::vector<std::thread> copiers;
    for (unsigned t = 0; t < threads; ++t) {
      copiers.emplace_back([&, t] {
        std::size_t begin = n * t / threads, end = n * (t + 1) / threads;
        std::memcpy(to.data() + begin, from.data() + begin, (end - begin) * sizeof(double));
      });
    }
    for (auto& copier : copiers) copier.join();
    best = std::max(best, 2.0 * static_cast<double>(n * sizeof(double)) / clock.seconds() / 1e9);
  }
  return best;
}

double mean(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

struct Variant {
  const char* name;
  double seconds = 0;
  double mean = 0;
  double peak_mib = 0;
};

// Runs `body` (which returns the mean parameter) with the peak memory counted from here.
template <typename Body>
Variant run(const char* name, Body body) {
  samples::reset_peak_memory();
  samples::Stopwatch clock;
  Variant variant{name};
  variant.mean = body(clock, variant.seconds);
  variant.peak_mib = samples::peak_memory_mib();
  return variant;
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
  const double copy_one = copy_bandwidth(n, 1), copy_all = copy_bandwidth(n, rt.num_workers());
  std::printf("  memory bandwidth, STREAM-style copy of %.0f MB: %.1f GB/s on 1 thread, %.1f GB/s "
              "on %u\n",
              flags["mb"], copy_one, copy_all, rt.num_workers());

  // Sequential: one vector, the same pulls, gradients and updates, one after another.
  Variant sequential = run("sequential (one vector, one thread)", [&](auto& clock, double& t) {
    std::vector<double> reference(n, 1.0), pulled(n), gradient(n);
    for (long step = 0; step < workers * iterations; ++step) {
      pulled = reference;
      samples::compute_gradient(pulled, gradient);
      spindle::kernels::cpu::sgd<double>(reference.data(), gradient.data(), nullptr, n,
                                         {.lr = 0.1});
    }
    t = clock.seconds();
    return mean(reference);
  });

  spindle::ParameterServerOptions options{
      .num_shards = static_cast<std::size_t>(flags["shards"]), .lr = 0.1, .use_gpus = false};
  std::uint64_t steps = 0;

  // Host shards, workers as tasks: pull all (each shard copies into the worker's vector),
  // compute, push views of the gradient (each shard reads its slice in place).
  Variant host = run("host shards, workers as tasks", [&](auto& clock, double& t) {
    spindle::ParameterServer<double> ps(rt, std::vector<double>(n, 1.0), options);
    clock = samples::Stopwatch();
    auto worker = rt.task([&ps, iterations](long) {
      std::vector<double> params(ps.size()), gradient(ps.size());
      for (long i = 0; i < iterations; ++i) {
        ps.pull(params);
        samples::compute_gradient(params, gradient);
        (void)spindle::get(ps.push_view(gradient));  // all done, even if one failed
      }
    });
    std::vector<spindle::ObjectRef<void>> done;
    for (long w = 0; w < workers; ++w) done.push_back(worker.remote(w));
    for (const auto& ref : done) ref.get();
    t = clock.seconds();
    steps = ps.steps().front();
    return mean(ps.pull());
  });

  // Device-resident: shards on the GPUs, and workers that build the gradient on the GPU
  // from the shards' buffers (host memory where there is no GPU).
  const bool gpus = spindle::device_count() > 0;
  options.use_gpus = true;
  Variant device = run(gpus ? "GPU shards, workers on the GPU"
                            : "device-resident variant (host memory, no GPU)",
                       [&](auto& clock, double& t) {
    spindle::ParameterServer<double> ps(rt, std::vector<double>(n, 1.0), options);
    clock = samples::Stopwatch();
    auto worker = rt.task([&ps, iterations](long) {
      spindle::Buffer<double> gradient(ps.size()), offset(ps.size());  // where this runs
      spindle::ops::fill(offset, 1e-6);
      for (long i = 0; i < iterations; ++i) {
        ps.pull(gradient);  // concatenated, where the gradient lives
        spindle::ops::scale(gradient, 1e-3);
        spindle::ops::axpy(gradient, 1.0, offset);
        (void)spindle::get(ps.push_view(gradient));  // copied only to a GPU
      }
    });
    std::vector<spindle::ObjectRef<void>> done;
    for (long w = 0; w < workers; ++w) {
      done.push_back(worker.options({.num_gpus = gpus ? 0.5 : 0.0}).remote(w));
    }
    for (const auto& ref : done) ref.get();
    t = clock.seconds();
    return mean(ps.pull());
  });

  std::printf("%ld updates per shard; mean parameter: sequential %.6f, host shards %.6f, %s "
              "shards %.6f\n",
              static_cast<long>(steps), sequential.mean, host.mean,
              gpus ? "GPU" : "host-memory (no GPU)", device.mean);
  // Each step reads and writes the parameters in its pull (2n), its gradient (2n) and its
  // update (3n: parameters and gradient read, parameters written), in every variant.
  const double traffic_gb = 7.0 * static_cast<double>(workers * iterations) *
                            static_cast<double>(n * sizeof(double)) / 1e9;
  for (const Variant* variant : {&sequential, &host, &device}) {
    samples::report(variant->name, variant->seconds,
                    variant == &sequential ? 0 : sequential.seconds);
  }
  std::printf("  memory traffic of the workload: %.1f GB\n", traffic_gb);
  for (const Variant* variant : {&sequential, &host, &device}) {
    double rate = traffic_gb / variant->seconds;
    std::printf("  %-44s %5.1f GB/s = %3.0f%% of the %u-thread copy; peak memory %.0f MiB\n",
                variant->name, rate, 100 * rate / copy_all, rt.num_workers(), variant->peak_mib);
  }
  return 0;
}
