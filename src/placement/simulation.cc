// Placement policies in virtual time: see spindle/placement.hpp.
#include <algorithm>
#include <limits>
#include <numeric>
#include <optional>
#include <random>

#include "spindle/errors.hpp"
#include "spindle/placement.hpp"

namespace spindle::placement {
namespace {

constexpr int kHost = -1;  // the memory space of every CPU

struct Device {
  DeviceKind kind;
  int space;  // kHost, or the GPU's index
  double free_at = 0;
  double busy = 0;
};

struct Placed {
  double finish = 0;
  int space = kHost;
};

void check(const std::vector<TaskKind>& kinds, const std::vector<SimTask>& tasks,
           const SimMachine& machine) {
  if (machine.cpus == 0) throw InvalidArgumentError("cpus = 0: a machine needs a CPU");
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    if (tasks[i].kind >= kinds.size()) {
      throw InvalidArgumentError("tasks[" + std::to_string(i) +
                                 "].kind = " + std::to_string(tasks[i].kind) + ": there are " +
                                 std::to_string(kinds.size()) + " kinds");
    }
    for (std::size_t input : tasks[i].inputs) {
      if (input >= i) {
        throw InvalidArgumentError("tasks[" + std::to_string(i) + "] reads task " +
                                   std::to_string(input) + ": inputs must be earlier tasks");
      }
    }
  }
}

// The heterogeneous area bound: tasks split fractionally between the CPUs and the GPUs, most
// accelerated first on the GPUs, at the split where both finish together.
double area_bound(const std::vector<TaskKind>& kinds, const std::vector<SimTask>& tasks,
                  const SimMachine& machine) {
  struct Work {
    double cpu, gpu;
  };
  std::vector<Work> work;
  double cpu_total = 0;
  for (const SimTask& task : tasks) {
    const TaskKind& kind = kinds[task.kind];
    work.push_back(
        {kind.seconds(DeviceKind::cpu, task.bytes), kind.seconds(DeviceKind::gpu, task.bytes)});
    cpu_total += work.back().cpu;
  }
  if (machine.gpus == 0) return cpu_total / machine.cpus;
  std::sort(work.begin(), work.end(),
            [](const Work& a, const Work& b) { return a.cpu * b.gpu > b.cpu * a.gpu; });
  double gpu_load = 0, cpu_load = cpu_total, best = cpu_total / machine.cpus;
  for (const Work& w : work) {
    // Moving a fraction f of this task to the GPUs: the loads meet where
    // (gpu_load + f * w.gpu) / gpus == (cpu_load - f * w.cpu) / cpus.
    double f = (cpu_load / machine.cpus - gpu_load / machine.gpus) /
               (w.gpu / machine.gpus + w.cpu / machine.cpus);
    if (f <= 1) {
      f = std::max(0.0, f);
      return std::min(best, (gpu_load + f * w.gpu) / machine.gpus);
    }
    gpu_load += w.gpu;
    cpu_load -= w.cpu;
    best = std::min(best, std::max(gpu_load / machine.gpus, cpu_load / machine.cpus));
  }
  return best;
}

double critical_path(const std::vector<TaskKind>& kinds, const std::vector<SimTask>& tasks) {
  std::vector<double> finish(tasks.size());
  double longest = 0;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const TaskKind& kind = kinds[tasks[i].kind];
    double start = 0;
    for (std::size_t input : tasks[i].inputs) start = std::max(start, finish[input]);
    finish[i] = start + std::min(kind.seconds(DeviceKind::cpu, tasks[i].bytes),
                                 kind.seconds(DeviceKind::gpu, tasks[i].bytes));
    longest = std::max(longest, finish[i]);
  }
  return longest;
}

}  // namespace

const char* to_string(Policy policy) {
  switch (policy) {
    case Policy::cpu_only:
      return "cpu_only";
    case Policy::gpu_first:
      return "gpu_first";
    case Policy::round_robin:
      return "round_robin";
    case Policy::earliest_finish:
      return "earliest_finish";
  }
  return "unknown";
}

double TaskKind::seconds(DeviceKind device, std::size_t bytes) const {
  double size = static_cast<double>(bytes);
  return device == DeviceKind::gpu ? gpu_overhead + size * gpu_seconds_per_byte
                                   : cpu_overhead + size * cpu_seconds_per_byte;
}

double SimMachine::transfer_seconds(std::size_t bytes) const {
  return link_latency + static_cast<double>(bytes) / link_bytes_per_second;
}

