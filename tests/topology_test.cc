// Topology: counts agree with hwloc's and the OS's, CUDA_VISIBLE_DEVICES, the no-GPU path.
#include <gtest/gtest.h>
#include <hwloc.h>
#include <sched.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "spindle/spindle.hpp"

namespace spindle {
namespace {

// Counts straight from hwloc, restricted to this process's binding as spindle promises.
struct HwlocCounts {
  int packages, numa_nodes, cores, pus, caches;
};

HwlocCounts count_with_hwloc() {
  hwloc_topology_t topology;
  hwloc_topology_init(&topology);
  hwloc_topology_set_icache_types_filter(topology, HWLOC_TYPE_FILTER_KEEP_ALL);
  hwloc_topology_load(topology);
  hwloc_bitmap_t bound = hwloc_bitmap_alloc();
  hwloc_get_cpubind(topology, bound, HWLOC_CPUBIND_PROCESS);
  hwloc_bitmap_and(bound, bound, hwloc_topology_get_allowed_cpuset(topology));
  hwloc_topology_restrict(topology, bound, 0);
  hwloc_bitmap_free(bound);
  int caches = 0;
  for (hwloc_obj_type_t type :
       {HWLOC_OBJ_L1CACHE, HWLOC_OBJ_L2CACHE, HWLOC_OBJ_L3CACHE, HWLOC_OBJ_L4CACHE,
        HWLOC_OBJ_L5CACHE, HWLOC_OBJ_L1ICACHE, HWLOC_OBJ_L2ICACHE, HWLOC_OBJ_L3ICACHE}) {
    caches += hwloc_get_nbobjs_by_type(topology, type);
  }
  HwlocCounts counts{hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_PACKAGE),
                     hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_NUMANODE),
                     hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_CORE),
                     hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_PU), caches};
  hwloc_topology_destroy(topology);
  return counts;
}

TEST(Topology, CountsAgreeWithHwloc) {
  Topology topology = Topology::discover();
  HwlocCounts hwloc = count_with_hwloc();
  EXPECT_EQ(topology.packages.size(), static_cast<std::size_t>(std::max(hwloc.packages, 1)));
  EXPECT_EQ(topology.numa_nodes.size(), static_cast<std::size_t>(hwloc.numa_nodes));
  EXPECT_EQ(topology.num_cores(),
            static_cast<std::size_t>(hwloc.cores > 0 ? hwloc.cores : hwloc.pus));
  EXPECT_EQ(topology.num_pus(), static_cast<std::size_t>(hwloc.pus));
  EXPECT_EQ(topology.caches.size(), static_cast<std::size_t>(hwloc.caches));
}

TEST(Topology, AllowedPusAreTheProcessAffinity) {
  cpu_set_t affinity;
  ASSERT_EQ(sched_getaffinity(0, sizeof affinity, &affinity), 0);
  Topology topology = Topology::discover();
  EXPECT_EQ(topology.num_pus(), static_cast<std::size_t>(CPU_COUNT(&affinity)));
  for (unsigned pu : topology.allowed_pus) EXPECT_TRUE(CPU_ISSET(pu, &affinity)) << "PU " << pu;
  std::size_t pus_in_cores = 0;
  for (const Core& core : topology.cores) pus_in_cores += core.pus.size();
  EXPECT_EQ(pus_in_cores, topology.num_pus());
  EXPECT_GE(topology.machine_pus, topology.num_pus());
}

TEST(Topology, EveryCoreBelongsToOnePackageAndCachesHaveSizes) {
  Topology topology = Topology::discover();
  std::size_t cores_in_packages = 0;
  for (const Package& package : topology.packages) cores_in_packages += package.cores.size();
  EXPECT_EQ(cores_in_packages, topology.num_cores());
  for (const Cache& cache : topology.caches) {
    EXPECT_GT(cache.size_bytes, 0u) << "L" << cache.level;
    EXPECT_FALSE(cache.cores.empty()) << "L" << cache.level;
  }
  EXPECT_GT(topology.memory_bytes, 0u);
}

TEST(Topology, JsonHasTheSameCounts) {
  Topology topology = Topology::discover();
  nlohmann::json json = nlohmann::json::parse(to_json(topology));
  EXPECT_EQ(json["cores"].size(), topology.num_cores());
  EXPECT_EQ(json["allowed_pus"].size(), topology.num_pus());
  EXPECT_EQ(json["caches"].size(), topology.caches.size());
  EXPECT_EQ(json["gpus"].size(), topology.gpus.size());
  EXPECT_EQ(json["gpu_note"], topology.gpu_note);
}

