// Embedding gather: x[t] = table[tokens[t]] as fp32. Contract in kernels.h.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/cuda/cuda_status.h"
#include "engine/cuda/dependent_launch.h"
#include "engine/cuda/kernel_util.cuh"
#include "engine/cuda/kernels.h"

namespace xlstm::engine::cuda {
namespace {

__global__ void EmbeddingGatherKernel(const int32_t* tokens, int64_t num_tokens, const void* table,
                                      bool bf16, int64_t dim, float* x) {
  EnterDependentKernel();
  const int64_t t = blockIdx.x;
  const int64_t row = static_cast<int64_t>(tokens[t]) * dim;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
    x[t * dim + d] = LoadAct(table, row + d, bf16);
}

}  // namespace

absl::Status LaunchEmbeddingGather(const int32_t* tokens, int64_t num_tokens, const void* table,
                                   ActType table_type, int64_t dim, float* x, cudaStream_t stream) {
  if (num_tokens == 0) return absl::OkStatus();
  return LaunchStatus(
      LaunchDependent(EmbeddingGatherKernel, static_cast<unsigned>(num_tokens), RowThreads(dim), 0,
                      stream, tokens, num_tokens, table, table_type == ActType::kBF16, dim, x),
      "EmbeddingGatherKernel");
}

}  // namespace xlstm::engine::cuda
