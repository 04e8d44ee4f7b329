// The CPU twins: plain loops the compiler vectorises (restrict pointers, no branches inside),
// split across the runtime's workers by parallel_for when called inside a task.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "checks.hpp"
#include "context/parallel.hpp"
#include "spindle/kernels.hpp"

namespace spindle::kernels::cpu {
namespace {

using spindle::detail::kKernelGrain;
// Reductions sum fixed blocks, then the block sums in order, so results do not depend on
// how many workers there are.
constexpr std::size_t kBlock = std::size_t{1} << 14;

template <typename Body>
void split(std::size_t n, Body body) {
  spindle::detail::parallel_for(n, kKernelGrain, body);
}

// Sum of a[i] * b[i] over one block, in four vector accumulators of 32 bytes (GCC's vector
// extension: the compiler cannot vectorise a float sum by itself without -ffast-math). The
// order of additions is fixed, so the result does not depend on the machine's vector width.
template <typename T>
T block_dot(const T* a, const T* b, std::size_t begin, std::size_t end) {
  constexpr std::size_t kLanes = 32 / sizeof(T);
  using Vector [[gnu::vector_size(32)]] = T;
  Vector acc[4] = {};
  std::size_t i = begin;
  for (; i + 4 * kLanes <= end; i += 4 * kLanes) {
    for (std::size_t k = 0; k < 4; ++k) {
      Vector x, y;
      std::memcpy(&x, a + i + k * kLanes, sizeof x);
      std::memcpy(&y, b + i + k * kLanes, sizeof y);
      acc[k] += x * y;
    }
  }
  Vector both = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  T total = 0;
  for (std::size_t lane = 0; lane < kLanes; ++lane) total += both[lane];
  for (; i < end; ++i) total += a[i] * b[i];
  return total;
}

// Blocks of fixed size, summed in order: results do not depend on the number of workers.
template <typename T>
T deterministic_dot(const T* a, const T* b, std::size_t n) {
  std::size_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<T> partial(blocks);
  spindle::detail::parallel_for(
      blocks, kKernelGrain / kBlock, [&](std::size_t first, std::size_t last) {
        for (std::size_t block = first; block < last; ++block) {
          partial[block] = block_dot(a, b, block * kBlock, std::min(n, (block + 1) * kBlock));
        }
      });
  T total = 0;
  for (T value : partial) total += value;
  return total;
}

}  // namespace

template <typename T>
void sgd(T* params, const T* grad, T* velocity, std::size_t n, const Sgd& options, Stream stream) {
  detail::check(options, velocity, n);
  detail::check_stream(stream, false, "kernels::cpu::sgd");
  const T lr = static_cast<T>(options.lr), wd = static_cast<T>(options.weight_decay),
          mu = static_cast<T>(options.momentum);
  const bool nesterov = options.nesterov;
  if (options.momentum == 0) {
    split(n, [=](std::size_t begin, std::size_t end) {
      T* __restrict p = params;
      const T* __restrict g = grad;
      for (std::size_t i = begin; i < end; ++i) p[i] -= lr * (g[i] + wd * p[i]);
    });
    return;
  }
  split(n, [=](std::size_t begin, std::size_t end) {
    T* __restrict p = params;
    T* __restrict v = velocity;
    const T* __restrict g = grad;
    for (std::size_t i = begin; i < end; ++i) {
      T d = g[i] + wd * p[i];
      T vi = mu * v[i] + d;
      v[i] = vi;
      p[i] -= lr * (nesterov ? d + mu * vi : vi);
    }
  });
}

template <typename T>
void adam(T* params, const T* grad, T* m, T* v, std::size_t n, const Adam& options, Stream stream) {
  detail::check(options);
  detail::check_stream(stream, false, "kernels::cpu::adam");
  const T b1 = static_cast<T>(options.beta1), b2 = static_cast<T>(options.beta2),
          eps = static_cast<T>(options.eps);
  const T step_size =
      static_cast<T>(options.lr / detail::bias_correction(options.beta1, options.step));
  const T inv_sqrt_bc2 =
      static_cast<T>(1 / std::sqrt(detail::bias_correction(options.beta2, options.step)));
  // Decoupled (AdamW) decay shrinks p; coupled (Adam) decay adds to the gradient.
  const T shrink = static_cast<T>(options.decoupled ? 1 - options.lr * options.weight_decay : 1);
  const T coupled = static_cast<T>(options.decoupled ? 0 : options.weight_decay);
  split(n, [=](std::size_t begin, std::size_t end) {
    T* __restrict p = params;
    T* __restrict mm = m;
    T* __restrict vv = v;
    const T* __restrict g = grad;
    for (std::size_t i = begin; i < end; ++i) {
      T pi = p[i] * shrink;
      T gi = g[i] + coupled * p[i];
      T mi = b1 * mm[i] + (1 - b1) * gi;
      T vi = b2 * vv[i] + (1 - b2) * gi * gi;
      mm[i] = mi;
      vv[i] = vi;
      p[i] = pi - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
    }
  });
}

namespace {

// dst[i] = ((acc[i] + in[0][i]) + in[1][i]) ... * factor over a group of C inputs, summed in
// input order (without acc: starting from in[0][i]). dst may be identical to an input.
template <typename T, int C>
void add_group(T* dst, const T* acc, const T* const* in, std::size_t offset, std::size_t len,
               T factor) {
  const T* __restrict a = in[0] + offset;
  const T* __restrict b = in[C > 1 ? 1 : 0] + offset;
  const T* __restrict c = in[C > 2 ? 2 : 0] + offset;
  const T* __restrict d = in[C > 3 ? 3 : 0] + offset;
  for (std::size_t i = 0; i < len; ++i) {
    T sum = acc ? acc[i] + a[i] : a[i];
    if constexpr (C > 1) sum += b[i];
    if constexpr (C > 2) sum += c[i];
    if constexpr (C > 3) sum += d[i];
    dst[i] = sum * factor;
  }
}

template <typename T>
void add_group(T* dst, const T* acc, const T* const* in, std::size_t count, std::size_t offset,
               std::size_t len, T factor) {
  switch (count) {
    case 1:
      return add_group<T, 1>(dst, acc, in, offset, len, factor);
    case 2:
      return add_group<T, 2>(dst, acc, in, offset, len, factor);
    case 3:
      return add_group<T, 3>(dst, acc, in, offset, len, factor);
    default:
      return add_group<T, 4>(dst, acc, in, offset, len, factor);
  }
}

}  // namespace

template <typename T>
void aggregate(T* out, std::span<const T* const> inputs, std::size_t n, Reduction reduction,
               Stream stream) {
  detail::check_inputs({reinterpret_cast<const void* const*>(inputs.data()), inputs.size()}, n);
  detail::check_stream(stream, false, "kernels::cpu::aggregate");
  const T factor = reduction == Reduction::mean ? T(1) / static_cast<T>(inputs.size()) : T(1);
  const std::size_t k = inputs.size();
  split(n, [=](std::size_t begin, std::size_t end) {
    if (k <= 4) {  // one pass straight into out, streaming every input once
      add_group<T>(out + begin, nullptr, inputs.data(), k, begin, end - begin, factor);
      return;
    }
    // Groups of four inputs add into a cached tile of running sums; the last writes out.
    constexpr std::size_t kTile = 8192;
    std::vector<T> tile(std::min(kTile, end - begin));
    for (std::size_t at = begin; at < end; at += kTile) {
      std::size_t len = std::min(kTile, end - at);
      for (std::size_t first = 0; first < k; first += 4) {
        std::size_t count = std::min<std::size_t>(4, k - first);
        bool last = first + count == k;
        add_group<T>(last ? out + at : tile.data(), first == 0 ? nullptr : tile.data(),
                     inputs.data() + first, count, at, len, last ? factor : T(1));
      }
    }
  });
}

template <typename T>
void axpy(T* y, T a, const T* x, std::size_t n, Stream stream) {
  detail::check_stream(stream, false, "kernels::cpu::axpy");
  split(n, [=](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) y[i] += a * x[i];
  });
}

template <typename T>
void scale(T* x, T a, std::size_t n, Stream stream) {
  detail::check_stream(stream, false, "kernels::cpu::scale");
  split(n, [=](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) x[i] *= a;
  });
}

template <typename T>
void fill(T* x, T value, std::size_t n, Stream stream) {
  detail::check_stream(stream, false, "kernels::cpu::fill");
  split(n, [=](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) x[i] = value;
  });
}

template <typename T>
void dot(const T* a, const T* b, std::size_t n, T* result, Stream stream) {
  detail::check_stream(stream, false, "kernels::cpu::dot");
  *result = deterministic_dot(a, b, n);
}

template <typename T>
void norm2(const T* x, std::size_t n, T* result, Stream stream) {
  detail::check_stream(stream, false, "kernels::cpu::norm2");
  *result = std::sqrt(deterministic_dot(x, x, n));
}

SPINDLE_INSTANTIATE_KERNELS(float)
SPINDLE_INSTANTIATE_KERNELS(double)

}  // namespace spindle::kernels::cpu
