// Placement of codelets in a real runtime: see placer.hpp.
#include "placement/placer.hpp"

#include <algorithm>

namespace spindle::detail {
namespace {

std::size_t index(DeviceKind kind) { return kind == DeviceKind::gpu ? 1 : 0; }

std::size_t total_bytes(std::span<const DataInput> inputs) {
  std::size_t bytes = 0;
  for (const DataInput& input : inputs) bytes += input.bytes;
  return bytes;
}

}  // namespace

double Placer::default_transfer_seconds(std::size_t bytes) {
  return 10e-6 + static_cast<double>(bytes) / 25e9;
}

Placer::Placer(placement::Policy policy, PerfModel& model, unsigned cpu_slots, unsigned gpu_slots)
    : policy_(policy),
      model_(model),
      slots_{std::max(1u, cpu_slots), std::max(1u, gpu_slots)} {}

DeviceKind Placer::choose(const std::string& task, std::span<const DataInput> inputs,
                          double& expected) {
  std::size_t bytes = total_bytes(inputs);
  MutexLock lock(mutex_);
  DeviceKind kind = DeviceKind::cpu;
  switch (policy_) {
    case placement::Policy::cpu_only:
      kind = DeviceKind::cpu;
      break;
    case placement::Policy::gpu_first:
      kind = DeviceKind::gpu;
      break;
    case placement::Policy::round_robin:  // every CPU slot, then every GPU, in turn
      kind = turn_++ % (slots_[0] + slots_[1]) < slots_[0] ? DeviceKind::cpu : DeviceKind::gpu;
      break;
    case placement::Policy::earliest_finish:
      kind = earliest_finish_locked(task, bytes, inputs);
      break;
  }
  expected = model_.estimate(task, bytes, kind).value_or(0);
  backlog_[index(kind)] += expected;
  ++in_flight_[{task, PerfModel::bucket(bytes), kind}];
  return kind;
}

// Calibration first: a kind whose samples (kept and still running) are fewer than the model
// needs takes the call, the one with fewer first, GPU on a tie. Once enough runs are under
// way but some are still running, eager: the GPU. Then the earliest expected finish: the
// kind's queued work over its slots, plus moving the inputs that live elsewhere, plus the
// run time.
DeviceKind Placer::earliest_finish_locked(const std::string& task, std::size_t bytes,
                                          std::span<const DataInput> inputs) {
  const DeviceKind kinds[2] = {DeviceKind::cpu, DeviceKind::gpu};
  std::optional<double> estimate[2];
  std::size_t started[2];
  for (DeviceKind kind : kinds) {
    estimate[index(kind)] = model_.estimate(task, bytes, kind);
    auto running = in_flight_.find({task, PerfModel::bucket(bytes), kind});
    started[index(kind)] = model_.samples(task, bytes, kind) +
                           (running == in_flight_.end() ? 0 : running->second);
  }
  if (!estimate[0] || !estimate[1]) {
    constexpr std::size_t needed = PerfModel::kCalibrationSamples + 1;  // the first is dropped
    bool cpu_short = !estimate[0] && started[0] < needed;
    bool gpu_short = !estimate[1] && started[1] < needed;
    if (cpu_short && (!gpu_short || started[0] < started[1])) return DeviceKind::cpu;
    return DeviceKind::gpu;
  }
  double best = 0;
  DeviceKind chosen = DeviceKind::cpu;
  for (DeviceKind kind : kinds) {
    double finish = backlog_[index(kind)] / slots_[index(kind)] + *estimate[index(kind)];
    for (const DataInput& input : inputs) {
      if (input.location == kind) continue;
      finish += model_.transfer_seconds(input.location, kind, input.bytes)
                    .value_or(default_transfer_seconds(input.bytes));
    }
    if (kind == DeviceKind::cpu || finish < best) {
      best = finish;
      chosen = kind;
    }
  }
  return chosen;
}

void Placer::finished(const std::string& task, std::size_t bytes, DeviceKind kind,
                      double expected) {
  MutexLock lock(mutex_);
  backlog_[index(kind)] = std::max(0.0, backlog_[index(kind)] - expected);
  auto running = in_flight_.find({task, PerfModel::bucket(bytes), kind});
  if (running != in_flight_.end() && --running->second == 0) in_flight_.erase(running);
}

}  // namespace spindle::detail
