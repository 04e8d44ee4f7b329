// The CUDA kernels: grid-stride loops over 16-byte vectors (float4, double2), each thread
// keeping kUnroll vector loads in flight; reductions in two passes of fixed shape.
//
// Alignment: when every pointer of a call has the same offset from a 16-byte boundary, a
// head of up to W - 1 elements is peeled and the rest runs on vectors; the head and the tail
// are done by single threads of the same launch. Pointers with different offsets run the
// scalar path (still kUnroll loads in flight).
//
// Each element is loaded, then stored, by one thread, loads of a thread's kUnroll vectors
// before any of its stores: so an output identical to an input (axpy's y and x, aggregate's
// out and an input) is safe.
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cub/block/block_reduce.cuh>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "checks.hpp"
#include "device/cuda_check.hpp"
#include "device/device_runtime.hpp"
#include "spindle/kernels.hpp"

namespace spindle::kernels::cuda {
namespace {

using spindle::detail::check_cuda;
using spindle::detail::throw_cuda;

constexpr int kBlockThreads = 256;
constexpr int kUnroll = 4;       // vectors in flight per thread and array
constexpr int kBlocksPerSm = 8;  // 2048 threads per SM: full occupancy where registers allow

// W consecutive elements, loaded and stored as one 16-byte access when W * sizeof(T) == 16.
template <int W, typename T>
struct alignas(W * sizeof(T)) Pack {
  T e[W];
};

template <int W, typename T>
__device__ __forceinline__ Pack<W, T> load(const T* p) {
  return *reinterpret_cast<const Pack<W, T>*>(p);
}
template <int W, typename T>
__device__ __forceinline__ void store(T* p, const Pack<W, T>& value) {
  *reinterpret_cast<Pack<W, T>*>(p) = value;
}

// ---- the launch shape -------------------------------------------------------------------

int multiprocessors(int device) {
  static std::array<std::atomic<int>, 64> counts{};
  if (device >= static_cast<int>(counts.size())) device = static_cast<int>(counts.size()) - 1;
  int count = counts[device].load(std::memory_order_relaxed);
  if (count == 0) {
    check_cuda(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device),
               "cudaDeviceGetAttribute(multiprocessors)", device);
    counts[device].store(count, std::memory_order_relaxed);
  }
  return count;
}

// Enough blocks to fill the device once at full occupancy for `items` thread-items; the
// loops stride over the rest.
unsigned grid_for(std::size_t items, int device) {
  std::size_t per_block = std::size_t{kBlockThreads} * kUnroll;
  std::size_t wanted = (items + per_block - 1) / per_block;
  std::size_t cap = static_cast<std::size_t>(multiprocessors(device)) * kBlocksPerSm;
  return static_cast<unsigned>(std::max<std::size_t>(1, std::min(wanted, cap)));
}

// How the n elements of a call split: `head` scalar elements, then `chunks` vectors of W
// elements, then a scalar tail. W is 16 / sizeof(T) when all pointers share their offset from
// a 16-byte boundary (and it is a whole number of elements), else 1.
template <typename T>
struct Split {
  bool vectors = false;
  std::size_t head = 0, chunks = 0;
};

template <typename T>
Split<T> split(std::initializer_list<const void*> pointers, std::size_t n) {
  constexpr std::size_t W = 16 / sizeof(T);
  std::uintptr_t offset = reinterpret_cast<std::uintptr_t>(*pointers.begin()) % 16;
  for (const void* p : pointers) {
    if (p && reinterpret_cast<std::uintptr_t>(p) % 16 != offset) return {false, 0, n};
  }
  if (offset % sizeof(T) != 0) return {false, 0, n};
  std::size_t head = std::min(n, ((16 - offset) % 16) / sizeof(T));
  return {true, head, (n - head) / W};
}

// Launches through cudaLaunchKernelEx, which returns the launch's own error (an earlier,
// unrelated error of this thread cannot surface here). `name` is only read on failure.
template <typename... Params, typename... Args>
void launch_kernel(void (*kernel)(Params...), unsigned grid, Stream stream, const char* name,
                   Args&&... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(grid);
  config.blockDim = dim3(kBlockThreads);
  config.stream = stream.native_handle();
  if (cudaError_t error = cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...)) {
    throw_cuda(error,
               std::string(name) + "<<<" + std::to_string(grid) + ", " +
                   std::to_string(kBlockThreads) + ">>>",
               stream.device());
  }
}

