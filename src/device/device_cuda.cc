// The device layer on the CUDA runtime: streams, fiber-aware completion, memory, copies.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
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
      detail::clear_cuda_error();  // no driver or no device: zero GPUs, not an error
      return 0;
    }
    return n;
  }();
  return count;
}

namespace detail {
namespace {

cudaStream_t native(Stream stream) { return stream.native_handle(); }

// ---- blocking host calls, off the workers ---------------------------------------------------

// cudaMallocHost takes milliseconds and cudaFreeHost waits for the whole device; on a worker
// either would stall every fiber of it. They run on helper threads instead: one for
// allocations, which a fiber waits for, one for frees, which nobody waits for (a free that
// waits for the device must not hold up an allocation). The helpers live for the process,
// as the pools do; at exit they finish the call in hand and take no other, so no CUDA call
// of theirs runs into the CUDA runtime's own teardown.
class HostCalls {
 public:
  /// Queues `call`; false (and nothing queued) once the process is exiting.
  bool post(std::function<void()> call) {
    {
      std::lock_guard lock(mutex_);
      if (exiting_) return false;
      calls_.push_back(std::move(call));
      if (!started_) {
        try {
          std::thread([this] { serve(); }).detach();
        } catch (...) {
          calls_.pop_back();
          throw;
        }
        started_ = true;
        std::atexit([] {
          for (HostCalls* calls : {&allocations(), &frees()}) calls->stop();
        });
      }
    }
    ready_.notify_one();
    return true;
  }

  static HostCalls& allocations() {
    static auto* calls = new HostCalls;
    return *calls;
  }
  static HostCalls& frees() {
    static auto* calls = new HostCalls;
    return *calls;
  }

 private:
  void serve() {
    std::unique_lock lock(mutex_);
    for (;;) {
      ready_.wait(lock, [this] { return exiting_ || !calls_.empty(); });
      if (exiting_) return;
      std::function<void()> call = std::move(calls_.front());
      calls_.pop_front();
      busy_ = true;
      lock.unlock();
      call();
      lock.lock();
      busy_ = false;
      idle_.notify_all();
    }
  }

  void stop() {
    std::unique_lock lock(mutex_);
    exiting_ = true;
    ready_.notify_all();
    idle_.wait(lock, [this] { return !busy_; });
  }

