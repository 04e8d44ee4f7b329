// Resources: amounts, resource sets and the pool that grants them.
//
// Amounts are fixed-point with a precision of 1/10000, as in Ray, so that
// fractional demands add up exactly (four demands of 0.25 fill one GPU).
// `memory` is counted in bytes and must be a whole number of them.
//
// Thread safety: Quantity and ResourceSet are values with no shared state.
// ResourcePool may be used from any number of threads at once.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spindle/detail/thread_annotations.hpp"

namespace spindle {

struct Topology;

/// @brief A non-negative resource amount in fixed point with 1/10000 precision.
class Quantity {
 public:
  /// Units in one whole: the finest fraction is 1 / kUnitsPerWhole.
  static constexpr std::int64_t kUnitsPerWhole = 10000;
  /// The largest amount accepted from a user (10^14), far from overflow when summed.
  static constexpr double kMaxAmount = 1e14;

  constexpr Quantity() = default;
  static constexpr Quantity from_units(std::int64_t units) { return Quantity(units); }
  static constexpr Quantity whole(std::int64_t n) { return Quantity(n * kUnitsPerWhole); }

  /// @brief Converts a user's amount. `what` names it in errors ("num_cpus").
  /// @throws InvalidArgumentError if `value` is NaN, infinite, negative, above kMaxAmount,
  ///         or not a multiple of 1/10000.
  static Quantity from_double(double value, std::string_view what);

  [[nodiscard]] constexpr std::int64_t units() const { return units_; }
  [[nodiscard]] double to_double() const { return static_cast<double>(units_) / kUnitsPerWhole; }
  [[nodiscard]] constexpr bool is_zero() const { return units_ == 0; }
  [[nodiscard]] constexpr bool is_whole() const { return units_ % kUnitsPerWhole == 0; }
  /// The whole part, rounded down.
  [[nodiscard]] constexpr std::int64_t whole_part() const { return units_ / kUnitsPerWhole; }
  /// The exact decimal: "0.25", "3", "0.0001".
  [[nodiscard]] std::string to_string() const;

  constexpr Quantity& operator+=(Quantity other) {
    units_ += other.units_;
    return *this;
  }
  constexpr Quantity& operator-=(Quantity other) {
    units_ -= other.units_;
    return *this;
  }
  friend constexpr Quantity operator+(Quantity a, Quantity b) { return a += b; }
  friend constexpr Quantity operator-(Quantity a, Quantity b) { return a -= b; }
  friend constexpr auto operator<=>(Quantity, Quantity) = default;

 private:
  constexpr explicit Quantity(std::int64_t units) : units_(units) {}
  std::int64_t units_ = 0;
};

/// @brief Named resource amounts: `cpu`, `gpu`, `memory` (bytes) and custom names.
///
/// A name that is absent has amount zero; setting zero removes the name, so two
/// sets with the same amounts compare equal.
class ResourceSet {
 public:
  static constexpr std::string_view kCpu = "cpu";
  static constexpr std::string_view kGpu = "gpu";
  static constexpr std::string_view kMemory = "memory";
  using Amounts = std::map<std::string, Quantity, std::less<>>;

  ResourceSet() = default;

  /// @brief Builds a demand as tasks and actors state it, with Ray's rules: amounts
  /// are finite, non-negative and multiples of 1/10000; an amount above 1 is whole;
  /// memory is whole bytes; custom names are valid (see check_name).
  /// @throws InvalidArgumentError naming the first amount or name that breaks a rule.
  static ResourceSet demand(double num_cpus, double num_gpus = 0, double memory = 0,
                            const std::map<std::string, double>& custom = {});

  /// @brief Sets `name` to `amount` after validating both (not the demand rule).
  /// @throws InvalidArgumentError on a bad name or amount.
  ResourceSet& set(std::string_view name, double amount);
  /// @brief Sets `name` to an already valid amount; the name is still validated.
  ResourceSet& set(std::string_view name, Quantity amount);

  /// The amount of `name`; zero if absent.
  [[nodiscard]] Quantity get(std::string_view name) const;
  [[nodiscard]] Quantity cpu() const { return get(kCpu); }
  [[nodiscard]] Quantity gpu() const { return get(kGpu); }
  [[nodiscard]] Quantity memory() const { return get(kMemory); }
  [[nodiscard]] bool empty() const { return amounts_.empty(); }
  [[nodiscard]] const Amounts& amounts() const { return amounts_; }

  /// True when every amount of `other` is at most the amount here.
  [[nodiscard]] bool contains(const ResourceSet& other) const;

  ResourceSet& operator+=(const ResourceSet& other);
  /// @throws std::logic_error if any amount would go below zero (a bookkeeping bug).
  ResourceSet& operator-=(const ResourceSet& other);
  bool operator==(const ResourceSet&) const = default;

  /// "{cpu: 2, gpu: 0.25, memory: 1.5 GiB, disk: 4}"; "{}" when empty.
  [[nodiscard]] std::string to_string() const;

  /// True for cpu, gpu and memory: the names with fields of their own in options.
  [[nodiscard]] static constexpr bool is_builtin(std::string_view name) {
    return name == kCpu || name == kGpu || name == kMemory;
  }

