// Turning CUDA runtime errors into DeviceError, for spindle's CUDA sources only.
#pragma once

#include <cuda_runtime_api.h>

#include <string>
#include <string_view>

#include "spindle/errors.hpp"

namespace spindle::detail {

/// "cudaMallocAsync(1024 bytes) on GPU 0: cudaErrorMemoryAllocation, out of memory".
[[noreturn]] inline void throw_cuda(cudaError_t error, std::string_view call, int device) {
  throw DeviceError(std::string(call) + " on GPU " + std::to_string(device) + ": " +
                    cudaGetErrorName(error) + ", " + cudaGetErrorString(error));
}

inline void check_cuda(cudaError_t error, std::string_view call, int device) {
  if (error != cudaSuccess) throw_cuda(error, call, device);
}

}  // namespace spindle::detail
