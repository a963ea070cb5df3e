// mLSTM input and forget gates with the stabilizer recurrence. Contract in kernels.h.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/cuda/cuda_status.h"
#include "engine/cuda/dependent_launch.h"
#include "engine/cuda/kernel_util.cuh"
#include "engine/cuda/kernels.h"

namespace xlstm::engine::cuda {
namespace {
// Warps per block (one warp per row and head).
constexpr int kGateWarps = 4;

// One warp per (row, head). The stabilizer recurrence m_t = max(log f_t + m_{t-1}, i_t) is
// inherently sequential, but everything around it is not: each round, the 32 lanes load and
// soft-cap 32 tokens' gate pre-activations in parallel, every lane then walks the 32-step chain
// (the same arithmetic, in the same order, as a plain loop), and each lane finishes its own
// token's exponentials.
__global__ void MlstmGatesKernel(const float* proj, int64_t proj_stride, int64_t i_column,
                                 int64_t f_column, const float* i_bias, const float* f_bias,
                                 float cap, StepRows rows, StateLayout layout, int64_t block,
                                 void* states, float* gates) {
  EnterDependentKernel();
  __shared__ float lf_s[kGateWarps][kWarp], ip_s[kGateWarps][kWarp];
  const int64_t warp_index = (blockIdx.x * int64_t{blockDim.x} + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp, warp_in_block = threadIdx.x / kWarp;
  const int64_t nh = layout.num_heads;
  if (warp_index >= rows.num_rows * nh) return;  // whole warps exit together
  const int64_t r = warp_index / nh, h = warp_index % nh;
  // A row of no tokens (the padding rows of a decode bucket) leaves its slot untouched.
  if (rows.token_count[r] == 0) return;
  // m is an fp32 whatever the state type: address it in bytes.
  float* m_ptr = reinterpret_cast<float*>(
      static_cast<char*>(states) + (rows.slot[r] * layout.slot_stride +
                                    (block * nh + h) * layout.head_stride + layout.m_offset()) *
                                       layout.element_bytes());
  float m = *m_ptr;
  const int64_t begin = rows.token_begin[r], count = rows.token_count[r];
  for (int64_t t0 = 0; t0 < count; t0 += kWarp) {
    const int round = static_cast<int>(min(int64_t{kWarp}, count - t0));
    const int64_t t = begin + t0 + lane;
    float i_pre = 0.0f, log_f = 0.0f;
    if (lane < round) {
      i_pre = SoftCapF(proj[t * proj_stride + i_column + h] + i_bias[h], cap);
      log_f = LogSigmoidF(SoftCapF(proj[t * proj_stride + f_column + h] + f_bias[h], cap));
    }
    // The chain reads its inputs from shared memory: those loads do not depend on m, so they
    // issue ahead and each step costs one add and one max.
    lf_s[warp_in_block][lane] = log_f;
    ip_s[warp_in_block][lane] = i_pre;
    __syncwarp();
    float m_prev = 0.0f, m_mine = 0.0f;
#pragma unroll 8
    for (int j = 0; j < round; ++j) {
      const float m_new = fmaxf(lf_s[warp_in_block][j] + m, ip_s[warp_in_block][j]);
      if (lane == j) {
        m_prev = m;
        m_mine = m_new;
      }
      m = m_new;
    }
    __syncwarp();  // the next round overwrites lf_s / ip_s
    if (lane < round) {
      float* g = gates + (t * nh + h) * 3;
      g[0] = expf(log_f + m_prev - m_mine);  // f_act
      g[1] = expf(i_pre - m_mine);           // i_act
      g[2] = m_mine;
    }
  }
  if (lane == 0) *m_ptr = m;
}

}  // namespace

absl::Status LaunchMlstmGates(const float* proj, int64_t proj_stride, int64_t i_column,
                              int64_t f_column, const float* i_bias, const float* f_bias,
                              float gate_soft_cap, const StepRows& rows, const StateLayout& layout,
                              int64_t block, void* states, float* gates, cudaStream_t stream) {
  const int64_t warps_needed = int64_t{rows.num_rows} * layout.num_heads;
  if (warps_needed == 0) return absl::OkStatus();
  return LaunchStatus(
      LaunchDependent(MlstmGatesKernel, static_cast<unsigned>(CeilDiv(warps_needed, kGateWarps)),
                      kGateWarps * kWarp, 0, stream, proj, proj_stride, i_column, f_column, i_bias,
                      f_bias, gate_soft_cap, rows, layout, block, states, gates),
      "MlstmGatesKernel");
}

}  // namespace xlstm::engine::cuda
