// The CUDA build works end to end: a kernel compiled for the default architectures runs.
// Skipped, with the reason, where no GPU is present.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include "spindle/spindle.hpp"

namespace {

__global__ void write_indices(int* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = i;
}

TEST(CudaSmoke, KernelWritesEveryElement) {
  spindle::Topology topology = spindle::Topology::discover();
  if (topology.gpus.empty()) GTEST_SKIP() << "no GPU: " << topology.gpu_note;
  constexpr int kCount = 1000;
  int* device = nullptr;
  ASSERT_EQ(cudaMalloc(&device, kCount * sizeof(int)), cudaSuccess);
  write_indices<<<(kCount + 255) / 256, 256>>>(device, kCount);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  std::vector<int> host(kCount, -1);
  ASSERT_EQ(cudaMemcpy(host.data(), device, kCount * sizeof(int), cudaMemcpyDeviceToHost),
            cudaSuccess);
  ASSERT_EQ(cudaFree(device), cudaSuccess);
  for (int i = 0; i < kCount; ++i) ASSERT_EQ(host[i], i);
}

}  // namespace
