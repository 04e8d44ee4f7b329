// Turning CUDA runtime errors into DeviceError, for spindle's CUDA sources only.
//
// The CUDA runtime keeps a "last error" per OS thread that every later cudaGetLastError or
// cudaPeekAtLastError returns. Fibers of many tasks share a worker's thread, so an error one
// task saw must not surface in another's launch: every error spindle raises or ignores is
// cleared where it happens (clear_cuda_error), and launches are checked by their own return.
#pragma once

#include <cuda_runtime_api.h>

#include <string>
#include <string_view>

#include "spindle/errors.hpp"

namespace spindle::detail {

/// Resets the calling thread's last CUDA error. Sticky errors (a kernel that faulted) stay:
/// the device is unusable after them and every later call reports them, as it should.
inline void clear_cuda_error() noexcept { (void)cudaGetLastError(); }

/// "cudaMallocAsync(1024 bytes) on GPU 0: cudaErrorMemoryAllocation, out of memory".
[[noreturn]] inline void throw_cuda(cudaError_t error, std::string_view call, int device) {
  clear_cuda_error();
  throw DeviceError(std::string(call) + " on GPU " + std::to_string(device) + ": " +
                    cudaGetErrorName(error) + ", " + cudaGetErrorString(error));
}

inline void check_cuda(cudaError_t error, std::string_view call, int device) {
  if (error != cudaSuccess) throw_cuda(error, call, device);
}

/// For calls whose failure is ignored (a restore in a destructor, a free): the error is
/// dropped here so that it cannot be reported later as someone else's.
inline void ignore_cuda(cudaError_t error) noexcept {
  if (error != cudaSuccess) clear_cuda_error();
}

/// As check_cuda, naming the call as "call(N bytes)"; the text is built only on an error.
inline void check_cuda(cudaError_t error, std::string_view call, std::size_t bytes, int device) {
  if (error != cudaSuccess) {
    throw_cuda(error, std::string(call) + "(" + std::to_string(bytes) + " bytes)", device);
  }
}

}  // namespace spindle::detail
