// The performance model: how long a task takes on a CPU or a GPU, by input size, and how long
// moving bytes between them takes; learnt from measured runs and kept across runs in a cache
// file. The placement policies (issue 7) read it to choose where work runs.
//
//   spindle::PerfModel model;
//   std::string warning = model.load(spindle::PerfModel::default_path(rt.topology()));
//   model.record("scale", bytes, spindle::DeviceKind::gpu, seconds);   // after each run
//   if (auto t = model.estimate("scale", bytes, spindle::DeviceKind::gpu)) ...
//
// Calibration follows StarPU: per (task, size bucket, device) the first run is dropped (it
// pays for warm-up), and an estimate exists once 10 samples are kept; it is the mean of the
// samples within 3 scaled median absolute deviations of their median (outliers rejected).
//
// Thread safety: every member may be called from any thread at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "spindle/detail/thread_annotations.hpp"
#include "spindle/device.hpp"
#include "spindle/topology.hpp"

namespace spindle {

/// @brief Measured task durations and transfer costs; see the top of this header.
class PerfModel {
 public:
  /// Samples kept per key before an estimate exists (after the first is dropped).
  static constexpr std::size_t kCalibrationSamples = 10;
  /// The most recent samples kept per key.
  static constexpr std::size_t kMaxSamples = 100;

  /// A model for any machine; `machine` names the machine and devices it describes (a file
  /// saved for another machine is not loaded).
  explicit PerfModel(std::string machine = "");
  PerfModel(const PerfModel&) = delete;
  PerfModel& operator=(const PerfModel&) = delete;

  /// The size bucket of an input of `bytes`: floor(log2(bytes)), and 0 for 0 bytes.
  [[nodiscard]] static unsigned bucket(std::size_t bytes);
  /// The machine key of a topology: host name and GPU names.
  [[nodiscard]] static std::string machine_key(const Topology& topology);
  /// $XDG_CACHE_HOME/spindle/perfmodel-<key>.json (or ~/.cache/spindle/...).
  [[nodiscard]] static std::string default_path(const Topology& topology);

  /// Records one run of `task` on an input of `bytes`.
  /// @throws InvalidArgumentError for a negative or non-finite duration.
  void record(const std::string& task, std::size_t bytes, DeviceKind device, double seconds);
  /// Seconds a run is expected to take; nullopt while the key is not calibrated.
  [[nodiscard]] std::optional<double> estimate(const std::string& task, std::size_t bytes,
                                               DeviceKind device) const;
  /// Samples kept for the key (the dropped first run not counted).
  [[nodiscard]] std::size_t samples(const std::string& task, std::size_t bytes,
                                    DeviceKind device) const;

  /// Records one copy of `bytes` from one kind of device to another.
  void record_transfer(DeviceKind from, DeviceKind to, std::size_t bytes, double seconds);
  /// Seconds to move `bytes`: latency plus bytes over bandwidth, fitted to the samples (by
  /// least squares once sizes differ); 0 within one kind; nullopt with no sample.
  [[nodiscard]] std::optional<double> transfer_seconds(DeviceKind from, DeviceKind to,
                                                       std::size_t bytes) const;

  /// Writes the model as JSON, creating the folder if needed.
  /// @throws Error naming the file if it cannot be written.
  void save(const std::string& path) const;
  /// Replaces the model with the file's. A missing file leaves it empty and returns "". A
  /// damaged file, or one saved for another machine or version, is ignored: the model stays
  /// empty (to be rebuilt by new runs) and the returned warning says why.
  std::string load(const std::string& path);
  /// As load, for JSON text at hand; `source` names it in the warning. Text of any content
  /// is safe: what is not a model of this machine leaves the model empty, with a warning.
  std::string load_json(std::string_view text, const std::string& source);

  /// The model as save writes it: JSON with its format version, machine, runs (task, size
  /// bucket, device, seconds) and transfers (bytes and seconds).
  [[nodiscard]] std::string to_json() const;
  /// A table: task, bucket, device, samples, estimate; then transfers.
  [[nodiscard]] std::string to_string() const;

 private:
  struct Samples {
    bool first_dropped = false;
    std::vector<double> values;  // the most recent kMaxSamples
  };
  using Key = std::tuple<std::string, unsigned, DeviceKind>;

  void clear();

  std::string machine_;
  mutable detail::Mutex mutex_;
  std::map<Key, Samples> runs_ SPINDLE_GUARDED_BY(mutex_);
  std::map<std::pair<DeviceKind, DeviceKind>, std::vector<std::pair<double, double>>> transfers_
      SPINDLE_GUARDED_BY(mutex_);
};

}  // namespace spindle
