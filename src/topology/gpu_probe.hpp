// Finding GPUs: the CUDA runtime when spindle is built with CUDA, nothing otherwise.
#pragma once

#include <hwloc.h>

#include <string>
#include <vector>

#include "spindle/topology.hpp"

namespace spindle::detail {

struct GpuProbe {
  std::vector<Gpu> gpus;
  std::string note;  // why there are none, or what limited them
};

/// Lists the GPUs the CUDA runtime can see, placed on `topology` (already loaded and
/// restricted). Never throws for a missing driver or device: that is a note.
GpuProbe probe_gpus(hwloc_topology_t topology, const CudaVisibleDevices& visible);

/// The OS index of the NUMA node sharing most PUs with `cpuset`, if any.
std::optional<unsigned> nearest_numa_node(hwloc_topology_t topology, hwloc_const_cpuset_t cpuset);

/// OS indices of the PUs in `cpuset`.
std::vector<unsigned> pu_indices(hwloc_const_cpuset_t cpuset);

}  // namespace spindle::detail
