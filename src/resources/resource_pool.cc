// ResourcePool: grants demands against fixed totals, packing GPU shares.
#include <algorithm>

#include "spindle/errors.hpp"
#include "spindle/resources.hpp"

namespace spindle {
namespace {

std::vector<Quantity> whole_devices(const ResourceSet& totals) {
  Quantity gpus = totals.gpu();
  if (!gpus.is_whole()) {
    throw InvalidArgumentError("gpu total = " + gpus.to_string() +
                               ": GPUs are whole devices, so the total must be whole");
  }
  return std::vector<Quantity>(static_cast<std::size_t>(gpus.whole_part()), Quantity::whole(1));
}

}  // namespace

std::vector<int> Allocation::gpu_ids() const {
  std::vector<int> ids;
  for (const GpuShare& share : gpus) ids.push_back(share.device);
  return ids;
}

ResourcePool::ResourcePool(ResourceSet totals)
    : totals_(std::move(totals)), available_(totals_), gpu_free_(whole_devices(totals_)) {}

ResourceSet ResourcePool::available() const {
  std::lock_guard lock(mutex_);
  return available_;
}

std::vector<Quantity> ResourcePool::gpu_available() const {
  std::lock_guard lock(mutex_);
  return gpu_free_;
}

void ResourcePool::check_feasible(const ResourceSet& demand) const {
  for (const auto& [name, amount] : demand.amounts()) {
    bool built_in =
        name == ResourceSet::kCpu || name == ResourceSet::kGpu || name == ResourceSet::kMemory;
    if (!built_in && totals_.get(name).is_zero()) {
      std::string known;
      for (const auto& item : totals_.amounts()) known += (known.empty() ? "" : ", ") + item.first;
      throw InvalidArgumentError("unknown resource '" + name + "' in demand " + demand.to_string() +
                                 ": this runtime has " + known);
    }
  }
  if (!totals_.contains(demand)) {
    throw InfeasibleError("demand " + demand.to_string() + " can never be met: the totals are " +
                          totals_.to_string());
  }
}

std::optional<std::vector<GpuShare>> ResourcePool::place_gpus(Quantity demand) const {
  std::vector<GpuShare> shares;
  if (demand.is_zero()) return shares;
  if (demand < Quantity::whole(1)) {
    // Best fit: the fullest device that still has room, so shares pack before spreading.
    std::optional<std::size_t> best;
    for (std::size_t device = 0; device < gpu_free_.size(); ++device) {
      if (gpu_free_[device] >= demand && (!best || gpu_free_[device] < gpu_free_[*best])) {
        best = device;
      }
    }
    if (!best) return std::nullopt;
    shares.push_back({static_cast<int>(*best), demand});
    return shares;
  }
  for (std::size_t device = 0;
       device < gpu_free_.size() && static_cast<std::int64_t>(shares.size()) < demand.whole_part();
       ++device) {
    if (gpu_free_[device] == Quantity::whole(1)) {
      shares.push_back({static_cast<int>(device), Quantity::whole(1)});
    }
  }
  if (static_cast<std::int64_t>(shares.size()) < demand.whole_part()) return std::nullopt;
  return shares;
}

std::optional<Allocation> ResourcePool::try_acquire(const ResourceSet& demand) {
  check_feasible(demand);
  std::lock_guard lock(mutex_);
  if (!available_.contains(demand)) return std::nullopt;
  std::optional<std::vector<GpuShare>> shares = place_gpus(demand.gpu());
  if (!shares) return std::nullopt;
  available_ -= demand;
  for (const GpuShare& share : *shares) gpu_free_[share.device] -= share.amount;
  return Allocation{demand, std::move(*shares)};
}

void ResourcePool::release(const Allocation& allocation) {
  std::lock_guard lock(mutex_);
  ResourceSet returned = available_;
  returned += allocation.resources;
  std::vector<Quantity> gpu_free = gpu_free_;
  Quantity shared;
  for (const GpuShare& share : allocation.gpus) {
    if (share.device < 0 || share.device >= static_cast<int>(gpu_free.size())) {
      throw std::logic_error("release of GPU " + std::to_string(share.device) + ": the pool has " +
                             std::to_string(gpu_free.size()) + " GPUs");
    }
    gpu_free[share.device] += share.amount;
    shared += share.amount;
  }
  bool gpus_fit = std::ranges::all_of(gpu_free, [](Quantity q) { return q <= Quantity::whole(1); });
  if (!totals_.contains(returned) || !gpus_fit || shared != allocation.resources.gpu()) {
    throw std::logic_error("release of " + allocation.resources.to_string() +
                           " does not match what is held (released twice?)");
  }
  available_ = std::move(returned);
  gpu_free_ = std::move(gpu_free);
}

}  // namespace spindle
