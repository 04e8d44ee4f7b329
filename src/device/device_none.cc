// The device layer without CUDA: only host memory exists, and every stream is the host's.
#include <cstdlib>
#include <cstring>
#include <string>

#include "device/device_runtime.hpp"
#include "spindle/errors.hpp"

namespace spindle {

int device_count() { return 0; }

namespace detail {

DeviceGuard::DeviceGuard(int) noexcept {}
DeviceGuard::~DeviceGuard() = default;
void make_current(int) noexcept {}
int current_device() noexcept { return -1; }
Stream acquire_stream(int) { return Stream(); }
void release_stream(Stream) noexcept {}
Stream default_stream(int) { return Stream(); }
void wait_stream(Stream) {}
void order_after(Stream, Stream) {}

Location usable(Location location) {
  return location.kind == Location::Kind::pinned ? Location::host() : location;
}

void* allocate(std::size_t bytes, Location location, Stream) {
  check_location(location, "allocate");
  if (bytes == 0) return nullptr;
  return allocate_host(bytes);
}

void deallocate(void* data, std::size_t bytes, Location, Stream) noexcept {
  free_host(data, bytes);
}

void copy(void* dst, Location, const void* src, Location, std::size_t bytes, Stream) {
  if (bytes > 0) std::memcpy(dst, src, bytes);
}

void zero(void* data, std::size_t bytes, Location, Stream) {
  if (bytes > 0) std::memset(data, 0, bytes);
}

}  // namespace detail
}  // namespace spindle
