#include <cuda_bf16.h>

#include <algorithm>

#include "engine/cuda/cuda_status.h"
#include "engine/cuda/split_bf16.h"

namespace xlstm::engine::cuda {
namespace {

constexpr int kThreads = 256;

unsigned Blocks(int64_t count) {
  return static_cast<unsigned>(
      std::max<int64_t>(1, std::min<int64_t>((count + kThreads - 1) / kThreads, 65535 * 8)));
}

__global__ void SplitToBf16PairsKernel(const float* x, int64_t rows, int64_t cols,
                                       __nv_bfloat16* pairs) {
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
  const int64_t count = rows * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    const float sum = products[i] + products[count + i];
    float* out = y + r * y_stride + c;
    *out = accumulate ? *out + sum : sum;
  }
}

absl::Status LaunchStatus(const char* kernel) {
  const cudaError_t error = cudaGetLastError();
  if (error == cudaSuccess) return absl::OkStatus();
  return CudaStatus(error, kernel, __FILE__, __LINE__);
}

}  // namespace

absl::Status LaunchSplitToBf16Pairs(const float* x, int64_t rows, int64_t cols, void* pairs,
                                    cudaStream_t stream) {
  if (rows * cols == 0) return absl::OkStatus();
  SplitToBf16PairsKernel<<<Blocks(rows * cols), kThreads, 0, stream>>>(
      x, rows, cols, static_cast<__nv_bfloat16*>(pairs));
  return LaunchStatus("SplitToBf16PairsKernel");
}

absl::Status LaunchAddPairProducts(const float* products, int64_t rows, int64_t cols, float* y,
                                   int64_t y_stride, bool accumulate, cudaStream_t stream) {
  if (rows * cols == 0) return absl::OkStatus();
  AddPairProductsKernel<<<Blocks(rows * cols), kThreads, 0, stream>>>(products, rows, cols, y,
                                                                      y_stride, accumulate);
  return LaunchStatus("AddPairProductsKernel");
}

}  // namespace xlstm::engine::cuda
