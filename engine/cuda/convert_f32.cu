// fp32 to the activation type. Contract in kernels.h.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/cuda/cuda_status.h"
#include "engine/cuda/dependent_launch.h"
#include "engine/cuda/kernel_util.cuh"
#include "engine/cuda/kernels.h"

namespace xlstm::engine::cuda {
namespace {

__global__ void ConvertF32Kernel(const float* src, int64_t count, void* dst, bool bf16) {
  EnterDependentKernel();
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    StoreAct(dst, i, src[i], bf16);
  }
}

}  // namespace

absl::Status LaunchConvertF32(const float* src, int64_t count, void* dst, ActType type,
                              cudaStream_t stream) {
  if (count == 0) return absl::OkStatus();
  return LaunchStatus(LaunchDependent(ConvertF32Kernel, ElementwiseBlocks(count, 256), 256, 0,
                                      stream, src, count, dst, type == ActType::kBF16),
                      "ConvertF32Kernel");
}

}  // namespace xlstm::engine::cuda
