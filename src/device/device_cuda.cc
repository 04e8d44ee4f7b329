// The device layer on the CUDA runtime: streams, fiber-aware completion, memory, copies.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "device/cuda_check.hpp"
#include "device/device_runtime.hpp"
#include "fibers/event.hpp"
#include "spindle/detail/thread_annotations.hpp"

namespace spindle {

int device_count() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // no driver or no device: zero GPUs, not an error
      return 0;
    }
    return n;
  }();
  return count;
}

namespace detail {
namespace {

cudaStream_t native(Stream stream) { return stream.native_handle(); }

// Both pools live for the process: destroying CUDA objects at exit races the driver's own
// teardown, so they are never freed.
struct StreamPool {
  Mutex mutex;
  std::vector<std::vector<cudaStream_t>> free SPINDLE_GUARDED_BY(mutex);
};
StreamPool& stream_pool() {
  static auto* pool = new StreamPool;
  return *pool;
}

constexpr std::size_t kStagingBytes = std::size_t{8} << 20;
struct StagingPool {
  Mutex mutex;
  std::vector<void*> free SPINDLE_GUARDED_BY(mutex);
};
StagingPool& staging_pool() {
  static auto* pool = new StagingPool;
  return *pool;
}

// Two pinned chunks for double-buffered copies through pageable host memory.
class Staging {
 public:
  explicit Staging(int device) {
    StagingPool& pool = staging_pool();
    MutexLock lock(pool.mutex);
    for (void*& chunk : chunks_) {
      auto& free = pool.free;
      if (!free.empty()) {
        chunk = free.back();
        free.pop_back();
      } else {
        DeviceGuard guard(device);
        check_cuda(cudaMallocHost(&chunk, kStagingBytes), "cudaMallocHost(staging)", device);
      }
    }
  }
  ~Staging() {
    StagingPool& pool = staging_pool();
    MutexLock lock(pool.mutex);
    for (void* chunk : chunks_) {
      if (chunk) pool.free.push_back(chunk);
    }
  }
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;
  char* operator[](std::size_t slot) const { return static_cast<char*>(chunks_[slot]); }

 private:
  std::array<void*, 2> chunks_{};
};

// A point in a stream: its Event completes when the work queued before it has finished.
std::shared_ptr<Event> mark(Stream stream) {
  auto event = std::make_shared<Event>(1);
  auto* kept = new std::shared_ptr<Event>(event);
  cudaHostFn_t done = [](void* data) {
    auto* held = static_cast<std::shared_ptr<Event>*>(data);
    (*held)->on_complete();
    delete held;
  };
  DeviceGuard guard(stream.device());
  if (cudaError_t error = cudaLaunchHostFunc(native(stream), done, kept); error != cudaSuccess) {
    delete kept;
    throw_cuda(error, "cudaLaunchHostFunc", stream.device());
  }
  return event;
}

// Waits for a mark. A failed kernel may leave the callback never called, so the stream is
// polled for an error every millisecond while waiting.
void wait_mark(const std::shared_ptr<Event>& event, Stream stream) {
  using namespace std::chrono_literals;
  auto check = [&] {
    DeviceGuard guard(stream.device());
    cudaError_t state = cudaStreamQuery(native(stream));
    if (state != cudaSuccess && state != cudaErrorNotReady) {
      throw_cuda(state, "work queued on a stream", stream.device());
    }
  };
  while (!event->wait(Clock::now() + 1ms)) check();
  check();
}

// Guards are scoped to single calls: a fiber that suspends finds, when it resumes, its own
// task's device current again (pick_next), not what a guard had set.
void copy_async(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind, Stream stream) {
  DeviceGuard guard(stream.device());
  check_cuda(cudaMemcpyAsync(dst, src, bytes, kind, native(stream)),
             "cudaMemcpyAsync(" + std::to_string(bytes) + " bytes)", stream.device());
}

// Pageable host to GPU: the host copies chunk i+1 into staging while chunk i crosses.
void copy_from_pageable(char* dst, const char* src, std::size_t bytes, Stream stream) {
  Staging staging(stream.device());
  std::array<std::shared_ptr<Event>, 2> in_flight;
  for (std::size_t offset = 0, i = 0; offset < bytes; offset += kStagingBytes, ++i) {
    std::size_t slot = i % 2, n = std::min(kStagingBytes, bytes - offset);
    if (in_flight[slot]) wait_mark(in_flight[slot], stream);
    std::memcpy(staging[slot], src + offset, n);
    copy_async(dst + offset, staging[slot], n, cudaMemcpyHostToDevice, stream);
    in_flight[slot] = mark(stream);
  }
  for (const auto& event : in_flight) {
    if (event) wait_mark(event, stream);
  }
}

// GPU to pageable host: chunk i+1 crosses while the host copies chunk i out of staging.
void copy_to_pageable(char* dst, const char* src, std::size_t bytes, Stream stream) {
  Staging staging(stream.device());
  std::array<std::shared_ptr<Event>, 2> in_flight;
  auto start = [&](std::size_t offset, std::size_t slot) {
    std::size_t n = std::min(kStagingBytes, bytes - offset);
    copy_async(staging[slot], src + offset, n, cudaMemcpyDeviceToHost, stream);
    in_flight[slot] = mark(stream);
  };
  start(0, 0);
  for (std::size_t offset = 0, i = 0; offset < bytes; offset += kStagingBytes, ++i) {
    std::size_t slot = i % 2, n = std::min(kStagingBytes, bytes - offset);
    if (offset + kStagingBytes < bytes) start(offset + kStagingBytes, 1 - slot);
    wait_mark(in_flight[slot], stream);
    std::memcpy(dst + offset, staging[slot], n);
  }
}

}  // namespace

DeviceGuard::DeviceGuard(int device) noexcept {
  if (device < 0) return;
  int current = -1;
  if (cudaGetDevice(&current) != cudaSuccess) return;
  if (current != device && cudaSetDevice(device) == cudaSuccess) previous_ = current;
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) cudaSetDevice(previous_);
}