  /// @brief Checks a resource name: not empty, at most 64 characters of letters, digits,
  /// '_', '-', '.', ':' and '/'.
  /// @throws InvalidArgumentError naming the name and the rule.
  static void check_name(std::string_view name);

 private:
  Amounts amounts_;
};

/// @brief Overrides of the totals a runtime would take from the machine, as
/// `ray.init(num_cpus=..., num_gpus=..., resources=...)`.
struct ResourceOverrides {
  std::optional<double> num_cpus;
  /// Logical GPUs; may exceed the physical ones, so that placement can be tested on
  /// machines without a GPU. Must be whole.
  std::optional<double> num_gpus;
  /// Bytes.
  std::optional<double> memory;
  std::map<std::string, double> resources;
};

/// @brief The totals for this machine: one cpu per allowed core, one gpu per visible
/// device, memory as the process may use it (RAM, or a lower cgroup limit); then the
/// overrides on top.
/// @throws InvalidArgumentError on a bad override, naming it.
ResourceSet resource_totals(const Topology& topology, const ResourceOverrides& overrides = {});

/// @brief A share of one GPU held by an allocation.
struct GpuShare {
  int device = 0;
  Quantity amount;
  bool operator==(const GpuShare&) const = default;
};

class ResourcePool;

/// @brief A demand checked against one pool's totals, so that it can be granted many times
/// without being checked or allocated again. Made by ResourcePool::prepare.
class ResourceRequest {
 public:
  [[nodiscard]] const ResourceSet& demand() const { return demand_; }

 private:
  friend class ResourcePool;
  ResourceSet demand_;
  std::vector<std::pair<std::size_t, std::int64_t>> units_;  // index in the pool, amount
  Quantity gpu_;
};

/// @brief What the pool granted for one request; hand it back with ResourcePool::release.
struct Allocation {
  std::shared_ptr<const ResourceRequest> request;
  /// Which GPUs hold the `gpu` amount: one share below 1, else whole devices.
  std::vector<GpuShare> gpus;
  [[nodiscard]] const ResourceSet& resources() const { return request->demand(); }
  /// The device ids in `gpus`, in order.
  [[nodiscard]] std::vector<int> gpu_ids() const;
};

/// @brief Grants and takes back resources against fixed totals.
///
/// Fractional GPU demands (below 1) are packed: each goes to the device with the
/// least free share that still fits it, so shares fill one device before the next.
/// Demands of 1 or more take whole, entirely free devices, lowest ids first.
/// Thread-safe; acquire and release are short critical sections on one mutex and do not
/// allocate unless GPUs are involved.
class ResourcePool {
 public:
  /// @throws InvalidArgumentError if the gpu total is not a whole number of devices.
  explicit ResourcePool(ResourceSet totals);
  ResourcePool(const ResourcePool&) = delete;
  ResourcePool& operator=(const ResourcePool&) = delete;

  [[nodiscard]] const ResourceSet& totals() const { return totals_; }
  [[nodiscard]] int num_gpu_devices() const { return gpu_devices_; }
  [[nodiscard]] ResourceSet available() const;
  /// Free share of each GPU device, by id.
  [[nodiscard]] std::vector<Quantity> gpu_available() const;

  /// @brief Fails unless the demand could be granted when the pool is idle.
  /// @throws InvalidArgumentError naming a custom resource the totals do not have;
  ///         InfeasibleError naming the demand and the totals when it exceeds them.
  void check_feasible(const ResourceSet& demand) const;

  /// @brief Checks a demand once (as check_feasible) for repeated grants.
  [[nodiscard]] std::shared_ptr<const ResourceRequest> prepare(const ResourceSet& demand) const;

  /// @brief Grants the request if it is free now; std::nullopt if it must wait.
  [[nodiscard]] std::optional<Allocation> try_acquire(
      std::shared_ptr<const ResourceRequest> request);
  /// @brief Whether try_acquire would grant the request now.
  [[nodiscard]] bool can_acquire(const ResourceRequest& request) const;
  /// @brief prepare, then try_acquire.
  [[nodiscard]] std::optional<Allocation> try_acquire(const ResourceSet& demand);

  /// @brief Returns what an allocation held.
  /// @throws std::logic_error if it returns more than is held (released twice, or to
  ///         another pool).
  void release(const Allocation& allocation);

 private:
  [[nodiscard]] std::optional<std::vector<GpuShare>> place_gpus(Quantity demand) const
      SPINDLE_REQUIRES(mutex_);
  /// Where the request would go now (its GPU shares), if everything it needs is free.
  [[nodiscard]] std::optional<std::vector<GpuShare>> placement_locked(
      const ResourceRequest& request) const SPINDLE_REQUIRES(mutex_);

  const ResourceSet totals_;
  const int gpu_devices_;
  std::vector<std::string> names_;  // index -> name, as in totals_
  std::vector<std::int64_t> total_units_;
  mutable detail::Mutex mutex_;
  std::vector<std::int64_t> free_units_ SPINDLE_GUARDED_BY(mutex_);
  std::vector<Quantity> gpu_free_ SPINDLE_GUARDED_BY(mutex_);
};

}  // namespace spindle
