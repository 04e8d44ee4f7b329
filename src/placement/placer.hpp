// Placement of codelets in a real runtime: which kind of device each call runs on, chosen
// when its arguments are ready, by the runtime's policy and performance model.
//
// Thread safety: every member may be called from any thread at once.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <tuple>

#include "spindle/detail/thread_annotations.hpp"
#include "spindle/placement.hpp"
#include "spindle/task.hpp"

namespace spindle::detail {

class Placer {
 public:
  /// Seconds to move `bytes` between host and GPU until the model has measured it: a
  /// PCIe 4.0 x16 link's usual latency and bandwidth.
  static double default_transfer_seconds(std::size_t bytes);

  /// `cpu_slots` and `gpu_slots`: how many calls each kind runs at once.
  Placer(placement::Policy policy, PerfModel& model, unsigned cpu_slots, unsigned gpu_slots);

  /// The kind of device a call of `task` on `inputs` runs on; `expected` is set to its
  /// estimated run time there (0 while uncalibrated), counted as queued work on that kind
  /// until finished() is called.
  DeviceKind choose(const std::string& task, std::span<const DataInput> inputs, double& expected);
  /// A call placed by choose() has ended.
  void finished(const std::string& task, std::size_t bytes, DeviceKind kind, double expected);

  [[nodiscard]] placement::Policy policy() const { return policy_; }

 private:
  using Key = std::tuple<std::string, unsigned, DeviceKind>;
  DeviceKind earliest_finish_locked(const std::string& task, std::size_t bytes,
                                    std::span<const DataInput> inputs) SPINDLE_REQUIRES(mutex_);

  const placement::Policy policy_;
  PerfModel& model_;
  const unsigned slots_[2];
  Mutex mutex_;
  // expected seconds of placed, unfinished calls by kind
  double backlog_[2] SPINDLE_GUARDED_BY(mutex_) = {0, 0};
  std::map<Key, unsigned> in_flight_ SPINDLE_GUARDED_BY(mutex_);  // placed, unfinished, by key
  unsigned long long turn_ SPINDLE_GUARDED_BY(mutex_) = 0;        // round_robin's
};

}  // namespace spindle::detail
