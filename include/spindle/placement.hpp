// Device placement policies, and a simulator that runs them in virtual time on declared
// devices, so that placement is tested and benchmarked on machines without a GPU (StarPU
// does the same with SimGrid).
//
//   spindle::PerfModel model("simulated");
//   auto result = spindle::placement::simulate(kinds, tasks, machine,
//                                              spindle::placement::Policy::earliest_finish,
//                                              model);
//   result.makespan / result.lower_bound;   // 1.0 would be perfect
//
// The simulator places every call with the runtime's own placement code (the same object a
// Runtime uses to place codelets), in virtual time, so its figures measure what places real
// calls. Policies:
// - cpu_only: a CPU.
// - gpu_first: a GPU (eager), or a CPU without GPUs.
// - round_robin: every CPU slot, then every GPU, in turn.
// - earliest_finish: the kind of device where the call would finish first: its queued work
//   over its slots, plus moving the inputs that live elsewhere, plus the run time, all from
//   the performance model (as StarPU's dmda). While a kind lacks the model's samples for the
//   call, calls go there first (calibration, the GPU on a tie).
// Within the chosen kind, the simulator runs the call on the device that can start it first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "spindle/perf_model.hpp"

namespace spindle::placement {

enum class Policy : std::uint8_t { cpu_only, gpu_first, round_robin, earliest_finish };
inline constexpr Policy kPolicies[] = {Policy::cpu_only, Policy::gpu_first, Policy::round_robin,
                                       Policy::earliest_finish};
/// "cpu_only", "gpu_first", "round_robin" or "earliest_finish".
[[nodiscard]] const char* to_string(Policy policy);

/// @brief A kind of task and its true cost on each kind of device (the simulated devices'
/// speed model): seconds = overhead + bytes * seconds_per_byte.
struct TaskKind {
  std::string name;
  double cpu_overhead = 0;
  double cpu_seconds_per_byte = 0;
  double gpu_overhead = 0;
  double gpu_seconds_per_byte = 0;
  [[nodiscard]] double seconds(DeviceKind device, std::size_t bytes) const;
};

/// @brief One task of a workload: its kind, the bytes it reads (and writes as its output),
/// and the earlier tasks whose outputs it reads. Tasks without inputs read host memory.
struct SimTask {
  std::size_t kind = 0;
  std::size_t bytes = 0;
  std::vector<std::size_t> inputs;
};

/// @brief The simulated machine: CPU workers, GPUs, and the host-GPU link.
struct SimMachine {
  unsigned cpus = 2;
  unsigned gpus = 1;
  double link_bytes_per_second = 25e9;
  double link_latency = 10e-6;
  /// Seconds to move `bytes` between host and a GPU (twice between two GPUs, via the host).
  [[nodiscard]] double transfer_seconds(std::size_t bytes) const;
};

/// @brief What a simulated run did.
struct SimResult {
  double makespan = 0;
  /// The larger of the critical path and the total work over the devices, each task at its
  /// best device's time and with no transfers: no schedule can beat it.
  double lower_bound = 0;
  double cpu_busy = 0;  ///< share of the CPUs' time spent running tasks
  double gpu_busy = 0;  ///< share of the GPUs' time spent running tasks
  double bytes_moved = 0;
  std::size_t on_gpu = 0;             ///< tasks that ran on a GPU
  std::vector<DeviceKind> placement;  ///< where each task ran
};

/// @brief Runs `tasks` (inputs must name earlier tasks; all are submitted at time 0 and each
/// is placed once its inputs are done) on `machine` in virtual time under `policy`. Every run
/// and transfer is recorded in `model` (a run when it ends), so a model carried over several
/// simulations calibrates as a real one does.
/// @throws InvalidArgumentError for a task naming an unknown kind or a later input, or a
/// machine without CPUs.
SimResult simulate(const std::vector<TaskKind>& kinds, const std::vector<SimTask>& tasks,
                   const SimMachine& machine, Policy policy, PerfModel& model);

/// @brief The mixed workload of the placement benchmark: a few large compute-heavy tasks,
/// many small element-wise ones, and dependent chains whose data can stay on a GPU. `scale`
/// multiplies the number of tasks.
struct Workload {
  std::vector<TaskKind> kinds;
  std::vector<SimTask> tasks;
};
[[nodiscard]] Workload mixed_workload(unsigned scale = 1, unsigned seed = 1);

}  // namespace spindle::placement
