// Topology discovery with hwloc 2, restricted to what this process may use.
#include "spindle/topology.hpp"

#include <hwloc.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <string>

#include "spindle/errors.hpp"
#include "topology/gpu_probe.hpp"
#include "topology/hwloc_handles.hpp"

namespace spindle {
namespace {

// hwloc already leaves out what cgroups forbid; the CPU affinity (taskset) is ours to apply.
void restrict_to_process(hwloc_topology_t topology) {
  detail::BitmapHandle allowed = detail::make_bitmap();
  hwloc_bitmap_copy(allowed.get(), hwloc_topology_get_allowed_cpuset(topology));
  detail::BitmapHandle bound = detail::make_bitmap();
  if (hwloc_get_cpubind(topology, bound.get(), HWLOC_CPUBIND_PROCESS) == 0) {
    hwloc_bitmap_and(allowed.get(), allowed.get(), bound.get());
  }
  if (hwloc_bitmap_iszero(allowed.get()) ||
      hwloc_bitmap_isequal(allowed.get(), hwloc_topology_get_topology_cpuset(topology))) {
    return;
  }
  if (hwloc_topology_restrict(topology, allowed.get(), 0) != 0) {
    throw Error(std::string("hwloc_topology_restrict failed: ") + std::strerror(errno));
  }
}

// Cores as hwloc sees them; a machine that reports no cores gets one per PU.
std::vector<hwloc_obj_t> core_objects(hwloc_topology_t topology) {
  hwloc_obj_type_t type =
      hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
  std::vector<hwloc_obj_t> cores;
  for (hwloc_obj_t obj = nullptr; (obj = hwloc_get_next_obj_by_type(topology, type, obj));) {
    cores.push_back(obj);
  }
  return cores;
}

std::vector<unsigned> cores_within(const std::vector<hwloc_obj_t>& cores,
                                   hwloc_const_cpuset_t cpuset) {
  std::vector<unsigned> inside;
  for (unsigned i = 0; i < cores.size(); ++i) {
    if (hwloc_bitmap_intersects(cores[i]->cpuset, cpuset)) inside.push_back(i);
  }
  return inside;
}

unsigned package_of(hwloc_topology_t topology, hwloc_obj_t obj) {
  hwloc_obj_t package = hwloc_get_ancestor_obj_by_type(topology, HWLOC_OBJ_PACKAGE, obj);
  return package ? package->logical_index : 0;
}

void add_packages(hwloc_topology_t topology, const std::vector<hwloc_obj_t>& cores, Topology& out) {
  for (hwloc_obj_t obj = nullptr;
       (obj = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_PACKAGE, obj));) {
    const char* model = hwloc_obj_get_info_by_name(obj, "CPUModel");
    out.packages.push_back(
        {obj->logical_index, obj->os_index, model ? model : "", cores_within(cores, obj->cpuset)});
  }
  if (out.packages.empty()) {  // some virtual machines report none: one package holds all
    std::vector<unsigned> all(cores.size());
    for (unsigned i = 0; i < all.size(); ++i) all[i] = i;
    out.packages.push_back({0, 0, "", std::move(all)});
  }
}

void add_cores(hwloc_topology_t topology, const std::vector<hwloc_obj_t>& cores, Topology& out) {
  for (unsigned i = 0; i < cores.size(); ++i) {
    out.cores.push_back({i, cores[i]->os_index, package_of(topology, cores[i]),
                         detail::pu_indices(cores[i]->cpuset)});
  }
}

void add_numa_nodes(hwloc_topology_t topology, const std::vector<hwloc_obj_t>& cores,
                    Topology& out) {
  for (hwloc_obj_t obj = nullptr;
       (obj = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_NUMANODE, obj));) {
    out.numa_nodes.push_back(
        {obj->os_index, obj->attr->numanode.local_memory, cores_within(cores, obj->cpuset)});
  }
}

const char* cache_kind(hwloc_obj_cache_type_t type) {
  switch (type) {
    case HWLOC_OBJ_CACHE_DATA:
      return "data";
    case HWLOC_OBJ_CACHE_INSTRUCTION:
      return "instruction";
    default:
      return "unified";
  }
}

void add_caches(hwloc_topology_t topology, const std::vector<hwloc_obj_t>& cores, Topology& out) {
  constexpr std::array kCacheTypes = {HWLOC_OBJ_L1CACHE,  HWLOC_OBJ_L1ICACHE, HWLOC_OBJ_L2CACHE,
                                      HWLOC_OBJ_L2ICACHE, HWLOC_OBJ_L3CACHE,  HWLOC_OBJ_L3ICACHE,
                                      HWLOC_OBJ_L4CACHE,  HWLOC_OBJ_L5CACHE};
  for (hwloc_obj_type_t type : kCacheTypes) {
    for (hwloc_obj_t obj = nullptr; (obj = hwloc_get_next_obj_by_type(topology, type, obj));) {
      const hwloc_obj_attr_u::hwloc_cache_attr_s& cache = obj->attr->cache;
      out.caches.push_back({cache.depth, cache_kind(cache.type), cache.size, cache.linesize,
                            package_of(topology, obj), cores_within(cores, obj->cpuset)});
    }
  }
}

std::uint64_t physical_memory() {
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page_size > 0 ? static_cast<std::uint64_t>(pages) * page_size : 0;
}