// ---- element-wise kernels ---------------------------------------------------------------

// The body: tiles of kBlockThreads * kUnroll vectors, each thread loading its kUnroll
// vectors before storing any. Then the head and the tail, one element per thread.
template <int W, typename Op>
__global__ void __launch_bounds__(kBlockThreads)
    elementwise(Op op, std::size_t head, std::size_t chunks, std::size_t n) {
  using State = typename Op::template State<W>;
  const std::size_t tile = std::size_t{kBlockThreads} * kUnroll;
  for (std::size_t base = std::size_t{blockIdx.x} * tile; base < chunks;
       base += std::size_t{gridDim.x} * tile) {
    State state[kUnroll];
#pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
      std::size_t c = base + static_cast<std::size_t>(k) * kBlockThreads + threadIdx.x;
      if (c < chunks) state[k] = op.template load<W>(head + c * W);
    }
#pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
      std::size_t c = base + static_cast<std::size_t>(k) * kBlockThreads + threadIdx.x;
      if (c < chunks) op.template store<W>(head + c * W, state[k]);
    }
  }
  const std::size_t body_end = head + chunks * W, scalars = head + (n - body_end);
  const std::size_t thread = std::size_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (thread < scalars) {
    std::size_t i = thread < head ? thread : body_end + (thread - head);
    op.template store<1>(i, op.template load<1>(i));
  }
}

template <typename T, typename Op>
void launch(const Op& op, std::initializer_list<const void*> pointers, std::size_t n, Stream stream,
            const char* name) {
  detail::check_stream(stream, true, name);
  if (n == 0) return;
  int device = stream.device();
  spindle::detail::DeviceGuard guard(device);
  constexpr int W = 16 / sizeof(T);
  Split<T> at = split<T>(pointers, n);
  if (at.vectors) {
    launch_kernel(elementwise<W, Op>, grid_for(at.chunks, device), stream, name, op, at.head,
                  at.chunks, n);
  } else {
    launch_kernel(elementwise<1, Op>, grid_for(n, device), stream, name, op, std::size_t{0}, n, n);
  }
}

template <typename T>
struct SgdOp {
  T* p;
  const T* g;
  T* v;
  T lr, wd, mu;
  bool nesterov;

  template <int W>
  struct State {
    Pack<W, T> p, g, v;
  };
  template <int W>
  __device__ State<W> load(std::size_t i) const {
    State<W> s;
    s.p = spindle::kernels::cuda::load<W>(p + i);
    s.g = spindle::kernels::cuda::load<W>(g + i);
    if (v) s.v = spindle::kernels::cuda::load<W>(v + i);
    return s;
  }
  template <int W>
  __device__ void store(std::size_t i, State<W> s) const {
    if (v) {
#pragma unroll
      for (int j = 0; j < W; ++j) {
        T d = s.g.e[j] + wd * s.p.e[j];
        T vi = mu * s.v.e[j] + d;
        s.v.e[j] = vi;
        s.p.e[j] -= lr * (nesterov ? d + mu * vi : vi);
      }
      spindle::kernels::cuda::store<W>(v + i, s.v);
    } else {
#pragma unroll
      for (int j = 0; j < W; ++j) s.p.e[j] -= lr * (s.g.e[j] + wd * s.p.e[j]);
    }
    spindle::kernels::cuda::store<W>(p + i, s.p);
  }
};

template <typename T>
struct AdamOp {
  T* p;
  const T* g;
  T* m;
  T* v;
  T b1, b2, eps, step_size, inv_sqrt_bc2, shrink, coupled;

