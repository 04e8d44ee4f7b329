// Operations on Buffers: fused optimiser updates, N-way aggregation, BLAS-1. Each runs where
// its buffers live: on their GPU (queued on the calling task's stream, or the device's shared
// stream outside tasks) or on the host (the CPU twin, split across the runtime's workers when
// called inside a task). See spindle/kernels.hpp for the formulas and aliasing rules.
//
//   spindle::ops::adam(params, grad, m, v, {.lr = 1e-3, .step = t});
//   double n = spindle::ops::norm2(params);     // waits for the result (only this fiber)
//
// Element-wise operations on a GPU return once queued; later copies and operations from the
// same task are ordered after them, and a task's result is ready only once they finished.
// Instantiated for float and double.
#pragma once

#include <span>

#include "spindle/buffer.hpp"
#include "spindle/kernels.hpp"

namespace spindle::ops {

using kernels::Adam;
using kernels::Reduction;
using kernels::Sgd;

/// Every operation checks its input and throws before doing anything:
/// InvalidArgumentError when sizes differ or an option is out of range (naming both),
/// DeviceError when its buffers are not in one place (host and pinned count as one).

/// SGD without momentum: options.momentum must be 0.
template <typename T>
void sgd(Buffer<T>& params, const Buffer<T>& grad, const Sgd& options);
/// SGD with momentum (Nesterov with options.nesterov); `velocity` keeps the state.
template <typename T>
void sgd(Buffer<T>& params, const Buffer<T>& grad, Buffer<T>& velocity, const Sgd& options);
/// Adam or AdamW (options.decoupled); m and v keep the moments, options.step counts from 1.
template <typename T>
void adam(Buffer<T>& params, const Buffer<T>& grad, Buffer<T>& m, Buffer<T>& v,
          const Adam& options);
/// out = sum or mean of 1 to 256 inputs, in one pass; out may be one of the inputs.
template <typename T>
void aggregate(Buffer<T>& out, std::span<const Buffer<T>* const> inputs, Reduction reduction);
/// y += a * x.
template <typename T>
void axpy(Buffer<T>& y, T a, const Buffer<T>& x);
/// x *= a.
template <typename T>
void scale(Buffer<T>& x, T a);
/// Every element = value.
template <typename T>
void fill(Buffer<T>& x, T value);
/// The dot product; waits for it.
template <typename T>
[[nodiscard]] T dot(const Buffer<T>& a, const Buffer<T>& b);
/// The Euclidean norm; waits for it.
template <typename T>
[[nodiscard]] T norm2(const Buffer<T>& x);

}  // namespace spindle::ops