  std::mutex mutex_;
  std::condition_variable ready_, idle_;
  std::deque<std::function<void()>> calls_;
  bool started_ = false, busy_ = false, exiting_ = false;
};

// Runs `call` on the allocation helper and waits for it, suspending only the fiber on a
// worker; on any other thread it runs here.
void run_off_worker(const std::function<void()>& call) {
  if (!worker_algorithm()) {
    call();
    return;
  }
  auto done = std::make_shared<Event>(1);
  bool queued = HostCalls::allocations().post([call, done] {
    call();
    done->on_complete();
  });
  if (queued) {
    done->wait(std::nullopt);
  } else {
    call();  // the process is exiting: nobody else is left to wait for
  }
}

void* allocate_pinned(std::size_t bytes) {
  void* data = nullptr;
  cudaError_t error = cudaSuccess;
  run_off_worker([&] {
    error = cudaMallocHost(&data, bytes);
    ignore_cuda(error);  // the helper's own last error; reported below
  });
  check_cuda(error, "cudaMallocHost", bytes, current_device());
  return data;
}

// May run in a CUDA host callback, where no CUDA call is allowed: the free is only posted.
void free_pinned(void* data) noexcept {
  try {
    // Not queued at exit: the block goes with the process.
    (void)HostCalls::frees().post([data] { ignore_cuda(cudaFreeHost(data)); });
  } catch (...) {
    // No memory or thread to queue the free: the pinned block is left to the process.
  }
}

// ---- pools of streams, events and pinned chunks ---------------------------------------------

// The pools live for the process: destroying CUDA objects at exit races the driver's own
// teardown, so they are never freed.
struct StreamPool {
  Mutex mutex;
  std::vector<std::vector<cudaStream_t>> free SPINDLE_GUARDED_BY(mutex);
};
StreamPool& stream_pool() {
  static auto* pool = new StreamPool;
  return *pool;
}

// Events only carry an order from one stream to another; one may be recorded again as soon
// as a stream was told to wait for it (the wait keeps the record it saw).
struct EventPool {
  Mutex mutex;
  std::vector<std::vector<cudaEvent_t>> free SPINDLE_GUARDED_BY(mutex);
};
EventPool& event_pool() {
  static auto* pool = new EventPool;
  return *pool;
}

cudaEvent_t take_event(int device) {
  EventPool& pool = event_pool();
  {
    MutexLock lock(pool.mutex);
    if (pool.free.size() <= static_cast<std::size_t>(device)) pool.free.resize(device + 1);
    if (!pool.free[device].empty()) {
      cudaEvent_t event = pool.free[device].back();
      pool.free[device].pop_back();
      return event;
    }
  }
  DeviceGuard guard(device);
  cudaEvent_t event = nullptr;
  check_cuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreate", device);
  return event;
}

void give_back_event(int device, cudaEvent_t event) noexcept {
  EventPool& pool = event_pool();
  MutexLock lock(pool.mutex);
  pool.free[device].push_back(event);
}

// Pinned chunks for copies through pageable host memory: small ones for small copies (a
// scalar read back), two large ones for double-buffered big copies. A bounded number is
// kept; more are freed (off the worker) when they come back.
constexpr std::size_t kSmallChunk = std::size_t{64} << 10;
constexpr std::size_t kLargeChunk = std::size_t{8} << 20;
constexpr std::size_t kKeptSmall = 64;  // 4 MiB
constexpr std::size_t kKeptLarge = 8;   // 64 MiB

struct ChunkPool {
  Mutex mutex;
  std::vector<void*> free SPINDLE_GUARDED_BY(mutex);
};
ChunkPool& chunk_pool(std::size_t chunk_bytes) {
  static auto* pools = new ChunkPool[2];
  return pools[chunk_bytes == kLargeChunk ? 1 : 0];
}

void* take_chunk(std::size_t chunk_bytes) {
  ChunkPool& pool = chunk_pool(chunk_bytes);
  {
    MutexLock lock(pool.mutex);
    if (!pool.free.empty()) {
      void* chunk = pool.free.back();
      pool.free.pop_back();
      return chunk;
    }
  }
  return allocate_pinned(chunk_bytes);  // outside the pool's lock: it takes milliseconds
}

// May run in a CUDA host callback: no CUDA call here (freeing is posted to the helper).
void give_back_chunk(void* chunk, std::size_t chunk_bytes) noexcept {
  ChunkPool& pool = chunk_pool(chunk_bytes);
  {
    MutexLock lock(pool.mutex);
    if (pool.free.size() < (chunk_bytes == kLargeChunk ? kKeptLarge : kKeptSmall)) {
      pool.free.push_back(chunk);
      return;
    }
  }
  free_pinned(chunk);
}

// ---- completion ---------------------------------------------------------------------------

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
    if (state == cudaErrorNotReady) clear_cuda_error();
    if (state != cudaSuccess && state != cudaErrorNotReady) {
      throw_cuda(state, "work queued on a stream", stream.device());
    }
  };
  while (!event->wait(Clock::now() + 1ms)) check();
  check();
}

// ---- copies -------------------------------------------------------------------------------

// The pinned chunks of one copy through pageable memory, and the copies in flight through
// them. Chunks whose copy is still in flight when the copy is abandoned (an exception) go
// back to the pool only once the stream has passed that copy.
class Staging {
 public:
  Staging(std::size_t bytes, Stream stream)
      : chunk_bytes_(bytes <= kSmallChunk ? kSmallChunk : kLargeChunk),
        slots_(bytes <= chunk_bytes_ ? 1 : 2),
        stream_(stream) {
    try {
      for (std::size_t slot = 0; slot < slots_; ++slot) chunks_[slot] = take_chunk(chunk_bytes_);
    } catch (...) {
      give_back_chunks();
      throw;
    }
  }
  ~Staging() {
    bool busy = false;
    for (std::size_t slot = 0; slot < slots_; ++slot) {
      busy = busy || (busy_[slot] && !(in_flight_[slot] && in_flight_[slot]->settled()));
    }
    if (!busy) {
      give_back_chunks();
      return;
    }
    struct Held {
      std::array<void*, 2> chunks;
      std::size_t chunk_bytes;
    };
    auto* held = new (std::nothrow) Held{chunks_, chunk_bytes_};
    if (!held) return;  // kept away from the pool for good: a copy may still use them
    cudaHostFn_t give_back = [](void* data) {
      auto* chunks = static_cast<Held*>(data);
      for (void* chunk : chunks->chunks) {
        if (chunk) give_back_chunk(chunk, chunks->chunk_bytes);
      }
      delete chunks;
    };
    DeviceGuard guard(stream_.device());
    if (cudaError_t error = cudaLaunchHostFunc(native(stream_), give_back, held)) {
      ignore_cuda(error);  // the stream is broken: its copies never end, the chunks stay out
      delete held;
    }
  }
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;

