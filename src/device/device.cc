// The device layer's parts that do not depend on CUDA: locations, the task's device and
// stream, and the checks.
#include <cstdlib>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "device/device_runtime.hpp"
#include "spindle/detail/execution_context.hpp"
#include "spindle/detail/thread_annotations.hpp"
#include "spindle/errors.hpp"

namespace spindle {

Location Location::here() {
  detail::ExecutionContext* task = detail::current_context();
  return task && task->device >= 0 ? Location::gpu(task->device) : Location::host();
}

std::string Location::to_string() const {
  switch (kind) {
    case Kind::host:
      return "host";
    case Kind::pinned:
      return "pinned host";
    case Kind::gpu:
      return "GPU " + std::to_string(device);
  }
  return "unknown location";
}

void Stream::synchronize() const {
  if (on_gpu()) detail::wait_stream(*this);
}

namespace this_task {

Stream stream() {
  detail::ExecutionContext* task = detail::current_context();
  if (task) {
    if (task->device < 0) return Stream();
    if (!task->stream.on_gpu()) task->stream = detail::acquire_stream(task->device);
    return task->stream;
  }
  int device = detail::current_device();
  return device >= 0 ? detail::default_stream(device) : Stream();
}

}  // namespace this_task

namespace detail {

namespace {

// Large host blocks are kept for reuse, by exact size: buffers of one size come and go in
// training loops, and on a virtual machine every first touch of a fresh page is a costly
// fault. Up to kCacheLimit bytes are kept; they go back to the system only at exit.
constexpr std::size_t kCachedMin = std::size_t{1} << 20;
constexpr std::size_t kCacheLimit = std::size_t{1} << 30;

struct HostCache {
  Mutex mutex;
  std::multimap<std::size_t, void*> free SPINDLE_GUARDED_BY(mutex);
  std::size_t bytes SPINDLE_GUARDED_BY(mutex) = 0;
};

HostCache& host_cache() {
  static auto* cache = new HostCache;  // never destroyed: buffers may be freed during exit
  return *cache;
}

std::size_t rounded(std::size_t bytes) { return (bytes + 63) / 64 * 64; }

}  // namespace

void* allocate_host(std::size_t bytes) {
  std::size_t size = rounded(bytes);
  if (size >= kCachedMin) {
    HostCache& cache = host_cache();
    MutexLock lock(cache.mutex);
    if (auto found = cache.free.find(size); found != cache.free.end()) {
      void* data = found->second;
      cache.free.erase(found);
      cache.bytes -= size;
      return data;
    }
  }
  void* data = std::aligned_alloc(64, size);
  if (!data) {
    throw DeviceError("allocating " + std::to_string(bytes) + " bytes of host memory failed");
  }
  return data;
}

void free_host(void* data, std::size_t bytes) noexcept {
  std::size_t size = rounded(bytes);
  if (size >= kCachedMin) {
    HostCache& cache = host_cache();
    MutexLock lock(cache.mutex);
    if (cache.bytes + size <= kCacheLimit) {
      cache.free.emplace(size, data);
      cache.bytes += size;
      return;
    }
  }
  std::free(data);
}

void check_location(Location location, std::string_view what) {
  if (!location.on_gpu()) return;
  int count = device_count();
  if (location.device < 0 || location.device >= count) {
    throw DeviceError(std::string(what) + ": " + location.to_string() + " does not exist; " +
                      (count == 0 ? std::string("this process sees no GPU")
                                  : "GPUs 0 to " + std::to_string(count - 1) + " exist"));
  }
}

int task_device(const ExecutionContext& task) noexcept {
  if (!task.allocation) return -1;
  int count = device_count();
  for (const GpuShare& share : task.allocation->gpus) {
    if (share.device < count) return share.device;
  }
  return -1;
}

namespace {

// The stream a task leased on `device`, not its own GPU, for the rest of its run.
Stream side_stream(ExecutionContext& task, int device) {
  if (!task.side_streams) task.side_streams = std::make_unique<std::vector<Stream>>();
  for (Stream stream : *task.side_streams) {
    if (stream.device() == device) return stream;
  }
  Stream stream = acquire_stream(device);
  task.side_streams->push_back(stream);
  return stream;
}

}  // namespace

Stream stream_for(Location location) {
  if (!location.on_gpu()) return Stream();
  ExecutionContext* task = current_context();
  if (!task) return default_stream(location.device);
  if (task->device == location.device) return this_task::stream();
  return side_stream(*task, location.device);
}

void finish_task_stream(ExecutionContext& task) {
  std::exception_ptr failure;
  auto finish = [&failure](Stream stream) {
    try {
      wait_stream(stream);
    } catch (...) {
      if (!failure) failure = std::current_exception();
    }
    release_stream(stream);
  };
  if (task.stream.on_gpu()) finish(std::exchange(task.stream, Stream()));
  if (task.side_streams) {
    for (Stream stream : *task.side_streams) finish(stream);
    task.side_streams.reset();
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace detail
}  // namespace spindle
