// Gathers rows of a matrix by index. Contract in kernels.h.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/cuda/cuda_status.h"
#include "engine/cuda/dependent_launch.h"
#include "engine/cuda/kernel_util.cuh"
#include "engine/cuda/kernels.h"

namespace xlstm::engine::cuda {
namespace {

__global__ void GatherRowsKernel(const float* x, const int32_t* rows, int64_t dim, float* out) {
  EnterDependentKernel();
  const int64_t i = blockIdx.x;
  const float* src = x + static_cast<int64_t>(rows[i]) * dim;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) out[i * dim + d] = src[d];
}

}  // namespace

absl::Status LaunchGatherRows(const float* x, const int32_t* rows, int64_t num_rows, int64_t dim,
                              float* out, cudaStream_t stream) {
  if (num_rows == 0) return absl::OkStatus();
  return LaunchStatus(LaunchDependent(GatherRowsKernel, static_cast<unsigned>(num_rows),
                                      RowThreads(dim), 0, stream, x, rows, dim, out),
                      "GatherRowsKernel");
}

}  // namespace xlstm::engine::cuda
