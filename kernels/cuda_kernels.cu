// The CUDA kernels: grid-stride loops over 16-byte vectors (float4, double2) when every
// pointer is aligned, a scalar pass for the tail; reductions through CUB.
#include <cuda_runtime.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cub/device/device_reduce.cuh>
#include <mutex>
#include <string>
#include <vector>

#include "checks.hpp"
#include "device/cuda_check.hpp"
#include "device/device_runtime.hpp"
#include "spindle/kernels.hpp"

namespace spindle::kernels::cuda {
namespace {

using spindle::detail::check_cuda;

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

bool aligned(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

template <int W, typename Op>
__global__ void run(Op op, std::size_t first, std::size_t chunks) {
  std::size_t stride = std::size_t{gridDim.x} * blockDim.x;
  for (std::size_t c = std::size_t{blockIdx.x} * blockDim.x + threadIdx.x; c < chunks;
       c += stride) {
    op.template apply<W>(first + c * W);
  }
}

constexpr int kBlockThreads = 256;

int multiprocessors(int device) {
  static std::mutex mutex;
  static std::vector<int> counts;
  std::lock_guard lock(mutex);
  if (counts.size() <= static_cast<std::size_t>(device)) counts.resize(device + 1, 0);
  if (counts[device] == 0) {
    check_cuda(cudaDeviceGetAttribute(&counts[device], cudaDevAttrMultiProcessorCount, device),
               "cudaDeviceGetAttribute(multiprocessors)", device);
  }
  return counts[device];
}

// Enough blocks to fill the device a few times over; the loops stride over the rest.
unsigned grid_for(std::size_t chunks, int device) {
  std::size_t wanted = (chunks + kBlockThreads - 1) / kBlockThreads;
  std::size_t cap = static_cast<std::size_t>(multiprocessors(device)) * 8;
  return static_cast<unsigned>(std::max<std::size_t>(1, std::min(wanted, cap)));
}

template <typename T, typename Op>
void launch(const Op& op, std::size_t n, Stream stream, const char* name) {
  detail::check_stream(stream, true, name);
  if (n == 0) return;
  int device = stream.device();
  spindle::detail::DeviceGuard guard(device);
  constexpr int W = 16 / sizeof(T);
  std::size_t chunks = op.aligned() ? n / W : 0;
  std::size_t tail = n - chunks * W;
  if (chunks > 0) {
    run<W><<<grid_for(chunks, device), kBlockThreads, 0, stream.native_handle()>>>(op, 0, chunks);
  }
  if (tail > 0) {
    run<1><<<grid_for(tail, device), kBlockThreads, 0, stream.native_handle()>>>(op, chunks * W,
                                                                                 tail);
  }
  check_cuda(cudaGetLastError(), std::string(name) + "<<<>>>", device);
}

template <typename T>
struct SgdOp {
  T* p;
  const T* g;
  T* v;
  T lr, wd, mu;
  bool nesterov;
  bool aligned() const { return cuda::aligned(p) && cuda::aligned(g) && (!v || cuda::aligned(v)); }
  template <int W>
  __device__ void apply(std::size_t i) const {
    Pack<W, T> pp = load<W>(p + i), gg = load<W>(g + i);
    if (v) {
      Pack<W, T> vv = load<W>(v + i);
#pragma unroll
      for (int j = 0; j < W; ++j) {
        T d = gg.e[j] + wd * pp.e[j];
        T vi = mu * vv.e[j] + d;
        vv.e[j] = vi;
        pp.e[j] -= lr * (nesterov ? d + mu * vi : vi);
      }
      store<W>(v + i, vv);
    } else {
#pragma unroll
      for (int j = 0; j < W; ++j) pp.e[j] -= lr * (gg.e[j] + wd * pp.e[j]);
    }
    store<W>(p + i, pp);
  }
};

template <typename T>
struct AdamOp {
  T* p;
  const T* g;
  T* m;
  T* v;
  T b1, b2, eps, step_size, inv_sqrt_bc2, shrink, coupled;
  bool aligned() const {
    return cuda::aligned(p) && cuda::aligned(g) && cuda::aligned(m) && cuda::aligned(v);
  }
  template <int W>
  __device__ void apply(std::size_t i) const {
    Pack<W, T> pp = load<W>(p + i), gg = load<W>(g + i), mm = load<W>(m + i), vv = load<W>(v + i);
#pragma unroll
    for (int j = 0; j < W; ++j) {
      T pi = pp.e[j] * shrink;
      T gi = gg.e[j] + coupled * pp.e[j];
      T mi = b1 * mm.e[j] + (1 - b1) * gi;
      T vi = b2 * vv.e[j] + (1 - b2) * gi * gi;
      mm.e[j] = mi;
      vv.e[j] = vi;
      pp.e[j] = pi - step_size * mi / (sqrt(vi) * inv_sqrt_bc2 + eps);
    }
    store<W>(m + i, mm);
    store<W>(v + i, vv);
    store<W>(p + i, pp);
  }
};

template <typename T>
struct AggregateOp {
  T* out;
  const T* in[detail::kMaxInputs];
  int count;
  T factor;
  bool aligned() const {
    if (!cuda::aligned(out)) return false;
    for (int k = 0; k < count; ++k) {
      if (!cuda::aligned(in[k])) return false;
    }
    return true;
  }
  template <int W>
  __device__ void apply(std::size_t i) const {
    Pack<W, T> sum = load<W>(in[0] + i);
    for (int k = 1; k < count; ++k) {
      Pack<W, T> x = load<W>(in[k] + i);
#pragma unroll
      for (int j = 0; j < W; ++j) sum.e[j] += x.e[j];
    }
#pragma unroll
    for (int j = 0; j < W; ++j) sum.e[j] *= factor;
    store<W>(out + i, sum);
  }
};

template <typename T>
struct AxpyOp {
  T* y;
  const T* x;
  T a;
  bool aligned() const { return cuda::aligned(y) && cuda::aligned(x); }
  template <int W>
  __device__ void apply(std::size_t i) const {
    Pack<W, T> yy = load<W>(y + i), xx = load<W>(x + i);
#pragma unroll
    for (int j = 0; j < W; ++j) yy.e[j] += a * xx.e[j];
    store<W>(y + i, yy);
  }
};

template <typename T>
struct ScaleOp {
  T* x;
  T a;
  bool aligned() const { return cuda::aligned(x); }
  template <int W>
  __device__ void apply(std::size_t i) const {
    Pack<W, T> xx = load<W>(x + i);
#pragma unroll
    for (int j = 0; j < W; ++j) xx.e[j] *= a;
    store<W>(x + i, xx);
  }
};

template <typename T>
struct FillOp {
  T* x;
  T value;
  bool aligned() const { return cuda::aligned(x); }
  template <int W>
  __device__ void apply(std::size_t i) const {
    Pack<W, T> xx;
#pragma unroll
    for (int j = 0; j < W; ++j) xx.e[j] = value;
    store<W>(x + i, xx);
  }
};

template <typename T>
struct Product {
  const T* a;
  const T* b;
  __host__ __device__ T operator()(std::size_t i) const { return a[i] * b[i]; }
};

struct Plus {
  template <typename T>
  __host__ __device__ T operator()(const T& x, const T& y) const {
    return x + y;
  }
};

template <typename T>
__global__ void square_root(T* x) {
  *x = sqrt(*x);
}

// Sums term(i) over [0, n) into *result with CUB, temporary storage from the stream-ordered
// allocator: nothing here waits for the device.
template <typename T, typename Term>
void reduce(Term term, std::size_t n, T* result, Stream stream, const char* name) {
  int device = stream.device();
  spindle::detail::DeviceGuard guard(device);
  auto in = thrust::make_transform_iterator(thrust::counting_iterator<std::size_t>(0), term);
  cudaStream_t s = stream.native_handle();
  std::size_t temp_bytes = 0;
  check_cuda(cub::DeviceReduce::Reduce(nullptr, temp_bytes, in, result, n, Plus{}, T(0), s),
             std::string(name) + ": cub::DeviceReduce::Reduce", device);
  void* temp = nullptr;
  check_cuda(cudaMallocAsync(&temp, temp_bytes, s),
             std::string(name) + ": cudaMallocAsync(" + std::to_string(temp_bytes) + " bytes)",
             device);
  cudaError_t error = cub::DeviceReduce::Reduce(temp, temp_bytes, in, result, n, Plus{}, T(0), s);
  cudaFreeAsync(temp, s);
  check_cuda(error, std::string(name) + ": cub::DeviceReduce::Reduce", device);
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
  launch<T>(op, n, stream, "kernels::cuda::sgd");
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
  launch<T>(op, n, stream, "kernels::cuda::adam");
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
  launch<T>(op, n, stream, "kernels::cuda::aggregate");
}

template <typename T>
void axpy(T* y, T a, const T* x, std::size_t n, Stream stream) {
  launch<T>(AxpyOp<T>{y, x, a}, n, stream, "kernels::cuda::axpy");
}

template <typename T>
void scale(T* x, T a, std::size_t n, Stream stream) {
  launch<T>(ScaleOp<T>{x, a}, n, stream, "kernels::cuda::scale");
}

template <typename T>
void fill(T* x, T value, std::size_t n, Stream stream) {
  launch<T>(FillOp<T>{x, value}, n, stream, "kernels::cuda::fill");
}

template <typename T>
void dot(const T* a, const T* b, std::size_t n, T* result, Stream stream) {
  detail::check_stream(stream, true, "kernels::cuda::dot");
  reduce<T>(Product<T>{a, b}, n, result, stream, "kernels::cuda::dot");
}

template <typename T>
void norm2(const T* x, std::size_t n, T* result, Stream stream) {
  detail::check_stream(stream, true, "kernels::cuda::norm2");
  reduce<T>(Product<T>{x, x}, n, result, stream, "kernels::cuda::norm2");
  spindle::detail::DeviceGuard guard(stream.device());
  square_root<<<1, 1, 0, stream.native_handle()>>>(result);
  check_cuda(cudaGetLastError(), "kernels::cuda::norm2: square_root<<<>>>", stream.device());
}

SPINDLE_INSTANTIATE_KERNELS(float)
SPINDLE_INSTANTIATE_KERNELS(double)

}  // namespace spindle::kernels::cuda
