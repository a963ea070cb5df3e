// bf16x2 activations: the hi/lo split and the sum of the two products. Contract in kernels.h.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/cuda/cuda_status.h"
#include "engine/cuda/dependent_launch.h"
#include "engine/cuda/kernel_util.cuh"
#include "engine/cuda/kernels.h"

namespace xlstm::engine::cuda {
namespace {

__global__ void SplitToBf16PairsKernel(const float* x, int64_t rows, int64_t cols,
                                       __nv_bfloat16* pairs) {
  EnterDependentKernel();
  const int64_t count = rows * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float v = x[i];
    const __nv_bfloat16 hi = __float2bfloat16_rn(v);
    pairs[i] = hi;
    pairs[count + i] = __float2bfloat16_rn(v - __bfloat162float(hi));  // exact difference
  }
}

__global__ void AddPairProductsKernel(const float* products, int64_t rows, int64_t cols, float* y,
                                      int64_t y_stride, bool accumulate) {
  EnterDependentKernel();
  const int64_t count = rows * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    const float sum = products[i] + products[count + i];
    float* out = y + r * y_stride + c;
    *out = accumulate ? *out + sum : sum;
  }
}

}  // namespace

absl::Status LaunchSplitToBf16Pairs(const float* x, int64_t rows, int64_t cols, void* pairs,
                                    cudaStream_t stream) {
  if (rows * cols == 0) return absl::OkStatus();
  return LaunchStatus(
      LaunchDependent(SplitToBf16PairsKernel, ElementwiseBlocks(rows * cols, 256), 256, 0, stream,
                      x, rows, cols, static_cast<__nv_bfloat16*>(pairs)),
      "SplitToBf16PairsKernel");
}

absl::Status LaunchAddPairProducts(const float* products, int64_t rows, int64_t cols, float* y,
                                   int64_t y_stride, bool accumulate, cudaStream_t stream) {
  if (rows * cols == 0) return absl::OkStatus();
  return LaunchStatus(
      LaunchDependent(AddPairProductsKernel, ElementwiseBlocks(rows * cols, 256), 256, 0, stream,
                      products, rows, cols, y, y_stride, accumulate),
      "AddPairProductsKernel");
}

}  // namespace xlstm::engine::cuda