SimResult simulate(const std::vector<TaskKind>& kinds, const std::vector<SimTask>& tasks,
                   const SimMachine& machine, Policy policy, PerfModel& model) {
  check(kinds, tasks, machine);
  std::vector<Device> devices;
  for (unsigned c = 0; c < machine.cpus; ++c) devices.push_back({DeviceKind::cpu, kHost});
  for (unsigned g = 0; g < machine.gpus; ++g) {
    devices.push_back({DeviceKind::gpu, static_cast<int>(g)});
  }
  SimResult result;
  std::vector<Placed> placed(tasks.size());
  std::size_t next_round_robin = 0;

  // Moving one input into `space`: hops between memory spaces, each a link crossing.
  auto hops = [](int from, int to) {
    return from == to ? 0 : (from == kHost || to == kHost ? 1 : 2);
  };
  auto kind_of_space = [](int space) { return space == kHost ? DeviceKind::cpu : DeviceKind::gpu; };

  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const SimTask& task = tasks[i];
    const TaskKind& kind = kinds[task.kind];
    // When each device could start the task, with its inputs moved there: truly, and as
    // the model expects.
    auto ready_on = [&](const Device& device, bool estimated) {
      double ready = 0;
      auto arrive = [&](double available, int from) {
        double moving = hops(from, device.space) * machine.transfer_seconds(task.bytes);
        if (estimated && from != device.space) {
          // Until the model has measured this link, the machine's declared one stands in (a
          // real runtime measures its links at start).
          moving = model.transfer_seconds(kind_of_space(from), device.kind, task.bytes)
                       .value_or(machine.transfer_seconds(task.bytes)) *
                   hops(from, device.space);
        }
        ready = std::max(ready, available + moving);
      };
      if (task.inputs.empty()) arrive(0, kHost);
      for (std::size_t input : task.inputs) arrive(placed[input].finish, placed[input].space);
      return std::max(ready, device.free_at);
    };
    auto first_free = [&](std::optional<DeviceKind> only) {
      std::size_t best = devices.size();
      for (std::size_t d = 0; d < devices.size(); ++d) {
        if (only && devices[d].kind != *only) continue;
        if (best == devices.size() || ready_on(devices[d], false) < ready_on(devices[best], false))
          best = d;
      }
      return best;
    };

    std::size_t chosen = 0;
    switch (policy) {
      case Policy::cpu_only:
        chosen = first_free(DeviceKind::cpu);
        break;
      case Policy::gpu_first:
        chosen = first_free(machine.gpus > 0 ? DeviceKind::gpu : DeviceKind::cpu);
        break;
      case Policy::round_robin:
        chosen = next_round_robin++ % devices.size();
        break;
      case Policy::earliest_finish: {
        auto cpu = model.estimate(kind.name, task.bytes, DeviceKind::cpu);
        auto gpu = model.estimate(kind.name, task.bytes, DeviceKind::gpu);
        if (!cpu) {  // calibrating: run where samples are missing
          chosen = first_free(DeviceKind::cpu);
        } else if (!gpu && machine.gpus > 0) {
          chosen = first_free(DeviceKind::gpu);
        } else {
          double best = std::numeric_limits<double>::infinity();
          for (std::size_t d = 0; d < devices.size(); ++d) {
            double finish =
                ready_on(devices[d], true) + (devices[d].kind == DeviceKind::gpu ? *gpu : *cpu);
            if (finish < best) {
              best = finish;
              chosen = d;
            }
          }
        }
        break;
      }
    }

    Device& device = devices[chosen];
    double start = ready_on(device, false);
    double run = kind.seconds(device.kind, task.bytes);
    auto count_moves = [&](int from) {
      int crossings = hops(from, device.space);
      if (crossings == 0) return;
      result.bytes_moved += crossings * static_cast<double>(task.bytes);
      model.record_transfer(kind_of_space(from), device.kind, task.bytes,
                            crossings * machine.transfer_seconds(task.bytes) / crossings);
    };
    if (task.inputs.empty()) count_moves(kHost);
    for (std::size_t input : task.inputs) count_moves(placed[input].space);
    model.record(kind.name, task.bytes, device.kind, run);
    device.free_at = start + run;
    device.busy += run;
    placed[i] = {start + run, device.space};
    result.makespan = std::max(result.makespan, start + run);
    result.placement.push_back(device.kind);
    if (device.kind == DeviceKind::gpu) ++result.on_gpu;
  }

  double cpu_busy = 0, gpu_busy = 0;
  for (const Device& device : devices)
    (device.kind == DeviceKind::gpu ? gpu_busy : cpu_busy) += device.busy;
  if (result.makespan > 0) {
    result.cpu_busy = cpu_busy / (result.makespan * machine.cpus);
    result.gpu_busy = machine.gpus ? gpu_busy / (result.makespan * machine.gpus) : 0;
  }
  result.lower_bound = std::max(critical_path(kinds, tasks), area_bound(kinds, tasks, machine));
  return result;
}

Workload mixed_workload(unsigned scale, unsigned seed) {
  Workload workload;
  // Compute-heavy: 50x faster on the GPU.
  workload.kinds.push_back({"dense", 20e-6, 5e-9, 30e-6, 1e-10});
  // Element-wise and small: the GPU's launch overhead outweighs its speed.
  workload.kinds.push_back({"elementwise", 2e-6, 5e-11, 30e-6, 2e-12});
  // Chained steps: 20x faster on the GPU, and their data can stay there.
  workload.kinds.push_back({"chain step", 10e-6, 1e-9, 20e-6, 5e-11});
  std::mt19937 rng(seed);
  // Items in a random order; a chain's steps keep theirs.
  std::vector<int> order;  // -1 dense, -2 elementwise, c >= 0: the next step of chain c
  const unsigned chains = 6 * scale, steps = 10;
  for (unsigned i = 0; i < 12 * scale; ++i) order.push_back(-1);
  for (unsigned i = 0; i < 400 * scale; ++i) order.push_back(-2);
  for (unsigned c = 0; c < chains; ++c) {
    for (unsigned s = 0; s < steps; ++s) order.push_back(static_cast<int>(c));
  }
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<std::optional<std::size_t>> last(chains);
  for (int item : order) {
    SimTask task;
    if (item == -1) {
      task = {0, std::size_t{16} << 20, {}};
    } else if (item == -2) {
      task = {1, std::size_t{64} << 10, {}};
    } else {
      task = {2, std::size_t{16} << 20, {}};
      if (last[item]) task.inputs.push_back(*last[item]);
      last[item] = workload.tasks.size();
    }
    workload.tasks.push_back(std::move(task));
  }
  return workload;
}

}  // namespace spindle::placement
