// SwiGLU of the feed-forward up-projection. Contract in kernels.h.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/cuda/cuda_status.h"
#include "engine/cuda/dependent_launch.h"
#include "engine/cuda/kernel_util.cuh"
#include "engine/cuda/kernels.h"

namespace xlstm::engine::cuda {
namespace {

__global__ void SwiGluKernel(const float* up, int64_t num_tokens, int64_t ffn,
                             const float* gate_bias, const float* up_bias, void* out, bool bf16) {
  EnterDependentKernel();
  const int64_t total = num_tokens * ffn;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t t = i / ffn, c = i % ffn;
    float g = up[t * 2 * ffn + c];
    float u = up[t * 2 * ffn + ffn + c];
    if (gate_bias != nullptr) g += gate_bias[c];
    if (up_bias != nullptr) u += up_bias[c];
    StoreAct(out, i, g * SigmoidF(g) * u, bf16);
  }
}

}  // namespace

absl::Status LaunchSwiGlu(const float* up, int64_t num_tokens, int64_t ffn, const float* gate_bias,
                          const float* up_bias, void* out, ActType out_type, cudaStream_t stream) {
  if (num_tokens * ffn == 0) return absl::OkStatus();
  return LaunchStatus(
      LaunchDependent(SwiGluKernel, ElementwiseBlocks(num_tokens * ffn, 256), 256, 0, stream, up,
                      num_tokens, ffn, gate_bias, up_bias, out, out_type == ActType::kBF16),
      "SwiGluKernel");
}

}  // namespace xlstm::engine::cuda
