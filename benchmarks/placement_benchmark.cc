// Placement policies on the mixed workload, in simulation (virtual time, declared devices):
// makespan, ratio to the lower bound, utilisation, bytes moved. The model-based policy runs
// twice: first calibrating its model, then with it (StarPU calibrates over runs the same way).
//
//   placement_benchmark [--quick] [--cpus 2] [--gpus 1] [--scale 4]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "spindle/spindle.hpp"

namespace placement = spindle::placement;

int main(int argc, char** argv) {
  placement::SimMachine machine;
  unsigned scale = 4;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&] {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return static_cast<unsigned>(std::atoi(argv[++i]));
    };
    if (arg == "--quick") {
      scale = 1;
    } else if (arg == "--cpus") {
      machine.cpus = value();
    } else if (arg == "--gpus") {
      machine.gpus = value();
    } else if (arg == "--scale") {
      scale = value();
    } else {
      std::fprintf(stderr, "'%s': allowed are --quick, --cpus N, --gpus N, --scale N\n",
                   arg.c_str());
      return 2;
    }
  }
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
  for (placement::Policy policy : placement::kPolicies) {
    spindle::PerfModel model("simulated");
    placement::SimResult first =
        placement::simulate(workload.kinds, workload.tasks, machine, policy, model);
    if (policy != placement::Policy::earliest_finish) {
      row(placement::to_string(policy), first);
      continue;
    }
    row("earliest_finish (calibrating)", first);
    row("earliest_finish (calibrated)",
        placement::simulate(workload.kinds, workload.tasks, machine, policy, model));
  }
  return 0;
}
