// Finding GPUs with the CUDA runtime, placed on the machine with hwloc's cudart helpers.
#include <cuda_runtime_api.h>
#include <hwloc/cudart.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <string>

#include "topology/gpu_probe.hpp"

namespace spindle::detail {
namespace {

// The probe's failures go into its note; they are cleared from the thread's last CUDA
// error, so that no later CUDA call reports them as its own.
std::string describe(cudaError_t error, const char* call) {
  (void)cudaGetLastError();
  std::string what = std::string(call) + " returned " + cudaGetErrorName(error) + ", \"" +
                     cudaGetErrorString(error) + "\"";
  switch (error) {
    case cudaErrorInsufficientDriver:
      return "no usable CUDA driver: " + what;
    case cudaErrorNoDevice:
      return "no CUDA device: " + what;
    default:
      return "CUDA unavailable: " + what;
  }
}

Gpu describe_device(hwloc_topology_t topology, int index, const cudaDeviceProp& prop) {
  Gpu gpu;
  gpu.index = index;
  gpu.name = prop.name;
  gpu.memory_bytes = prop.totalGlobalMem;
  gpu.compute_major = prop.major;
  gpu.compute_minor = prop.minor;
  char bus_id[32] = {};
  if (cudaDeviceGetPCIBusId(bus_id, sizeof bus_id, index) == cudaSuccess) {
    gpu.pci_bus_id = bus_id;
    std::ranges::transform(gpu.pci_bus_id, gpu.pci_bus_id.begin(),
                           [](unsigned char c) { return std::tolower(c); });
  }
  std::unique_ptr<hwloc_bitmap_s, decltype(&hwloc_bitmap_free)> cpuset(hwloc_bitmap_alloc(),
                                                                       &hwloc_bitmap_free);
  if (hwloc_cudart_get_device_cpuset(topology, index, cpuset.get()) == 0) {
    hwloc_bitmap_and(cpuset.get(), cpuset.get(), hwloc_topology_get_topology_cpuset(topology));
    gpu.local_pus = pu_indices(cpuset.get());
    gpu.numa_node = nearest_numa_node(topology, cpuset.get());
  }
  (void)cudaGetLastError();  // a missing bus id or cpuset only leaves those fields empty
  return gpu;
}

}  // namespace

// Appends what CUDA_VISIBLE_DEVICES dropped, so that a note explains every hidden device.
static GpuProbe with_visibility_problem(GpuProbe probe, const CudaVisibleDevices& visible) {
  if (!visible.problem.empty()) probe.note += (probe.note.empty() ? "" : "; ") + visible.problem;
  return probe;
}

GpuProbe probe_gpus(hwloc_topology_t topology, const CudaVisibleDevices& visible) {
  GpuProbe probe;
  if (visible.set && visible.entries.empty()) {
    probe.note = "CUDA_VISIBLE_DEVICES hides every device";
    return with_visibility_problem(std::move(probe), visible);
  }
  int count = 0;
  if (cudaError_t error = cudaGetDeviceCount(&count); error != cudaSuccess) {
    probe.note = describe(error, "cudaGetDeviceCount");
    return with_visibility_problem(std::move(probe), visible);
  }
  for (int index = 0; index < count; ++index) {
    cudaDeviceProp prop{};
    if (cudaError_t error = cudaGetDeviceProperties(&prop, index); error != cudaSuccess) {
      probe.note = "device " + std::to_string(index) +
                   " skipped: " + describe(error, "cudaGetDeviceProperties");
      continue;
    }
    Gpu gpu = describe_device(topology, index, prop);
    if (visible.set && static_cast<std::size_t>(index) < visible.entries.size()) {
      gpu.visible_as = visible.entries[static_cast<std::size_t>(index)];
    }
    probe.gpus.push_back(std::move(gpu));
  }
  if (probe.gpus.empty() && probe.note.empty()) probe.note = "no CUDA device";
  return with_visibility_problem(std::move(probe), visible);
}

}  // namespace spindle::detail
