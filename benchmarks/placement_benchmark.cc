// Placement policies on the mixed workload, in simulation (virtual time, declared devices):
// makespan, ratio to the lower bound, utilisation, bytes moved. The model-based policy runs
// twice: first calibrating its model, then with it (StarPU calibrates over runs the same way).
//
// --real also runs the workload for real, as codelets on Buffers, under each policy: on the
// GPUs when there are any, else on one logical GPU (which runs on the host, so the figures
// only show that the path works). --plot writes the simulated table as a PNG (gnuplot).
//
//   placement_benchmark [--quick] [--cpus 2] [--gpus 1] [--scale 4] [--real] [--plot out.png]
//   (--help lists the flags and their ranges)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "plot.hpp"
#include "sample_support.hpp"
#include "spindle/spindle.hpp"

namespace placement = spindle::placement;
using spindle::Buffer;

namespace {

std::atomic<std::size_t> ran_on_gpu{0};

// One implementation serves both devices: ops run where their buffers live, and a new
// Buffer lives where the task runs.
Buffer<float> work(const Buffer<float>& input, int passes) {
  if (spindle::this_task::device_kind() == spindle::DeviceKind::gpu) ++ran_on_gpu;
  Buffer<float> output = Buffer<float>::uninitialized(input.size());
  output.copy_from(input);
  for (int i = 0; i < passes; ++i) spindle::ops::axpy(output, 0.5f, input);
  return output;
}

struct RealRun {
  double seconds = 0;
  std::size_t on_gpu = 0;
};

// The workload as codelets; the second of two runs on one runtime (the first calibrates).
RealRun run_real(const placement::Workload& workload, placement::Policy policy, double gpus,
                 std::size_t divide) {
  spindle::Runtime rt({.num_gpus = gpus, .placement = policy, .perf_model_file = ""});
  std::vector<spindle::TaskFactory<spindle::Codelet<Buffer<float> (*)(const Buffer<float>&),
                                                    Buffer<float> (*)(const Buffer<float>&)>>>
      kinds;
  using Body = Buffer<float> (*)(const Buffer<float>&);
  Body dense = [](const Buffer<float>& x) { return work(x, 16); };
  Body elementwise = [](const Buffer<float>& x) { return work(x, 1); };
  Body chain = [](const Buffer<float>& x) { return work(x, 2); };
  for (Body body : {dense, elementwise, chain}) {
    std::string name = workload.kinds[kinds.size()].name;
    kinds.push_back(rt.task(spindle::codelet(name, body, body)));
  }
  std::vector<spindle::ObjectRef<Buffer<float>>> sources;
  auto source_for = [&](std::size_t bytes) {
    for (auto& source : sources) {
      if (source.get().size() * sizeof(float) == bytes) return source;
    }
    sources.push_back(rt.put(Buffer<float>(bytes / sizeof(float), spindle::Location::host())));
    return sources.back();
  };
  RealRun result;
  for (int round = 0; round < 2; ++round) {
    ran_on_gpu = 0;
    auto start = std::chrono::steady_clock::now();
    std::vector<spindle::ObjectRef<Buffer<float>>> outputs;
    for (const placement::SimTask& task : workload.tasks) {
      auto input = task.inputs.empty() ? source_for(task.bytes / divide) : outputs[task.inputs[0]];
      outputs.push_back(kinds[task.kind].remote(input));
    }
    for (const auto& output : outputs) (void)output.get();
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.on_gpu = ran_on_gpu;
  }
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  samples::Flags flags(argc, argv,
                       {{"cpus", {2, 2, "CPUs of the simulated machine", 1, 1024}},
                        {"gpus", {1, 1, "GPUs of the simulated machine", 0, 64}},
                        {"scale", {4, 1, "the workload's size, in units of 16 MB tasks", 1, 64}}},
                       {{"real", "also run the workload for real, as codelets"}},
                       {{"plot", {"", "write the simulated table as a PNG to this file", {}}}});
  placement::SimMachine machine;
  machine.cpus = static_cast<unsigned>(flags.count("cpus"));
  machine.gpus = static_cast<unsigned>(flags.count("gpus"));
  const unsigned scale = static_cast<unsigned>(flags.count("scale"));
  const bool quick = flags.quick(), real = flags.on("real");
  const std::string plot = flags.text("plot");
  placement::Workload workload = placement::mixed_workload(scale);
  std::printf(
      "### Placement in simulation: %zu tasks (dense, element-wise, chains) on %u CPUs "
      "and %u GPUs\n\n",
      workload.tasks.size(), machine.cpus, machine.gpus);
  std::printf(
      "| policy | makespan ms | / lower bound | CPU busy | GPU busy | on GPU | GB moved |\n"
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  auto row = [&](const std::string& name, const placement::SimResult& r) {
    std::printf("| %s | %.1f | %.2f | %.0f%% | %.0f%% | %zu | %.2f |\n", name.c_str(),
                r.makespan * 1e3, r.makespan / r.lower_bound, 100 * r.cpu_busy, 100 * r.gpu_busy,
                r.on_gpu, r.bytes_moved / 1e9);
  };
  bench::Chart chart{"Placement in simulation: makespan over the lower bound (1 is perfect)",
                     "makespan / lower bound",
                     {},
                     {"makespan / lower bound"}};
  auto add = [&](const std::string& name, const placement::SimResult& r) {
    row(name, r);
    chart.rows.push_back({name, {r.makespan / r.lower_bound}});
  };
  for (placement::Policy policy : placement::kPolicies) {
    spindle::PerfModel model("simulated");
    placement::SimResult first =
        placement::simulate(workload.kinds, workload.tasks, machine, policy, model);
    if (policy != placement::Policy::earliest_finish) {
      add(placement::to_string(policy), first);
      continue;
    }
    add("earliest_finish (calibrating)", first);
    add("earliest_finish (calibrated)",
        placement::simulate(workload.kinds, workload.tasks, machine, policy, model));
  }
  if (!plot.empty() && !bench::plot_bars(chart, plot)) return 1;
  if (!real) return 0;

  int gpus = spindle::device_count();
  std::size_t divide = quick ? 16 : 1;  // --quick: 1 MB instead of 16 MB
  std::printf("\n### Placement for real: the same %zu tasks as codelets on Buffers, %s%s\n\n",
              workload.tasks.size(),
              gpus > 0 ? (std::to_string(gpus) + " GPU(s)").c_str()
                       : "one logical GPU (no GPU here: its implementation runs on the host, so "
                         "these figures only show that the path works)",
              quick ? ", sizes / 16" : "");
  std::printf(
      "| policy | makespan ms | / earliest_finish | on GPU |\n| --- | ---: | ---: | ---: |\n");
  std::vector<std::pair<placement::Policy, RealRun>> runs;
  for (placement::Policy policy : placement::kPolicies) {
    runs.emplace_back(policy, run_real(workload, policy, gpus > 0 ? gpus : 1, divide));
  }
  for (const auto& [policy, run] : runs) {
    std::printf("| %s | %.1f | %.2f | %zu |\n", placement::to_string(policy), run.seconds * 1e3,
                run.seconds / runs.back().second.seconds, run.on_gpu);
  }
  return 0;
}