void make_current(int device) noexcept {
  int current = -1;
  if (cudaGetDevice(&current) == cudaSuccess && current != device) cudaSetDevice(device);
}

int current_device() noexcept {
  if (device_count() == 0) return -1;
  int current = -1;
  return cudaGetDevice(&current) == cudaSuccess ? current : -1;
}

Stream acquire_stream(int device) {
  StreamPool& pool = stream_pool();
  {
    MutexLock lock(pool.mutex);
    if (pool.free.size() <= static_cast<std::size_t>(device)) pool.free.resize(device + 1);
    if (!pool.free[device].empty()) {
      cudaStream_t stream = pool.free[device].back();
      pool.free[device].pop_back();
      return Stream(device, stream);
    }
  }
  DeviceGuard guard(device);
  cudaStream_t stream = nullptr;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate", device);
  return Stream(device, stream);
}

void release_stream(Stream stream) noexcept {
  StreamPool& pool = stream_pool();
  MutexLock lock(pool.mutex);
  pool.free[stream.device()].push_back(native(stream));
}

// One stream per device, shared by every thread outside tasks. Not the per-thread default
// stream: a buffer made on one thread may be freed on another, and the free must be ordered
// after the work queued on it.
Stream default_stream(int device) {
  static std::mutex mutex;
  static auto* streams = new std::vector<cudaStream_t>;
  std::lock_guard lock(mutex);
  if (streams->size() <= static_cast<std::size_t>(device)) streams->resize(device + 1, nullptr);
  cudaStream_t& stream = (*streams)[device];
  if (!stream) {
    DeviceGuard guard(device);
    check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate",
               device);
  }
  return Stream(device, stream);
}

void wait_stream(Stream stream) { wait_mark(mark(stream), stream); }

Location usable(Location location) {
  return location.kind == Location::Kind::pinned && device_count() == 0 ? Location::host()
                                                                        : location;
}

void* allocate(std::size_t bytes, Location location, Stream stream) {
  if (bytes == 0) return nullptr;
  void* data = nullptr;
  std::string call = " (" + std::to_string(bytes) + " bytes)";
  switch (location.kind) {
    case Location::Kind::host:
      return allocate_host(bytes);
    case Location::Kind::pinned: {
      check_cuda(cudaMallocHost(&data, bytes), "cudaMallocHost" + call, current_device());
      return data;
    }
    case Location::Kind::gpu: {
      check_location(location, "allocate");
      DeviceGuard guard(location.device);
      check_cuda(cudaMallocAsync(&data, bytes, native(stream)), "cudaMallocAsync" + call,
                 location.device);
      return data;
    }
  }
  return nullptr;
}

void deallocate(void* data, std::size_t bytes, Location location, Stream stream) noexcept {
  if (!data) return;
  switch (location.kind) {
    case Location::Kind::host:
      free_host(data, bytes);
      return;
    case Location::Kind::pinned:
      cudaFreeHost(data);
      return;
    case Location::Kind::gpu: {
      DeviceGuard guard(location.device);
      cudaFreeAsync(data, native(stream));
      return;
    }
  }
}

void copy(void* dst, Location dst_location, const void* src, Location src_location,
          std::size_t bytes, Stream stream) {
  if (bytes == 0) return;
  bool dst_gpu = dst_location.on_gpu(), src_gpu = src_location.on_gpu();
  if (!dst_gpu && !src_gpu) {
    std::memcpy(dst, src, bytes);
    return;
  }
  auto* to = static_cast<char*>(dst);
  const auto* from = static_cast<const char*>(src);
  if (dst_gpu && src_gpu && dst_location.device != src_location.device) {
    DeviceGuard guard(stream.device());
    check_cuda(cudaMemcpyPeerAsync(dst, dst_location.device, src, src_location.device, bytes,
                                   native(stream)),
               "cudaMemcpyPeerAsync(" + std::to_string(bytes) + " bytes from " +
                   src_location.to_string() + ")",
               dst_location.device);
  } else if (dst_location.kind == Location::Kind::host) {
    copy_to_pageable(to, from, bytes, stream);
    return;
  } else if (src_location.kind == Location::Kind::host) {
    copy_from_pageable(to, from, bytes, stream);
    return;
  } else {
    copy_async(dst, src, bytes, cudaMemcpyDefault, stream);
  }
  wait_stream(stream);
}

void zero(void* data, std::size_t bytes, Location location, Stream stream) {
  if (bytes == 0) return;
  if (!location.on_gpu()) {
    std::memset(data, 0, bytes);
    return;
  }
  DeviceGuard guard(location.device);
  check_cuda(cudaMemsetAsync(data, 0, bytes, native(stream)),
             "cudaMemsetAsync(" + std::to_string(bytes) + " bytes)", location.device);
}

}  // namespace detail
}  // namespace spindle
