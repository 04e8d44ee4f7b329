// Placement policies in virtual time: see spindle/placement.hpp.
#include <algorithm>
#include <limits>
#include <numeric>
#include <optional>
#include <queue>
#include <random>

#include "placement/placer.hpp"
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

// An event-driven run: every task is submitted at time 0 and placed when its inputs are done,
// by the runtime's own Placer (so the figures measure the code that places real calls), on
// the device of the chosen kind that can start it first. A run is recorded in the model when
// it ends, and a transfer when it happens, as the runtime records them.
SimResult simulate(const std::vector<TaskKind>& kinds, const std::vector<SimTask>& tasks,
                   const SimMachine& machine, Policy policy, PerfModel& model) {
  check(kinds, tasks, machine);
  std::vector<Device> devices;
  for (unsigned c = 0; c < machine.cpus; ++c) devices.push_back({DeviceKind::cpu, kHost});
  for (unsigned g = 0; g < machine.gpus; ++g) {
    devices.push_back({DeviceKind::gpu, static_cast<int>(g)});
  }
  detail::Placer placer(policy, model, machine.cpus, machine.gpus);
  SimResult result;
  result.placement.resize(tasks.size(), DeviceKind::cpu);
  std::vector<Placed> placed(tasks.size());

  // Moving one input into `space`: hops between memory spaces, each a link crossing.
  auto hops = [](int from, int to) {
    return from == to ? 0 : (from == kHost || to == kHost ? 1 : 2);
  };
  auto kind_of_space = [](int space) { return space == kHost ? DeviceKind::cpu : DeviceKind::gpu; };

  // Ready tasks by the time their inputs are done (then by index); running ones by finish.
  using Event = std::pair<double, std::size_t>;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> ready, running;
  std::vector<std::size_t> missing(tasks.size());
  std::vector<std::vector<std::size_t>> readers(tasks.size());
  std::vector<double> expected(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    missing[i] = tasks[i].inputs.size();
    for (std::size_t input : tasks[i].inputs) readers[input].push_back(i);
    if (missing[i] == 0) ready.push({0.0, i});
  }
  auto finish_until = [&](double now) {
    while (!running.empty() && running.top().first <= now) {
      std::size_t done = running.top().second;
      running.pop();
      const SimTask& task = tasks[done];
      const TaskKind& kind = kinds[task.kind];
      model.record(kind.name, task.bytes, result.placement[done],
                   kind.seconds(result.placement[done], task.bytes));
      if (machine.gpus > 0) {
        placer.finished(kind.name, task.bytes, result.placement[done], expected[done]);
      }
    }
  };

  while (!ready.empty()) {
    const double now = ready.top().first;  // not a structured binding: lambdas use it
    const std::size_t i = ready.top().second;
    ready.pop();
    finish_until(now);
    const SimTask& task = tasks[i];
    const TaskKind& kind = kinds[task.kind];
    std::vector<detail::DataInput> inputs;
    if (task.inputs.empty()) inputs.push_back({task.bytes, DeviceKind::cpu});
    for (std::size_t input : task.inputs) {
      inputs.push_back({task.bytes, kind_of_space(placed[input].space)});
    }
    // Without GPUs the runtime never consults placement: a codelet runs on the CPU.
    DeviceKind chosen_kind =
        machine.gpus > 0 ? placer.choose(kind.name, inputs, expected[i]) : DeviceKind::cpu;

    // When a device could start the task, with its inputs moved there.
    auto ready_on = [&](const Device& device) {
      double at = now;
      if (task.inputs.empty())
        at += hops(kHost, device.space) * machine.transfer_seconds(task.bytes);
      for (std::size_t input : task.inputs) {
        at = std::max(at, placed[input].finish + hops(placed[input].space, device.space) *
                                                     machine.transfer_seconds(task.bytes));
      }
      return std::max(at, device.free_at);
    };
    std::size_t chosen = devices.size();
    for (std::size_t d = 0; d < devices.size(); ++d) {
      if (devices[d].kind != chosen_kind) continue;
      if (chosen == devices.size() || ready_on(devices[d]) < ready_on(devices[chosen])) chosen = d;
    }

    Device& device = devices[chosen];
    double start = ready_on(device);
    double run = kind.seconds(device.kind, task.bytes);
    auto count_moves = [&](int from) {
      int crossings = hops(from, device.space);
      if (crossings == 0) return;
      result.bytes_moved += crossings * static_cast<double>(task.bytes);
      model.record_transfer(kind_of_space(from), device.kind, task.bytes,
                            machine.transfer_seconds(task.bytes));
    };
    if (task.inputs.empty()) count_moves(kHost);
    for (std::size_t input : task.inputs) count_moves(placed[input].space);
    device.free_at = start + run;
    device.busy += run;
    placed[i] = {start + run, device.space};
    running.push({start + run, i});
    result.makespan = std::max(result.makespan, start + run);
    result.placement[i] = device.kind;
    if (device.kind == DeviceKind::gpu) ++result.on_gpu;
    for (std::size_t reader : readers[i]) {
      if (--missing[reader] > 0) continue;
      double inputs_done = 0;
      for (std::size_t input : tasks[reader].inputs) {
        inputs_done = std::max(inputs_done, placed[input].finish);
      }
      ready.push({inputs_done, reader});
    }
  }
  finish_until(std::numeric_limits<double>::infinity());

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
