// The device layer's private side: current device, stream pool, fiber-aware waits, memory
// and copies. device_cuda.cc implements it with the CUDA runtime; device_none.cc for builds
// without CUDA, where only host locations exist.
#pragma once

#include <cstddef>
#include <string_view>

#include "spindle/detail/execution_context.hpp"
#include "spindle/device.hpp"

namespace spindle::detail {

struct ExecutionContext;

/// Throws DeviceError unless `location` can be used: a GPU must exist.
void check_location(Location location, std::string_view what);

/// The real GPU a task runs on (the first it was granted that exists), or -1.
int task_device(const ExecutionContext& task) noexcept;

/// The stream work at `location` is ordered on for the caller. In a task: its own stream
/// when it runs on that device, else a stream of that device leased for the rest of its run
/// (both are drained before its result is published). Outside tasks: the device's shared
/// default stream. The host stream for a host location.
Stream stream_for(Location location);

/// Streams of the pool: non-blocking, created on first need, kept for the process's life.
Stream acquire_stream(int device);
void release_stream(Stream stream) noexcept;
/// The stream of `device` shared by all code outside tasks.
Stream default_stream(int device);
/// The calling thread's current CUDA device, or -1 without a GPU.
int current_device() noexcept;
/// Waits (fiber-aware) for the work queued on `stream` so far; throws DeviceError.
void wait_stream(Stream stream);
/// Makes `consumer` wait, on the device, for the work queued on `producer` so far (an event
/// between them). Nothing for the same stream or a host stream.
void order_after(Stream consumer, Stream producer);
/// A pinned location when pinned memory can be had, else the host (no GPU).
Location usable(Location location);

/// Waits for the task's leased streams and returns them to the pool; rethrows what failed.
void finish_task_stream(ExecutionContext& task);

/// Memory: pageable host memory is 64-byte aligned; GPU memory comes from the stream-ordered
/// allocator, ordered on `stream`; pinned from cudaMallocHost.
void* allocate(std::size_t bytes, Location location, Stream stream);
/// 64-byte aligned pageable host memory; throws DeviceError naming the size on failure.
/// Blocks of 1 MB and more are kept for reuse by the same size when freed (up to 1 GB).
void* allocate_host(std::size_t bytes);
void free_host(void* data, std::size_t bytes) noexcept;
/// GPU memory is freed ordered on `stream`: the freeing context's stream (stream_for).
void deallocate(void* data, std::size_t bytes, Location location, Stream stream) noexcept;

/// Copies `bytes`, ordered on `stream`, and waits for the copy (fiber-aware). Pageable host
/// memory goes through pinned staging chunks.
void copy(void* dst, Location dst_location, const void* src, Location src_location,
          std::size_t bytes, Stream stream);

/// Sets `bytes` of GPU or host memory to zero, ordered on `stream` (not waited for).
void zero(void* data, std::size_t bytes, Location location, Stream stream);

/// Sets the current device to `device` for a scope and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) noexcept;
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  [[maybe_unused]] int previous_ = -1;  // unused without CUDA
};

}  // namespace spindle::detail
