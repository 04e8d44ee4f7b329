// Owning handles for hwloc objects, shared by the topology and the executor's pinning.
#pragma once

#include <hwloc.h>

#include <memory>

namespace spindle::detail {

using TopologyHandle = std::unique_ptr<hwloc_topology, decltype(&hwloc_topology_destroy)>;
using BitmapHandle = std::unique_ptr<hwloc_bitmap_s, decltype(&hwloc_bitmap_free)>;

inline BitmapHandle make_bitmap() { return {hwloc_bitmap_alloc(), &hwloc_bitmap_free}; }

/// Loads this machine's topology, instruction caches included.
/// @throws Error if hwloc fails.
TopologyHandle load_topology();

}  // namespace spindle::detail
