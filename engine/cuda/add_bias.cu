// Adds a bias row to every row of a matrix. Contract in kernels.h.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/cuda/cuda_status.h"
#include "engine/cuda/dependent_launch.h"
#include "engine/cuda/kernel_util.cuh"
#include "engine/cuda/kernels.h"

namespace xlstm::engine::cuda {
namespace {

__global__ void AddBiasKernel(float* y, int64_t rows, int64_t cols, int64_t row_stride,
                              const float* bias) {
  EnterDependentKernel();
  const int64_t total = rows * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    y[r * row_stride + c] += bias[c];
  }
}

}  // namespace

absl::Status LaunchAddBias(float* y, int64_t rows, int64_t cols, int64_t row_stride,
                           const float* bias, cudaStream_t stream) {
  if (rows * cols == 0) return absl::OkStatus();
  return LaunchStatus(LaunchDependent(AddBiasKernel, ElementwiseBlocks(rows * cols, 256), 256, 0,
                                      stream, y, rows, cols, row_stride, bias),
                      "AddBiasKernel");
}

}  // namespace xlstm::engine::cuda
