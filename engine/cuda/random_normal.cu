// Deterministic pseudo-random normal fill (benchmark weights). Contract in kernels.h.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/cuda/cuda_status.h"
#include "engine/cuda/dependent_launch.h"
#include "engine/cuda/kernel_util.cuh"
#include "engine/cuda/kernels.h"

namespace xlstm::engine::cuda {
namespace {

__device__ __forceinline__ uint64_t SplitMix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

__global__ void RandomNormalKernel(void* values, bool bf16, int64_t count, uint64_t seed,
                                   float mean, float stddev) {
  EnterDependentKernel();
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    const uint64_t bits = SplitMix64(seed ^ SplitMix64(static_cast<uint64_t>(i)));
    // Box-Muller from two 24-bit uniforms in (0, 1].
    const float u1 = (static_cast<float>(bits >> 40) + 1.0f) * (1.0f / 16777216.0f);
    const float u2 = static_cast<float>((bits >> 16) & 0xffffffu) * (1.0f / 16777216.0f);
    const float z = sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
    StoreAct(values, i, mean + stddev * z, bf16);
  }
}

}  // namespace

absl::Status LaunchRandomNormal(void* values, ActType type, int64_t count, uint64_t seed,
                                float mean, float stddev, cudaStream_t stream) {
  if (count == 0) return absl::OkStatus();
  return LaunchStatus(
      LaunchDependent(RandomNormalKernel, ElementwiseBlocks(count, 256), 256, 0, stream, values,
                      type == ActType::kBF16, count, seed, mean, stddev),
      "RandomNormalKernel");
}

}  // namespace xlstm::engine::cuda