  template <int W>
  struct State {
    Pack<W, T> p, g, m, v;
  };
  template <int W>
  __device__ State<W> load(std::size_t i) const {
    return {spindle::kernels::cuda::load<W>(p + i), spindle::kernels::cuda::load<W>(g + i),
            spindle::kernels::cuda::load<W>(m + i), spindle::kernels::cuda::load<W>(v + i)};
  }
  template <int W>
  __device__ void store(std::size_t i, State<W> s) const {
#pragma unroll
    for (int j = 0; j < W; ++j) {
      T pi = s.p.e[j] * shrink;
      T gi = s.g.e[j] + coupled * s.p.e[j];
      T mi = b1 * s.m.e[j] + (1 - b1) * gi;
      T vi = b2 * s.v.e[j] + (1 - b2) * gi * gi;
      s.m.e[j] = mi;
      s.v.e[j] = vi;
      s.p.e[j] = pi - step_size * mi / (sqrt(vi) * inv_sqrt_bc2 + eps);
    }
    spindle::kernels::cuda::store<W>(m + i, s.m);
    spindle::kernels::cuda::store<W>(v + i, s.v);
    spindle::kernels::cuda::store<W>(p + i, s.p);
  }
};

// The inputs are summed in order, as the CPU twin does. Four inputs are loaded at a time so
// that loads stay in flight while the sums wait.
template <typename T>
struct AggregateOp {
  T* out;
  const T* in[detail::kMaxInputs];
  int count;
  T factor;

  template <int W>
  using State = Pack<W, T>;
  template <int W>
  __device__ State<W> load(std::size_t i) const {
    Pack<W, T> sum = spindle::kernels::cuda::load<W>(in[0] + i);
    int k = 1;
    for (; k + 4 <= count; k += 4) {
      Pack<W, T> x[4];
#pragma unroll
      for (int q = 0; q < 4; ++q) x[q] = spindle::kernels::cuda::load<W>(in[k + q] + i);
#pragma unroll
      for (int q = 0; q < 4; ++q) {
#pragma unroll
        for (int j = 0; j < W; ++j) sum.e[j] += x[q].e[j];
      }
    }
    for (; k < count; ++k) {
      Pack<W, T> x = spindle::kernels::cuda::load<W>(in[k] + i);
#pragma unroll
      for (int j = 0; j < W; ++j) sum.e[j] += x.e[j];
    }
    return sum;
  }
  template <int W>
  __device__ void store(std::size_t i, State<W> sum) const {
#pragma unroll
    for (int j = 0; j < W; ++j) sum.e[j] *= factor;
    spindle::kernels::cuda::store<W>(out + i, sum);
  }
};

template <typename T>
struct AxpyOp {
  T* y;
  const T* x;
  T a;

  template <int W>
  struct State {
    Pack<W, T> y, x;
  };
  template <int W>
  __device__ State<W> load(std::size_t i) const {
    return {spindle::kernels::cuda::load<W>(y + i), spindle::kernels::cuda::load<W>(x + i)};
  }
  template <int W>
  __device__ void store(std::size_t i, State<W> s) const {
#pragma unroll
    for (int j = 0; j < W; ++j) s.y.e[j] += a * s.x.e[j];
    spindle::kernels::cuda::store<W>(y + i, s.y);
  }
};

template <typename T>
struct ScaleOp {
  T* x;
  T a;

  template <int W>
  using State = Pack<W, T>;
  template <int W>
  __device__ State<W> load(std::size_t i) const {
    return spindle::kernels::cuda::load<W>(x + i);
  }
  template <int W>
  __device__ void store(std::size_t i, State<W> s) const {
#pragma unroll
    for (int j = 0; j < W; ++j) s.e[j] *= a;
    spindle::kernels::cuda::store<W>(x + i, s);
  }
};

template <typename T>
struct FillOp {
  T* x;
  T value;

  struct Nothing {};
  template <int W>
  using State = Nothing;
  template <int W>
  __device__ State<W> load(std::size_t) const {
    return {};
  }
  template <int W>
  __device__ void store(std::size_t i, State<W>) const {
    Pack<W, T> s;
#pragma unroll
    for (int j = 0; j < W; ++j) s.e[j] = value;
    spindle::kernels::cuda::store<W>(x + i, s);
  }
};

// ---- reductions -------------------------------------------------------------------------

