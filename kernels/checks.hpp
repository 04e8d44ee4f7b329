// Checks shared by the CPU twins and the CUDA kernels, so both reject the same input alike.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "spindle/kernels.hpp"

namespace spindle::kernels::detail {

/// Throws InvalidArgumentError naming the first option out of range; momentum needs a
/// velocity array.
void check(const Sgd& options, const void* velocity, std::size_t n);
void check(const Adam& options);
/// The most inputs one aggregate takes: their pointers travel as one kernel parameter.
inline constexpr std::size_t kMaxInputs = 256;

/// Between 1 and kMaxInputs inputs, none null when n > 0.
void check_inputs(std::span<const void* const> inputs, std::size_t n);
/// The stream's side matches the function's: `gpu` for cuda::, host for cpu::.
void check_stream(Stream stream, bool gpu, std::string_view function);

/// 1 - beta^step, in double.
double bias_correction(double beta, std::int64_t step);

}  // namespace spindle::kernels::detail

// Instantiates every kernel of the enclosing namespace (cpu or cuda) for T: one list of
// signatures, so the CPU twins and the CUDA kernels cannot drift apart.
#define SPINDLE_INSTANTIATE_KERNELS(T)                                                       \
  template void sgd<T>(T*, const T*, T*, std::size_t, const Sgd&, Stream);                   \
  template void adam<T>(T*, const T*, T*, T*, std::size_t, const Adam&, Stream);             \
  template void aggregate<T>(T*, std::span<const T* const>, std::size_t, Reduction, Stream); \
  template void axpy<T>(T*, T, const T*, std::size_t, Stream);                               \
  template void scale<T>(T*, T, std::size_t, Stream);                                        \
  template void fill<T>(T*, T, std::size_t, Stream);                                         \
  template void dot<T>(const T*, const T*, std::size_t, T*, Stream);                         \
  template void norm2<T>(const T*, std::size_t, T*, Stream);
