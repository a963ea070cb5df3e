// Per-head normalization of the mLSTM read-out times the output gate. Contract in kernels.h.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/dependent_launch.h"
#include "engine/cuda/kernel_util.cuh"
#include "engine/cuda/kernels.h"

namespace xlstm::engine::cuda {
namespace {

// Block per (token, head); dynamic shared memory holds the head's dv outputs.
__global__ void HeadNormGateKernel(const float* partial, int32_t splits, int32_t partial_width,
                                   const float* gates, const float* proj, int64_t proj_stride,
                                   int64_t o_column, const float* weight, const float* bias,
                                   int64_t num_tokens, int64_t nh, int64_t dv, float eps,
                                   float norm_eps, void* out, bool bf16) {
  EnterDependentKernel();
  extern __shared__ float h_s[];
  __shared__ float scratch[32];
  const int64_t t = blockIdx.x / nh, head = blockIdx.x % nh;
  auto at = [&](int32_t sp, int64_t column) {
    return partial[((sp * num_tokens + t) * nh + head) * partial_width + column];
  };
  auto summed = [&](int64_t column) {
    float s = 0.0f;
    for (int32_t sp = 0; sp < splits; ++sp) s += at(sp, column);
    return s;
  };
  // q·n is split over the columns dv..partial_width-1 of every split (2 x 8 values at the 7B
  // shape). Every thread adds them up itself, in the same order, from independent broadcast
  // loads; the thread's first kHeld numerators are loaded before the division needs q·n, so
  // that one memory round trip covers both (dv <= kHeld * blockDim.x at the usual shapes).
  constexpr int kHeld = 2;
  float qn = 0.0f;
  for (int32_t sp = 0; sp < splits; ++sp) {
    for (int64_t column = dv; column < partial_width; ++column) qn += at(sp, column);
  }
  float num[kHeld];
#pragma unroll
  for (int j = 0; j < kHeld; ++j) {
    const int64_t b = threadIdx.x + j * int64_t{blockDim.x};
    num[j] = b < dv ? summed(b) : 0.0f;
  }
  const float m_t = gates[(t * nh + head) * 3 + 2];
  const float denominator = fmaxf(fabsf(qn), expf(-m_t)) + eps;
  float local = 0.0f;
#pragma unroll
  for (int j = 0; j < kHeld; ++j) {
    const int64_t b = threadIdx.x + j * int64_t{blockDim.x};
    if (b < dv) {
      const float h = num[j] / denominator;
      h_s[b] = h;
      local += h;
    }
  }
  for (int64_t b = threadIdx.x + kHeld * int64_t{blockDim.x}; b < dv; b += blockDim.x) {
    const float h = summed(b) / denominator;
    h_s[b] = h;
    local += h;
  }
  const float mean = BlockSum(local, scratch) / static_cast<float>(dv);
  local = 0.0f;
  for (int64_t b = threadIdx.x; b < dv; b += blockDim.x) {
    const float d = h_s[b] - mean;
    local += d * d;
  }
  const float var = BlockSum(local, scratch) / static_cast<float>(dv);
  const float inv_std = rsqrtf(var + norm_eps);
  for (int64_t b = threadIdx.x; b < dv; b += blockDim.x) {
    const int64_t idx = head * dv + b;
    float y = (h_s[b] - mean) * inv_std * weight[idx];
    if (bias != nullptr) y += bias[idx];
    const float o = proj[t * proj_stride + o_column + idx];
    StoreAct(out, t * nh * dv + idx, SigmoidF(o) * y, bf16);
  }
}

}  // namespace

absl::Status LaunchHeadNormGate(const float* partial, const ScanPlan& plan, const float* gates,
                                const float* proj, int64_t proj_stride, int64_t o_column,
                                const float* weight, const float* bias, int64_t num_tokens,
                                int64_t num_heads, int64_t dv, float eps, float norm_eps, void* out,
                                ActType out_type, cudaStream_t stream) {
  if (num_tokens == 0) return absl::OkStatus();
  const size_t shared = static_cast<size_t>(dv) * sizeof(float);
  if (shared > 48 * 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("head norm: v head dim ", dv, " exceeds the kernel's limit 12288"));
  }
  return LaunchStatus(
      LaunchDependent(HeadNormGateKernel, static_cast<unsigned>(num_tokens * num_heads),
                      RowThreads(dv), shared, stream, partial, plan.splits, plan.partial_width,
                      gates, proj, proj_stride, o_column, weight, bias, num_tokens, num_heads, dv,
                      eps, norm_eps, out, out_type == ActType::kBF16),
      "HeadNormGateKernel");
}

}  // namespace xlstm::engine::cuda