// The cgroup v2 memory.max of this process's group, or v1's limit_in_bytes.
std::optional<std::uint64_t> cgroup_memory_limit() {
  std::vector<std::string> candidates;
  std::ifstream membership("/proc/self/cgroup");
  for (std::string line; std::getline(membership, line);) {
    if (line.starts_with("0::"))
      candidates.push_back("/sys/fs/cgroup" + line.substr(3) + "/memory.max");
  }
  candidates.push_back("/sys/fs/cgroup/memory.max");
  candidates.push_back("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  for (const std::string& path : candidates) {
    std::ifstream file(path);
    std::string value;
    if (!(file >> value)) continue;
    if (value == "max") return std::nullopt;
    try {
      return std::stoull(value);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::string host_name() {
  std::array<char, 256> name{};
  return gethostname(name.data(), name.size() - 1) == 0 ? name.data() : "";
}

bool valid_visible_entry(std::string_view entry) {
  if (entry.starts_with("GPU-") || entry.starts_with("MIG-")) return entry.size() > 4;
  return !entry.empty() && std::ranges::all_of(entry, [](char c) { return c >= '0' && c <= '9'; });
}

std::string_view trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t";
  std::size_t first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(kSpace) - first + 1);
}

}  // namespace

namespace detail {

TopologyHandle load_topology() {
  hwloc_topology_t raw = nullptr;
  if (hwloc_topology_init(&raw) != 0) {
    throw Error(std::string("hwloc_topology_init failed: ") + std::strerror(errno));
  }
  TopologyHandle topology(raw, &hwloc_topology_destroy);
  hwloc_topology_set_icache_types_filter(raw, HWLOC_TYPE_FILTER_KEEP_ALL);  // off by default
  if (hwloc_topology_load(raw) != 0) {
    throw Error(std::string("hwloc_topology_load failed: ") + std::strerror(errno));
  }
  return topology;
}

std::vector<unsigned> pu_indices(hwloc_const_cpuset_t cpuset) {
  std::vector<unsigned> indices;
  for (int i = hwloc_bitmap_first(cpuset); i >= 0; i = hwloc_bitmap_next(cpuset, i)) {
    indices.push_back(static_cast<unsigned>(i));
  }
  return indices;
}

std::optional<unsigned> nearest_numa_node(hwloc_topology_t topology, hwloc_const_cpuset_t cpuset) {
  std::optional<unsigned> best;
  int best_shared = 0;
  BitmapHandle shared = make_bitmap();
  for (hwloc_obj_t node = nullptr;
       (node = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_NUMANODE, node));) {
    hwloc_bitmap_and(shared.get(), node->cpuset, cpuset);
    int weight = hwloc_bitmap_weight(shared.get());
    if (weight > best_shared) {
      best_shared = weight;
      best = node->os_index;
    }
  }
  return best;
}

}  // namespace detail

CudaVisibleDevices parse_cuda_visible_devices(const char* value) {
  CudaVisibleDevices visible;
  if (value == nullptr) return visible;
  visible.set = true;
  std::string_view rest = value;
  if (trim(rest).empty()) return visible;
  for (std::size_t position = 1;; ++position) {
    std::size_t comma = rest.find(',');
    std::string_view entry = trim(rest.substr(0, comma));
    bool repeated = std::ranges::find(visible.entries, entry) != visible.entries.end();
    if (!valid_visible_entry(entry) || repeated) {
      visible.problem =
          "CUDA_VISIBLE_DEVICES entry '" + std::string(entry) + "' (position " +
          std::to_string(position) + ") " +
          (repeated ? "repeats an earlier one" : "is not a device index or a GPU-/MIG- UUID") +
          "; CUDA ignores it and every entry after it";
      break;
    }
    visible.entries.emplace_back(entry);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return visible;
}

Topology Topology::discover() {
  detail::TopologyHandle handle = detail::load_topology();
  hwloc_topology_t topology = handle.get();
  Topology out;
  out.hostname = host_name();
  out.machine_pus =
      static_cast<unsigned>(hwloc_bitmap_weight(hwloc_topology_get_complete_cpuset(topology)));
  restrict_to_process(topology);
  out.allowed_pus = detail::pu_indices(hwloc_topology_get_topology_cpuset(topology));

  std::vector<hwloc_obj_t> cores = core_objects(topology);
  add_packages(topology, cores, out);
  add_cores(topology, cores, out);
  add_numa_nodes(topology, cores, out);
  add_caches(topology, cores, out);

  out.memory_bytes = physical_memory();
  if (auto limit = cgroup_memory_limit(); limit && *limit < out.memory_bytes) {
    out.memory_limit_bytes = limit;
  }

  out.cuda_visible_devices = parse_cuda_visible_devices(std::getenv("CUDA_VISIBLE_DEVICES"));
#ifdef SPINDLE_HAVE_CUDA
  out.built_with_cuda = true;
#endif
  detail::GpuProbe probe = detail::probe_gpus(topology, out.cuda_visible_devices);
  out.gpus = std::move(probe.gpus);
  out.gpu_note = std::move(probe.note);
  return out;
}

std::uint64_t Topology::usable_memory_bytes() const {
  return memory_limit_bytes ? std::min(*memory_limit_bytes, memory_bytes) : memory_bytes;
}

}  // namespace spindle