  [[nodiscard]] std::size_t chunk_bytes() const { return chunk_bytes_; }
  [[nodiscard]] std::size_t slots() const { return slots_; }
  char* operator[](std::size_t slot) const { return static_cast<char*>(chunks_[slot]); }
  /// Queues a copy through `slot` (by `queue`) and marks the stream after it. The slot counts
  /// as busy from before the copy is queued until a wait has seen it finish.
  template <typename Queue>
  void start(std::size_t slot, Queue queue) {
    busy_[slot] = true;
    in_flight_[slot] = nullptr;
    queue();
    in_flight_[slot] = mark(stream_);
  }
  /// Waits until the copy through `slot` (if any) has finished.
  void wait(std::size_t slot) {
    if (in_flight_[slot]) wait_mark(in_flight_[slot], stream_);
    in_flight_[slot] = nullptr;
    busy_[slot] = false;
  }
  void wait_all() {
    for (std::size_t slot = 0; slot < slots_; ++slot) wait(slot);
  }

 private:
  void give_back_chunks() noexcept {
    for (void*& chunk : chunks_) {
      if (chunk) give_back_chunk(std::exchange(chunk, nullptr), chunk_bytes_);
    }
  }

  std::size_t chunk_bytes_;
  std::size_t slots_;
  Stream stream_;
  std::array<void*, 2> chunks_{};
  std::array<std::shared_ptr<Event>, 2> in_flight_;
  std::array<bool, 2> busy_{};
};

// Guards are scoped to single calls: a fiber that suspends finds, when it resumes, its own
// task's device current again (pick_next), not what a guard had set.
void copy_async(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind, Stream stream) {
  DeviceGuard guard(stream.device());
  check_cuda(cudaMemcpyAsync(dst, src, bytes, kind, native(stream)), "cudaMemcpyAsync", bytes,
             stream.device());
}

// Pageable host to GPU: the host copies chunk i+1 into staging while chunk i crosses.
void copy_from_pageable(char* dst, const char* src, std::size_t bytes, Stream stream) {
  Staging staging(bytes, stream);
  const std::size_t chunk = staging.chunk_bytes();
  for (std::size_t offset = 0, i = 0; offset < bytes; offset += chunk, ++i) {
    std::size_t slot = i % staging.slots(), n = std::min(chunk, bytes - offset);
    staging.wait(slot);
    std::memcpy(staging[slot], src + offset, n);
    staging.start(
        slot, [&] { copy_async(dst + offset, staging[slot], n, cudaMemcpyHostToDevice, stream); });
  }
  staging.wait_all();
}

// GPU to pageable host: chunk i+1 crosses while the host copies chunk i out of staging.
void copy_to_pageable(char* dst, const char* src, std::size_t bytes, Stream stream) {
  Staging staging(bytes, stream);
  const std::size_t chunk = staging.chunk_bytes();
  auto start = [&](std::size_t offset, std::size_t slot) {
    staging.start(slot, [&] {
      copy_async(staging[slot], src + offset, std::min(chunk, bytes - offset),
                 cudaMemcpyDeviceToHost, stream);
    });
  };
  start(0, 0);
  for (std::size_t offset = 0, i = 0; offset < bytes; offset += chunk, ++i) {
    std::size_t slot = i % staging.slots(), n = std::min(chunk, bytes - offset);
    if (offset + chunk < bytes) start(offset + chunk, (i + 1) % staging.slots());
    staging.wait(slot);
    std::memcpy(dst + offset, staging[slot], n);
  }
}