// Pass one: each block sums its share of a[i] * b[i] (x[i]^2 when b is null) into
// partials[blockIdx.x]. Pass two: one block sums the partials in a fixed order. The shape
// depends only on n and the device, so the result is the same bits run after run.
template <int W, typename T>
__global__ void __launch_bounds__(kBlockThreads)
    dot_partials(const T* a, const T* b, std::size_t head, std::size_t chunks, std::size_t n,
                 T* partials) {
  T sum = 0;
  const std::size_t tile = std::size_t{kBlockThreads} * kUnroll;
  for (std::size_t base = std::size_t{blockIdx.x} * tile; base < chunks;
       base += std::size_t{gridDim.x} * tile) {
    Pack<W, T> x[kUnroll], y[kUnroll];
#pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
      std::size_t c = base + static_cast<std::size_t>(k) * kBlockThreads + threadIdx.x;
      if (c < chunks) {
        x[k] = load<W>(a + head + c * W);
        y[k] = b ? load<W>(b + head + c * W) : x[k];
      }
    }
#pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
      std::size_t c = base + static_cast<std::size_t>(k) * kBlockThreads + threadIdx.x;
      if (c < chunks) {
#pragma unroll
        for (int j = 0; j < W; ++j) sum += x[k].e[j] * y[k].e[j];
      }
    }
  }
  const std::size_t body_end = head + chunks * W, scalars = head + (n - body_end);
  const std::size_t thread = std::size_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (thread < scalars) {
    std::size_t i = thread < head ? thread : body_end + (thread - head);
    sum += a[i] * (b ? b[i] : a[i]);
  }
  using Reduce = cub::BlockReduce<T, kBlockThreads>;
  __shared__ typename Reduce::TempStorage temp;
  T block_sum = Reduce(temp).Sum(sum);
  if (threadIdx.x == 0) partials[blockIdx.x] = block_sum;
}

template <typename T>
__global__ void __launch_bounds__(kBlockThreads)
    sum_partials(const T* partials, unsigned count, bool root, T* result) {
  T sum = 0;
  for (unsigned i = threadIdx.x; i < count; i += kBlockThreads) sum += partials[i];
  using Reduce = cub::BlockReduce<T, kBlockThreads>;
  __shared__ typename Reduce::TempStorage temp;
  T total = Reduce(temp).Sum(sum);
  if (threadIdx.x == 0) *result = root ? sqrt(total) : total;
}

// Room for the partial sums of one reduction, per stream and device: work on one stream runs
// in order, so a stream's reductions can share it as long as each enqueues its two passes
// together (the lock; threads outside tasks share a device's stream). Kept for the process,
// like the streams.
struct Scratch {
  void* memory = nullptr;
  std::mutex enqueue;
};

Scratch& scratch_for(Stream stream) {
  static std::mutex mutex;
  static auto* scratch = new std::map<std::pair<int, cudaStream_t>, std::unique_ptr<Scratch>>;
  std::lock_guard lock(mutex);
  std::unique_ptr<Scratch>& entry = (*scratch)[{stream.device(), stream.native_handle()}];
  if (!entry) {
    auto fresh = std::make_unique<Scratch>();
    std::size_t bytes = std::size_t{1024} * kBlocksPerSm * sizeof(double);  // >= any grid
    check_cuda(cudaMallocAsync(&fresh->memory, bytes, stream.native_handle()),
               "cudaMallocAsync(reduction scratch)", bytes, stream.device());
    entry = std::move(fresh);
  }
  return *entry;
}

