// Built without CUDA: there are never GPUs to find.
#include "topology/gpu_probe.hpp"

namespace spindle::detail {

GpuProbe probe_gpus(hwloc_topology_t, const CudaVisibleDevices&) {
  return {{}, "spindle was built without CUDA (SPINDLE_CUDA=OFF or no nvcc found)"};
}

}  // namespace spindle::detail
