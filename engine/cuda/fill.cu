// Fills a float array with one value. Contract in kernels.h.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/cuda/cuda_status.h"
#include "engine/cuda/dependent_launch.h"
#include "engine/cuda/kernel_util.cuh"
#include "engine/cuda/kernels.h"

namespace xlstm::engine::cuda {
namespace {

__global__ void FillKernel(float* dst, int64_t count, float value) {
  EnterDependentKernel();
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    dst[i] = value;
  }
}

}  // namespace

absl::Status LaunchFill(float* dst, int64_t count, float value, cudaStream_t stream) {
  if (count == 0) return absl::OkStatus();
  return LaunchStatus(
      LaunchDependent(FillKernel, ElementwiseBlocks(count, 256), 256, 0, stream, dst, count, value),
      "FillKernel");
}

}  // namespace xlstm::engine::cuda