template <typename T>
void reduce(const T* a, const T* b, std::size_t n, T* result, bool root, Stream stream,
            const char* name) {
  detail::check_stream(stream, true, name);
  int device = stream.device();
  spindle::detail::DeviceGuard guard(device);
  constexpr int W = 16 / sizeof(T);
  Scratch& scratch = scratch_for(stream);
  std::lock_guard lock(scratch.enqueue);
  auto* partials = static_cast<T*>(scratch.memory);
  Split<T> at = split<T>({a, b}, n);
  unsigned grid =
      std::min<unsigned>(grid_for(at.vectors ? at.chunks : n, device), 1024 * kBlocksPerSm);
  if (n == 0) {
    grid = 1;
    at = {false, 0, 0};
  }
  if (at.vectors) {
    launch_kernel(dot_partials<W, T>, grid, stream, name, a, b, at.head, at.chunks, n, partials);
  } else {
    launch_kernel(dot_partials<1, T>, grid, stream, name, a, b, std::size_t{0}, at.chunks, n,
                  partials);
  }
  launch_kernel(sum_partials<T>, 1, stream, name, static_cast<const T*>(partials), grid, root,
                result);
}

}  // namespace

template <typename T>
void sgd(T* params, const T* grad, T* velocity, std::size_t n, const Sgd& options, Stream stream) {
  detail::check(options, velocity, n);
  SgdOp<T> op{params,
              grad,
              options.momentum != 0 ? velocity : nullptr,
              static_cast<T>(options.lr),
              static_cast<T>(options.weight_decay),
              static_cast<T>(options.momentum),
              options.nesterov};
  launch<T>(op, {params, grad, op.v}, n, stream, "kernels::cuda::sgd");
}

template <typename T>
void adam(T* params, const T* grad, T* m, T* v, std::size_t n, const Adam& options, Stream stream) {
  detail::check(options);
  AdamOp<T> op{params,
               grad,
               m,
               v,
               static_cast<T>(options.beta1),
               static_cast<T>(options.beta2),
               static_cast<T>(options.eps),
               static_cast<T>(options.lr / detail::bias_correction(options.beta1, options.step)),
               static_cast<T>(1 / std::sqrt(detail::bias_correction(options.beta2, options.step))),
               static_cast<T>(options.decoupled ? 1 - options.lr * options.weight_decay : 1),
               static_cast<T>(options.decoupled ? 0 : options.weight_decay)};
  launch<T>(op, {params, grad, m, v}, n, stream, "kernels::cuda::adam");
}

template <typename T>
void aggregate(T* out, std::span<const T* const> inputs, std::size_t n, Reduction reduction,
               Stream stream) {
  detail::check_inputs({reinterpret_cast<const void* const*>(inputs.data()), inputs.size()}, n);
  AggregateOp<T> op{};
  op.out = out;
  std::copy(inputs.begin(), inputs.end(), op.in);
  op.count = static_cast<int>(inputs.size());
  op.factor = reduction == Reduction::mean ? T(1) / static_cast<T>(inputs.size()) : T(1);
  // Every input shares the output's offset from a 16-byte boundary, or the scalar path runs.
  const T* shared_offset = out;
  for (const T* input : inputs) {
    if (reinterpret_cast<std::uintptr_t>(input) % 16 !=
        reinterpret_cast<std::uintptr_t>(out) % 16) {
      shared_offset = input;
    }
  }
  launch<T>(op, {out, shared_offset}, n, stream, "kernels::cuda::aggregate");
}

template <typename T>
void axpy(T* y, T a, const T* x, std::size_t n, Stream stream) {
  launch<T>(AxpyOp<T>{y, x, a}, {y, x}, n, stream, "kernels::cuda::axpy");
}

template <typename T>
void scale(T* x, T a, std::size_t n, Stream stream) {
  launch<T>(ScaleOp<T>{x, a}, {x}, n, stream, "kernels::cuda::scale");
}

template <typename T>
void fill(T* x, T value, std::size_t n, Stream stream) {
  launch<T>(FillOp<T>{x, value}, {x}, n, stream, "kernels::cuda::fill");
}

template <typename T>
void dot(const T* a, const T* b, std::size_t n, T* result, Stream stream) {
  reduce<T>(a, b, n, result, false, stream, "kernels::cuda::dot");
}

template <typename T>
void norm2(const T* x, std::size_t n, T* result, Stream stream) {
  reduce<T>(x, static_cast<const T*>(nullptr), n, result, true, stream, "kernels::cuda::norm2");
}

SPINDLE_INSTANTIATE_KERNELS(float)
SPINDLE_INSTANTIATE_KERNELS(double)

}  // namespace spindle::kernels::cuda