TEST(Topology, TextShowsCoresAndGpus) {
  Topology topology = Topology::discover();
  std::string text = to_text(topology);
  EXPECT_NE(text.find("Machine: "), std::string::npos);
  EXPECT_NE(text.find("Core 0 "), std::string::npos);
  if (topology.gpus.empty()) {
    EXPECT_NE(text.find("GPUs: none (" + topology.gpu_note + ")"), std::string::npos) << text;
  } else {
    EXPECT_NE(text.find("GPU 0: " + topology.gpus[0].name), std::string::npos) << text;
  }
}

// With no driver or no device (the CI machine) discovery succeeds with zero GPUs and says why.
TEST(Topology, NoGpuMeansZeroGpusWithAReason) {
  Topology topology = Topology::discover();
  if (!topology.gpus.empty())
    GTEST_SKIP() << "this machine has " << topology.gpus.size() << " GPUs";
  EXPECT_FALSE(topology.gpu_note.empty());
#ifdef SPINDLE_HAVE_CUDA
  EXPECT_TRUE(topology.built_with_cuda);
  EXPECT_TRUE(topology.gpu_note.find("CUDA") != std::string::npos) << topology.gpu_note;
#else
  EXPECT_FALSE(topology.built_with_cuda);
  EXPECT_EQ(topology.gpu_note,
            "spindle was built without CUDA (SPINDLE_CUDA=OFF or no nvcc found)");
#endif
}

// An empty CUDA_VISIBLE_DEVICES hides every GPU, on machines with GPUs too.
TEST(Topology, EmptyCudaVisibleDevicesHidesEveryGpu) {
  const char* saved = std::getenv("CUDA_VISIBLE_DEVICES");
  std::string saved_value = saved ? saved : "";
  setenv("CUDA_VISIBLE_DEVICES", "", 1);
  Topology topology = Topology::discover();
  saved ? setenv("CUDA_VISIBLE_DEVICES", saved_value.c_str(), 1) : unsetenv("CUDA_VISIBLE_DEVICES");
  EXPECT_TRUE(topology.gpus.empty());
  EXPECT_TRUE(topology.cuda_visible_devices.set);
#ifdef SPINDLE_HAVE_CUDA
  EXPECT_EQ(topology.gpu_note, "CUDA_VISIBLE_DEVICES hides every device");
#endif
}

TEST(CudaVisibleDevices, UnsetMeansNoRestriction) {
  CudaVisibleDevices visible = parse_cuda_visible_devices(nullptr);
  EXPECT_FALSE(visible.set);
  EXPECT_TRUE(visible.entries.empty());
}

TEST(CudaVisibleDevices, ParsesIndicesAndUuids) {
  CudaVisibleDevices visible = parse_cuda_visible_devices("2, 0,GPU-8e3b-41aa ,MIG-1f2e");
  EXPECT_TRUE(visible.set);
  EXPECT_EQ(visible.entries, (std::vector<std::string>{"2", "0", "GPU-8e3b-41aa", "MIG-1f2e"}));
  EXPECT_EQ(visible.problem, "");
}

TEST(CudaVisibleDevices, EmptyHidesAll) {
  CudaVisibleDevices visible = parse_cuda_visible_devices("  ");
  EXPECT_TRUE(visible.set);
  EXPECT_TRUE(visible.entries.empty());
}

TEST(CudaVisibleDevices, StopsAtTheFirstInvalidEntry) {
  CudaVisibleDevices visible = parse_cuda_visible_devices("1,x,0");
  EXPECT_EQ(visible.entries, std::vector<std::string>{"1"});
  EXPECT_EQ(visible.problem,
            "CUDA_VISIBLE_DEVICES entry 'x' (position 2) is not a device index or a GPU-/MIG- "
            "UUID; CUDA ignores it and every entry after it");
  EXPECT_TRUE(parse_cuda_visible_devices("-1").entries.empty());
  EXPECT_EQ(parse_cuda_visible_devices("0,1,").entries, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(parse_cuda_visible_devices("GPU-").entries.size(), 0u);
}

TEST(CudaVisibleDevices, StopsAtARepeatedEntry) {
  CudaVisibleDevices visible = parse_cuda_visible_devices("0,1,0,2");
  EXPECT_EQ(visible.entries, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(visible.problem,
            "CUDA_VISIBLE_DEVICES entry '0' (position 3) repeats an earlier one; CUDA ignores it "
            "and every entry after it");
}

TEST(Format, IndexListsAndBytes) {
  EXPECT_EQ(format_index_list({0, 1, 2, 4, 6, 7}), "0-2,4,6-7");
  EXPECT_EQ(format_index_list({3}), "3");
  EXPECT_EQ(format_index_list({}), "");
  EXPECT_EQ(format_bytes(17), "17 B");
  EXPECT_EQ(format_bytes(1024), "1 KiB");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(32ull << 20), "32 MiB");
}

}  // namespace
}  // namespace spindle
