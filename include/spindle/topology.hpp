// Topology: the machine as this process may use it.
//
// Discovered with hwloc 2 and restricted to the process's allowed cpuset (the
// intersection of cgroup limits and the CPU affinity set by `taskset`), plus the
// GPUs the CUDA runtime reports. Pure data: copy it, print it, serialise it.
// No driver or no device means zero GPUs with the reason in `gpu_note`; discovery
// never fails because of the GPU side.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spindle {

/// @brief A physical core; PUs are its hardware threads (OS indices).
struct Core {
  unsigned index = 0;     ///< Logical index among the allowed cores, from 0.
  unsigned os_index = 0;  ///< The operating system's core id.
  unsigned package = 0;   ///< Logical index of its package.
  std::vector<unsigned> pus;
};

/// @brief A processor package (socket).
struct Package {
  unsigned index = 0;
  unsigned os_index = 0;
  std::string model;            ///< CPU model as the OS reports it; may be empty.
  std::vector<unsigned> cores;  ///< Logical core indices.
};

/// @brief A NUMA node; in hwloc 2 these are memory children of the CPU tree.
struct NumaNode {
  unsigned os_index = 0;
  std::uint64_t memory_bytes = 0;
  std::vector<unsigned> cores;  ///< Allowed cores local to it; empty for CPU-less nodes.
};

/// @brief One CPU cache instance.
struct Cache {
  unsigned level = 0;
  std::string kind;  ///< "data", "instruction" or "unified".
  std::uint64_t size_bytes = 0;
  unsigned line_bytes = 0;
  unsigned package = 0;
  std::vector<unsigned> cores;  ///< Logical indices of the allowed cores that share it.
};

/// @brief A GPU as the CUDA runtime numbers it (after CUDA_VISIBLE_DEVICES).
struct Gpu {
  int index = 0;
  std::string name;
  std::uint64_t memory_bytes = 0;
  int compute_major = 0;
  int compute_minor = 0;
  std::string pci_bus_id;             ///< "0000:65:00.0".
  std::vector<unsigned> local_pus;    ///< OS indices of the PUs close to it.
  std::optional<unsigned> numa_node;  ///< OS index of the nearest NUMA node, if known.
  std::string visible_as;             ///< The CUDA_VISIBLE_DEVICES entry that selected it, if set.
};

/// @brief CUDA_VISIBLE_DEVICES as the CUDA runtime reads it.
struct CudaVisibleDevices {
  bool set = false;                  ///< The variable exists (it may be empty).
  std::vector<std::string> entries;  ///< Entries in effect: indices or GPU-/MIG- UUIDs.
  std::string problem;  ///< Why entries were dropped (CUDA ignores all from the first bad one).
};

/// @brief Parses a CUDA_VISIBLE_DEVICES value; nullptr means unset.
///
/// Entries are decimal device indices or UUIDs starting with "GPU-" or "MIG-",
/// separated by commas, spaces around them ignored. As in the CUDA runtime, the
/// first entry that is not valid (or repeats an earlier one) hides itself and every
/// entry after it.
CudaVisibleDevices parse_cuda_visible_devices(const char* value);

/// @brief The machine's processors, memory and GPUs as this process may use them.
struct Topology {
  std::string hostname;
  std::vector<unsigned> allowed_pus;  ///< OS indices of the PUs the process may run on.
  unsigned machine_pus = 0;           ///< PUs on the machine, allowed or not.
  std::vector<Package> packages;
  std::vector<NumaNode> numa_nodes;
  std::vector<Core> cores;
  std::vector<Cache> caches;
  std::uint64_t memory_bytes = 0;                   ///< Physical RAM of the machine.
  std::optional<std::uint64_t> memory_limit_bytes;  ///< A cgroup limit below RAM, if any.

  std::vector<Gpu> gpus;
  std::string gpu_note;  ///< Why there are no GPUs, or what limited them; empty otherwise.
  CudaVisibleDevices cuda_visible_devices;
  bool built_with_cuda = false;

  /// @brief Discovers the machine now. Throws spindle::Error only if hwloc itself fails.
  static Topology discover();

  [[nodiscard]] std::size_t num_pus() const { return allowed_pus.size(); }
  [[nodiscard]] std::size_t num_cores() const { return cores.size(); }
  /// Memory this process may use: RAM, or the cgroup limit when lower.
  [[nodiscard]] std::uint64_t usable_memory_bytes() const;
};

/// @brief A readable tree, in the spirit of `hwloc-ls`.
std::string to_text(const Topology& topology);
/// @brief The same as a JSON object.
std::string to_json(const Topology& topology);

/// @brief "0-3,8,10-11" for a sorted list of indices; "" for none.
std::string format_index_list(const std::vector<unsigned>& indices);
/// @brief "1.5 GiB", "512 KiB", "17 B".
std::string format_bytes(std::uint64_t bytes);

}  // namespace spindle