// Lets GPUs `a` and `b` reach each other's memory, once per pair: copies between them then
// go over NVLink or PCIe directly instead of through the host. Memory from the stream-ordered
// allocator needs its pool opened too. Failures only cost speed: they are dropped.
void enable_peer_access(int a, int b) {
  static std::mutex mutex;
  static auto* done = new std::set<std::pair<int, int>>;
  std::lock_guard lock(mutex);
  if (!done->emplace(std::min(a, b), std::max(a, b)).second) return;
  for (auto [from, to] : {std::pair{a, b}, std::pair{b, a}}) {
    int can = 0;
    if (cudaDeviceCanAccessPeer(&can, from, to) != cudaSuccess || !can) {
      clear_cuda_error();
      continue;
    }
    DeviceGuard guard(from);
    ignore_cuda(cudaDeviceEnablePeerAccess(to, 0));  // cudaErrorPeerAccessAlreadyEnabled too
    cudaMemPool_t pool = nullptr;
    if (cudaDeviceGetDefaultMemPool(&pool, to) == cudaSuccess) {
      cudaMemAccessDesc access{};
      access.location.type = cudaMemLocationTypeDevice;
      access.location.id = from;
      access.flags = cudaMemAccessFlagsProtReadWrite;
      ignore_cuda(cudaMemPoolSetAccess(pool, &access, 1));
    } else {
      clear_cuda_error();
    }
  }
}

}  // namespace

DeviceGuard::DeviceGuard(int device) noexcept {
  if (device < 0) return;
  int current = -1;
  if (cudaGetDevice(&current) != cudaSuccess) {
    clear_cuda_error();  // the call that follows reports what is wrong with the device
    return;
  }
  if (current == device) return;
  if (cudaSetDevice(device) == cudaSuccess) {
    previous_ = current;
  } else {
    clear_cuda_error();
  }
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) ignore_cuda(cudaSetDevice(previous_));
}

void make_current(int device) noexcept {
  int current = -1;
  if (cudaGetDevice(&current) != cudaSuccess) {
    clear_cuda_error();
    return;
  }
  if (current != device) ignore_cuda(cudaSetDevice(device));
}

int current_device() noexcept {
  if (device_count() == 0) return -1;
  int current = -1;
  if (cudaGetDevice(&current) == cudaSuccess) return current;
  clear_cuda_error();
  return -1;
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

void order_after(Stream consumer, Stream producer) {
  if (!consumer.on_gpu() || !producer.on_gpu() || consumer == producer) return;
  const int device = producer.device();
  cudaEvent_t event = take_event(device);
  cudaError_t error;
  {
    DeviceGuard guard(device);
    error = cudaEventRecord(event, native(producer));
    if (error == cudaSuccess) error = cudaStreamWaitEvent(native(consumer), event, 0);
  }
  give_back_event(device, event);
  check_cuda(error,
             "ordering a stream of GPU " + std::to_string(consumer.device()) +
                 " after another (cudaEventRecord, cudaStreamWaitEvent)",
             device);
}

Location usable(Location location) {
  return location.kind == Location::Kind::pinned && device_count() == 0 ? Location::host()
                                                                        : location;
}

void* allocate(std::size_t bytes, Location location, Stream stream) {
  if (bytes == 0) return nullptr;
  switch (location.kind) {
    case Location::Kind::host:
      return allocate_host(bytes);
    case Location::Kind::pinned:
      return allocate_pinned(bytes);
    case Location::Kind::gpu: {
      check_location(location, "allocate");
      DeviceGuard guard(location.device);
      void* data = nullptr;
      check_cuda(cudaMallocAsync(&data, bytes, native(stream)), "cudaMallocAsync", bytes,
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
      free_pinned(data);
      return;
    case Location::Kind::gpu: {
      DeviceGuard guard(location.device);
      ignore_cuda(cudaFreeAsync(data, native(stream)));
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
    enable_peer_access(src_location.device, dst_location.device);
    DeviceGuard guard(stream.device());
    if (cudaError_t error = cudaMemcpyPeerAsync(dst, dst_location.device, src, src_location.device,
                                                bytes, native(stream))) {
      throw_cuda(error,
                 "cudaMemcpyPeerAsync(" + std::to_string(bytes) + " bytes from " +
                     src_location.to_string() + ")",
                 dst_location.device);
    }
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
  check_cuda(cudaMemsetAsync(data, 0, bytes, native(stream)), "cudaMemsetAsync", bytes,
             location.device);
}

}  // namespace detail
}  // namespace spindle
