// Row-wise argmax (greedy decoding on the device). Contract in kernels.h.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/cuda/cuda_status.h"
#include "engine/cuda/dependent_launch.h"
#include "engine/cuda/kernel_util.cuh"
#include "engine/cuda/kernels.h"

namespace xlstm::engine::cuda {
namespace {

__global__ void ArgmaxKernel(const float* logits, int64_t vocab, int32_t* ids) {
  EnterDependentKernel();
  __shared__ float best_value[32];
  __shared__ int64_t best_index[32];
  const float* row = logits + blockIdx.x * vocab;
  float value = -INFINITY;
  int64_t index = vocab;  // none yet
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) {
    if (index == vocab || row[v] > value) {  // strictly greater: the first maximum stays
      value = row[v];
      index = v;
    }
  }
  // Warp then block reduction; ties go to the smaller index.
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    const float other_value = __shfl_xor_sync(0xffffffffu, value, offset);
    const int64_t other_index = __shfl_xor_sync(0xffffffffu, index, offset);
    if (other_value > value || (other_value == value && other_index < index)) {
      value = other_value;
      index = other_index;
    }
  }
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  if (lane == 0) {
    best_value[warp] = value;
    best_index[warp] = index;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < static_cast<int>(blockDim.x / kWarp); ++w) {
      if (best_value[w] > value || (best_value[w] == value && best_index[w] < index)) {
        value = best_value[w];
        index = best_index[w];
      }
    }
    ids[blockIdx.x] = static_cast<int32_t>(index < vocab ? index : 0);
  }
}

}  // namespace

absl::Status LaunchArgmax(const float* logits, int64_t rows, int64_t vocab, int32_t* ids,
                          cudaStream_t stream) {
  if (rows == 0) return absl::OkStatus();
  return LaunchStatus(LaunchDependent(ArgmaxKernel, static_cast<unsigned>(rows), 256, 0, stream,
                                      logits, vocab, ids),
                      "ArgmaxKernel");
}

}  // namespace xlstm::engine::cuda
