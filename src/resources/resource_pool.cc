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
    : totals_(std::move(totals)),
      gpu_devices_(static_cast<int>(whole_devices(totals_).size())),
      gpu_free_(whole_devices(totals_)) {
  for (const auto& [name, amount] : totals_.amounts()) {
    names_.push_back(name);
    total_units_.push_back(amount.units());
  }
  free_units_ = total_units_;
}

ResourceSet ResourcePool::available() const {
  detail::MutexLock lock(mutex_);
  ResourceSet available;
  for (std::size_t i = 0; i < names_.size(); ++i) {
    available.set(names_[i], Quantity::from_units(free_units_[i]));
  }
  return available;
}

std::vector<Quantity> ResourcePool::gpu_available() const {
  detail::MutexLock lock(mutex_);
  return gpu_free_;
}

void ResourcePool::check_feasible(const ResourceSet& demand) const {
  for (const auto& [name, amount] : demand.amounts()) {
    if (!ResourceSet::is_builtin(name) && totals_.get(name).is_zero()) {
      std::string known;
      for (const std::string& total : names_) known += (known.empty() ? "" : ", ") + total;
      throw InvalidArgumentError("unknown resource '" + name + "' in demand " + demand.to_string() +
                                 ": this runtime has " + known);
    }
  }
  if (!totals_.contains(demand)) {
    throw InfeasibleError("demand " + demand.to_string() + " can never be met: the totals are " +
                          totals_.to_string());
  }
}

std::shared_ptr<const ResourceRequest> ResourcePool::prepare(const ResourceSet& demand) const {
  check_feasible(demand);
  auto request = std::make_shared<ResourceRequest>();
  request->demand_ = demand;
  request->gpu_ = demand.gpu();
  for (const auto& [name, amount] : demand.amounts()) {
    auto index = static_cast<std::size_t>(std::ranges::find(names_, name) - names_.begin());
    request->units_.emplace_back(index, amount.units());
  }
  return request;
}

std::optional<std::vector<GpuShare>> ResourcePool::placement_locked(
    const ResourceRequest& request) const {
  for (const auto& [index, units] : request.units_) {
    if (free_units_[index] < units) return std::nullopt;
  }
  return place_gpus(request.gpu_);
}

bool ResourcePool::can_acquire(const ResourceRequest& request) const {
  detail::MutexLock lock(mutex_);
  return placement_locked(request).has_value();
}

std::optional<Allocation> ResourcePool::try_acquire(const ResourceSet& demand) {
  return try_acquire(prepare(demand));
}

std::optional<Allocation> ResourcePool::try_acquire(
    std::shared_ptr<const ResourceRequest> request) {
  detail::MutexLock lock(mutex_);
  std::optional<std::vector<GpuShare>> shares = placement_locked(*request);
  if (!shares) return std::nullopt;
  for (const auto& [index, units] : request->units_) free_units_[index] -= units;
  for (const GpuShare& share : *shares) gpu_free_[share.device] -= share.amount;
  return Allocation{std::move(request), std::move(*shares)};
}

void ResourcePool::release(const Allocation& allocation) {
  const ResourceRequest& request = *allocation.request;
  detail::MutexLock lock(mutex_);
  bool fits = true;
  for (const auto& [index, units] : request.units_) {
    fits = fits && index < free_units_.size() && free_units_[index] + units <= total_units_[index];
  }
  Quantity shared;
  for (const GpuShare& share : allocation.gpus) {
    fits = fits && share.device >= 0 && share.device < static_cast<int>(gpu_free_.size()) &&
           gpu_free_[share.device] + share.amount <= Quantity::whole(1);
    shared += share.amount;
  }
  if (!fits || shared != request.gpu_) {
    throw std::logic_error("release of " + request.demand().to_string() +
                           " does not match what is held (released twice?)");
  }
  for (const auto& [index, units] : request.units_) free_units_[index] += units;
  for (const GpuShare& share : allocation.gpus) gpu_free_[share.device] += share.amount;
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

}  // namespace spindle
