// Printing a Topology: a readable tree and JSON.
#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <sstream>
#include <tuple>

#include "internal/json.hpp"
#include "spindle/topology.hpp"

namespace spindle {
namespace {

// Caches of one package with the same level, kind and size, printed as one line.
struct CacheGroup {
  unsigned count = 0;
  std::size_t max_sharing = 0;
  std::vector<unsigned> cores;
};

std::string describe_sharing(const CacheGroup& group) {
  if (group.max_sharing <= 1)
    return group.count > 1 ? "one per core" : "core " + format_index_list(group.cores);
  if (group.count == 1) return "shared by cores " + format_index_list(group.cores);
  return "each shared by up to " + std::to_string(group.max_sharing) + " cores";
}

void print_caches(std::ostream& out, const Topology& topology, unsigned package) {
  // Keyed so that the outermost level prints first, as hwloc-ls does.
  using Key = std::tuple<unsigned, std::string, std::uint64_t>;
  std::map<Key, CacheGroup, std::greater<>> groups;
  for (const Cache& cache : topology.caches) {
    if (cache.package != package) continue;
    CacheGroup& group = groups[{cache.level, cache.kind, cache.size_bytes}];
    ++group.count;
    group.max_sharing = std::max(group.max_sharing, cache.cores.size());
    group.cores.insert(group.cores.end(), cache.cores.begin(), cache.cores.end());
  }
  for (auto& [key, group] : groups) {
    std::ranges::sort(group.cores);
    const auto& [level, kind, size] = key;
    out << "    L" << level << ' ' << kind << ' ' << format_bytes(size) << " x " << group.count
        << ", " << describe_sharing(group) << '\n';
  }
}

void print_gpus(std::ostream& out, const Topology& topology) {
  if (topology.gpus.empty()) {
    out << "GPUs: none (" << topology.gpu_note << ")\n";
    return;
  }
  out << "GPUs: " << topology.gpus.size() << '\n';
  for (const Gpu& gpu : topology.gpus) {
    out << "  GPU " << gpu.index << ": " << gpu.name << ", " << format_bytes(gpu.memory_bytes)
        << ", compute " << gpu.compute_major << '.' << gpu.compute_minor << ", PCI "
        << gpu.pci_bus_id << ", near PUs " << format_index_list(gpu.local_pus);
    if (gpu.numa_node) out << ", NUMA node " << *gpu.numa_node;
    if (!gpu.visible_as.empty()) out << ", CUDA_VISIBLE_DEVICES entry '" << gpu.visible_as << "'";
    out << '\n';
  }
  if (!topology.gpu_note.empty()) out << "  note: " << topology.gpu_note << '\n';
}

}  // namespace

std::string format_index_list(const std::vector<unsigned>& indices) {
  std::string text;
  for (std::size_t i = 0; i < indices.size();) {
    std::size_t j = i;
    while (j + 1 < indices.size() && indices[j + 1] == indices[j] + 1) ++j;
    if (!text.empty()) text += ',';
    text += std::to_string(indices[i]);
    if (j > i) text += '-' + std::to_string(indices[j]);
    i = j + 1;
  }
  return text;
}

std::string format_bytes(std::uint64_t bytes) {
  constexpr std::array kUnits = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < kUnits.size()) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  if (unit == 0 || value == static_cast<double>(static_cast<std::uint64_t>(value))) {
    std::snprintf(text, sizeof text, "%.0f %s", value, kUnits[unit]);
  } else {
    std::snprintf(text, sizeof text, "%.1f %s", value, kUnits[unit]);
  }
  return text;
}

std::string to_text(const Topology& topology) {
  std::ostringstream out;
  out << "Machine: " << topology.hostname << ", " << topology.num_pus() << " of "
      << topology.machine_pus << " PUs allowed (" << format_index_list(topology.allowed_pus)
      << "), " << format_bytes(topology.memory_bytes) << " RAM";
  if (topology.memory_limit_bytes) {
    out << ", cgroup limit " << format_bytes(*topology.memory_limit_bytes);
  }
  out << '\n';
  for (const NumaNode& node : topology.numa_nodes) {
    out << "  NUMA node " << node.os_index << ": " << format_bytes(node.memory_bytes);
    out << (node.cores.empty() ? ", no allowed cores" : ", cores " + format_index_list(node.cores))
        << '\n';
  }
  for (const Package& package : topology.packages) {
    out << "  Package " << package.os_index;
    if (!package.model.empty()) out << ": " << package.model;
    out << ", " << package.cores.size() << (package.cores.size() == 1 ? " core\n" : " cores\n");
    print_caches(out, topology, package.index);
    for (unsigned index : package.cores) {
      const Core& core = topology.cores[index];
      out << "    Core " << core.index << " (os " << core.os_index << "): PU "
          << format_index_list(core.pus) << '\n';
    }
  }
  print_gpus(out, topology);
  return out.str();
}

std::string to_json(const Topology& topology) { return detail::to_json_value(topology).dump(2); }

namespace detail {

Json to_json_value(const Topology& topology) {
  Json packages = Json::array();
  for (const Package& p : topology.packages) {
    packages.push_back(
        {{"index", p.index}, {"os_index", p.os_index}, {"model", p.model}, {"cores", p.cores}});
  }
  Json numa = Json::array();
  for (const NumaNode& n : topology.numa_nodes) {
    numa.push_back(
        {{"os_index", n.os_index}, {"memory_bytes", n.memory_bytes}, {"cores", n.cores}});
  }
  Json cores = Json::array();
  for (const Core& c : topology.cores) {
    cores.push_back(
        {{"index", c.index}, {"os_index", c.os_index}, {"package", c.package}, {"pus", c.pus}});
  }
  Json caches = Json::array();
  for (const Cache& c : topology.caches) {
    caches.push_back({{"level", c.level},
                      {"kind", c.kind},
                      {"size_bytes", c.size_bytes},
                      {"line_bytes", c.line_bytes},
                      {"package", c.package},
                      {"cores", c.cores}});
  }
  Json gpus = Json::array();
  for (const Gpu& g : topology.gpus) {
    gpus.push_back({{"index", g.index},
                    {"name", g.name},
                    {"memory_bytes", g.memory_bytes},
                    {"compute_capability",
                     std::to_string(g.compute_major) + "." + std::to_string(g.compute_minor)},
                    {"pci_bus_id", g.pci_bus_id},
                    {"local_pus", g.local_pus},
                    {"numa_node", g.numa_node ? Json(*g.numa_node) : Json(nullptr)},
                    {"visible_as", g.visible_as}});
  }
  const CudaVisibleDevices& visible = topology.cuda_visible_devices;
  Json json = {{"hostname", topology.hostname},
               {"machine_pus", topology.machine_pus},
               {"allowed_pus", topology.allowed_pus},
               {"memory_bytes", topology.memory_bytes},
               {"memory_limit_bytes",
                topology.memory_limit_bytes ? Json(*topology.memory_limit_bytes) : Json(nullptr)},
               {"packages", packages},
               {"numa_nodes", numa},
               {"cores", cores},
               {"caches", caches},
               {"built_with_cuda", topology.built_with_cuda},
               {"gpus", gpus},
               {"gpu_note", topology.gpu_note},
               {"cuda_visible_devices",
                visible.set ? Json{{"entries", visible.entries}, {"problem", visible.problem}}
                            : Json(nullptr)}};
  return json;
}

}  // namespace detail
}  // namespace spindle
