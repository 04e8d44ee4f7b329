// The raw kernels: fused optimiser updates, N-way aggregation and BLAS-1 operations on
// raw pointers, each as a CPU twin (spindle::kernels::cpu) and, in CUDA builds, a CUDA
// kernel (spindle::kernels::cuda) with the same signature and the same semantics.
//
// Most users call them through spindle/ops.hpp, on Buffers, which picks the side where the
// buffers live. Called directly:
// - cpu:: functions take host pointers and run before they return. Inside a task they split
//   large arrays across the runtime's workers; elsewhere they run on the calling thread.
//   `stream` must be the host stream.
// - cuda:: functions take pointers to memory of stream.device() and are queued on `stream`
//   (asynchronous: nothing waits). Launch errors throw DeviceError naming the kernel.
// Both take any n, including 0 and sizes that are not multiples of the vector width, and are
// instantiated for float and double. Scalars in the option structs are converted to T.
//
// Aliasing: an output may be identical to an input where a function says so; otherwise
// arrays must not overlap at all. Partial overlap is never allowed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "spindle/device.hpp"

namespace spindle::kernels {

/// SGD with optional momentum, as PyTorch's torch.optim.SGD with dampening 0:
///   g = grad + weight_decay * p
///   v = momentum * v + g                      (when momentum > 0)
///   p -= lr * (nesterov ? g + momentum * v : v)   (or lr * g without momentum)
struct Sgd {
  double lr = 0.01;
  double momentum = 0;
  double weight_decay = 0;
  bool nesterov = false;
};

/// Adam, as torch.optim.Adam (decoupled = false: weight decay added to the gradient) or
/// torch.optim.AdamW (decoupled = true: p -= lr * weight_decay * p first). `step` counts
/// from 1 and sets the bias corrections 1 - beta^step.
struct Adam {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool decoupled = false;
  std::int64_t step = 1;
};

enum class Reduction : std::uint8_t { sum, mean };

namespace cpu {

/// params, grad and velocity: n elements each, no two overlapping. velocity may be null when
/// momentum is 0.
template <typename T>
void sgd(T* params, const T* grad, T* velocity, std::size_t n, const Sgd& options,
         Stream stream = {});
/// params, grad, m (first moment) and v (second moment): n elements each, none overlapping.
template <typename T>
void adam(T* params, const T* grad, T* m, T* v, std::size_t n, const Adam& options,
          Stream stream = {});
/// out[i] = sum (or mean) over k of inputs[k][i], in one pass, summed in input order. 1 to 256
/// inputs. out may be identical to one of the inputs.
template <typename T>
void aggregate(T* out, std::span<const T* const> inputs, std::size_t n, Reduction reduction,
               Stream stream = {});
/// y += a * x; y may be identical to x.
template <typename T>
void axpy(T* y, T a, const T* x, std::size_t n, Stream stream = {});
/// x *= a.
template <typename T>
void scale(T* x, T a, std::size_t n, Stream stream = {});
/// x[i] = value.
template <typename T>
void fill(T* x, T value, std::size_t n, Stream stream = {});
/// *result = sum of a[i] * b[i]. Deterministic: the same inputs give the same bits on any
/// number of workers (fixed blocks, combined in order).
template <typename T>
void dot(const T* a, const T* b, std::size_t n, T* result, Stream stream = {});
/// *result = sqrt(sum of x[i]^2), deterministic as dot.
template <typename T>
void norm2(const T* x, std::size_t n, T* result, Stream stream = {});

}  // namespace cpu

#ifdef SPINDLE_HAVE_CUDA
namespace cuda {

// The same operations on GPU memory, queued on `stream` (which must be a GPU stream). Loads
// are vectorised (float4, double2) when every pointer has the same offset from a 16-byte
// boundary (a head is peeled; the head and the tail run in the same launch), scalar
// otherwise. Launch errors are the launch's own: an earlier failed CUDA call on the same
// thread is not reported again here. Element-wise results equal the CPU twins' up to
// floating-point contraction (FMA); dot and norm2 sum in two passes of a fixed shape, in
// another order than the twins, giving the same bits run after run on one device, and
// write *result in GPU memory without blocking the host.
template <typename T>
void sgd(T* params, const T* grad, T* velocity, std::size_t n, const Sgd& options, Stream stream);
template <typename T>
void adam(T* params, const T* grad, T* m, T* v, std::size_t n, const Adam& options, Stream stream);
template <typename T>
void aggregate(T* out, std::span<const T* const> inputs, std::size_t n, Reduction reduction,
               Stream stream);
template <typename T>
void axpy(T* y, T a, const T* x, std::size_t n, Stream stream);
template <typename T>
void scale(T* x, T a, std::size_t n, Stream stream);
template <typename T>
void fill(T* x, T value, std::size_t n, Stream stream);
template <typename T>
void dot(const T* a, const T* b, std::size_t n, T* result, Stream stream);
template <typename T>
void norm2(const T* x, std::size_t n, T* result, Stream stream);

}  // namespace cuda
#endif

}  // namespace spindle::kernels
