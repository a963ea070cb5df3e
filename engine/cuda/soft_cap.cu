// Soft cap (cap * tanh(v / cap)) in place. Contract in kernels.h.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/cuda/cuda_status.h"
#include "engine/cuda/dependent_launch.h"
#include "engine/cuda/kernel_util.cuh"
#include "engine/cuda/kernels.h"

namespace xlstm::engine::cuda {
namespace {

__global__ void SoftCapKernel(float* values, int64_t count, float cap) {
  EnterDependentKernel();
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    values[i] = cap * tanhf(values[i] / cap);
  }
}

}  // namespace

absl::Status LaunchSoftCap(float* values, int64_t count, float cap, cudaStream_t stream) {
  if (cap <= 0.0f || count == 0) return absl::OkStatus();
  return LaunchStatus(LaunchDependent(SoftCapKernel, ElementwiseBlocks(count, 256), 256, 0, stream,
                                      values, count, cap),
                      "SoftCapKernel");
}

}  // namespace xlstm::engine::cuda
