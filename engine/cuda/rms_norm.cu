// RMSNorm of each row, written as the GEMMs' activation type. Contract in kernels.h.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/cuda/cuda_status.h"
#include "engine/cuda/dependent_launch.h"
#include "engine/cuda/kernel_util.cuh"
#include "engine/cuda/kernels.h"

namespace xlstm::engine::cuda {
namespace {

__global__ void RmsNormKernel(const float* x, int64_t dim, const float* weight, const float* bias,
                              float eps, void* out, bool bf16) {
  EnterDependentKernel();
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const float* in = x + r * dim;
  float sum_sq = 0.0f;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) sum_sq += in[d] * in[d];
  sum_sq = BlockSum(sum_sq, scratch);
  const float inv_rms = rsqrtf(sum_sq / static_cast<float>(dim) + eps);
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
    float y = in[d] * inv_rms * weight[d];
    if (bias != nullptr) y += bias[d];
    StoreAct(out, r * dim + d, y, bf16);
  }
}

}  // namespace

absl::Status LaunchRmsNorm(const float* x, int64_t rows, int64_t dim, const float* weight,
                           const float* bias, float eps, void* out, ActType out_type,
                           cudaStream_t stream) {
  if (rows == 0) return absl::OkStatus();
  return LaunchStatus(
      LaunchDependent(RmsNormKernel, static_cast<unsigned>(rows), RowThreads(dim), 0, stream, x,
                      dim, weight, bias, eps, out, out_type == ActType::kBF16),
      "RmsNormKernel");
}

}  // namespace xlstm::engine::cuda
