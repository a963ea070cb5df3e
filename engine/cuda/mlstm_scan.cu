// The mLSTM matrix recurrence and read-outs, C and n kept on chip across a row's tokens. Contract
// in kernels.h.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/dependent_launch.h"
#include "engine/cuda/kernel_util.cuh"
#include "engine/cuda/kernels.h"

namespace xlstm::engine::cuda {
namespace {
// Warps per block, and tokens staged per round (one per warp, so that each warp reduces one
// token's partial sums).
constexpr int kScanWarps = 8;
constexpr int kScanTokensPerRound = kScanWarps;
constexpr int kMaxRowsPerThread = 16;

// Shared memory of MlstmScanKernel<RPT, CPT>: two buffers of kScanTokensPerRound staged tokens
// and of their per-warp read-out sums. Each staged row of i_act * k and q / sqrt(dqk) ends in 4
// zeros that the spread-n rows a warp does not have point at.
template <int RPT, int CPT>
struct ScanShared {
  static constexpr int kRowStride = kScanWarps * RPT + 4;
  float ik[2][kScanTokensPerRound][kRowStride];
  float q[2][kScanTokensPerRound][kRowStride];
  float v[2][kScanTokensPerRound][kWarp * CPT];
  float red[2][kScanTokensPerRound][kScanWarps][kWarp * CPT];
  float red_n[2][kScanTokensPerRound][kScanWarps];
  float f[2][kScanTokensPerRound];
};

// Thread block = (row, head, DHQK slice, column tile of 32 * CPT). Warp w, lane l own the RPT
// consecutive C rows a0 + w*RPT .. a0 + w*RPT + RPT-1 of the CPT columns tile*32*CPT + l*CPT ..,
// in registers for all of the row's tokens. The n vector goes one of two ways
// (ScanPlan::n_spread): as column dv with v = 1 when the last tile has a free lane for it;
// otherwise spread over the tiles, tile j carrying local rows j*CPT .. j*CPT+CPT-1 of every
// warp, with the tile's share of q·n written to partial column dv + j. Every lane of the warp
// computes the spread rows (per row and token two FMAs and two broadcast loads), which costs
// less than a 17th tile that is all but empty (at dv = 512: 272 blocks per row, which spread
// unevenly over 132 SMs).
//
// Two columns per thread (CPT = 2, where the tiles are full) halve the staging, the k and q
// loads from shared memory and the blocks per C element. On an H100 at the 7B head shape,
// against one column: 3.4 instead of 4.8 ms per layer at 8 rows of 2048 tokens, 0.56 instead
// of 0.61 at one row, 0.20 instead of 0.24 at 64 decode rows.
//
// Occupancy (launch bounds): at RPT 16 the pipelined variant runs 2 blocks per SM (up to 128
// registers; 1 block with more registers was 30% slower at 8 rows), the decode variant 3 (80
// registers; 4 blocks at 64 registers spilled and were 19% slower at 64 rows, 2 were 6%
// slower).
//
// Tokens are staged kScanTokensPerRound at a time into double-buffered shared memory, so one
// barrier per round suffices: round n reads buffer n%2 and writes its per-warp sums to red
// n%2, which warps reduce after the next barrier while buffer (n+1)%2 is being read. The staged
// k is premultiplied by i_act (the CPU computes the same product), so the inner loop is two
// FMAs and a multiply per C element, with k and q read as float4 broadcasts; q·C is summed in
// two chains (even and odd rows) to halve the dependent FMA chain.
// State elements: fp32 as is, bf16 widened to fp32 on load and rounded to nearest on store.
__device__ __forceinline__ float LoadState(const float* p) { return *p; }
__device__ __forceinline__ float LoadState(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ float2 LoadState2(const float* p) {
  return *reinterpret_cast<const float2*>(p);
}
__device__ __forceinline__ float2 LoadState2(const __nv_bfloat16* p) {
  return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(p));
}
__device__ __forceinline__ void StoreState(float* p, float v) { *p = v; }
__device__ __forceinline__ void StoreState(__nv_bfloat16* p, float v) {
  *p = __float2bfloat16_rn(v);
}
__device__ __forceinline__ void StoreState2(float* p, float a, float b) {
  *reinterpret_cast<float2*>(p) = make_float2(a, b);
}
__device__ __forceinline__ void StoreState2(__nv_bfloat16* p, float a, float b) {
  *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(a, b);
}

// S: the state's storage type (float or __nv_bfloat16, StateLayout::type); the arithmetic is
// fp32 either way.
template <int RPT, int CPT, bool kPipelined, typename S>
__global__ void __launch_bounds__(kScanWarps* kWarp,
                                  kPipelined ? (RPT >= 16 ? 2 : 4) : (RPT >= 16 ? 3 : 5))
    MlstmScanKernel(const float* proj, int64_t proj_stride, int64_t q_column, int64_t k_column,
                    int64_t v_column, const float* gates, StepRows rows, StateLayout layout,
                    int32_t splits, int32_t tiles, bool n_spread, int32_t partial_width,
                    bool vector_loads, int64_t block, int64_t num_tokens, float scale, void* states,
                    float* partial) {
  static_assert(CPT == 1 || CPT == 2, "one or two columns per thread");
  constexpr int kRowsPerSplit = kScanWarps * RPT;
  constexpr int kTokens = kScanTokensPerRound;
  extern __shared__ float4 scan_shared[];
  ScanShared<RPT, CPT>& s = *reinterpret_cast<ScanShared<RPT, CPT>*>(scan_shared);

  const int64_t nh = layout.num_heads, dqk = layout.dqk, dv = layout.dv;
  int bx = static_cast<int>(blockIdx.x);
  const int tile = bx % tiles;
  bx /= tiles;
  const int split = bx % splits;
  const int head = bx / splits;
  const int r = static_cast<int>(blockIdx.y);
  // A row of no tokens (the padding rows of a decode bucket) neither reads nor writes its slot
  // nor its read-outs. The whole block returns together, before any barrier.
  if (rows.token_count[r] == 0) return;
  // The state is loaded after the wait as well: a load before it could be served from a line
  // of this SM's L1 that predates the previous step's store (dependent_launch.h, rule 1).
  EnterDependentKernel();
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int64_t col = (int64_t{tile} * kWarp + lane) * CPT;  // this thread's first column
  // With CPT = 2 (only where n is spread and the tiles are full), every column is < dv.
  const bool n_column = CPT == 1 && !n_spread && col == dv;  // column n (v = 1)
  const bool column_ok = col < dv || n_column;
  const int64_t split_a0 = int64_t{split} * kRowsPerSplit;
  const int64_t a0 = split_a0 + warp * RPT;  // this thread's first C row

  S* head_state = static_cast<S*>(states) + rows.slot[r] * layout.slot_stride +
                  (block * nh + head) * layout.head_stride;
  // Column `col` of [C | n]: C[a][col] at col + a * dv, n[a] at n_offset + a.
  const int64_t column_offset = col < dv ? col : layout.n_offset();
  const int64_t row_step = col < dv ? dv : 1;
  float c[RPT][CPT];
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    const int64_t a = a0 + i;
    if constexpr (CPT == 2) {
      const float2 x = a < dqk ? LoadState2(head_state + col + a * dv) : make_float2(0.0f, 0.0f);
      c[i][0] = x.x;
      c[i][1] = x.y;
    } else {
      c[i][0] =
          (column_ok && a < dqk) ? LoadState(head_state + column_offset + a * row_step) : 0.0f;
    }
  }
  // Spread n: local rows tile*CPT + j of this warp. Rows the warp does not have read the zero
  // pad of the staged rows, and rows past dqk have k = q = 0, so both stay 0.
  float n[CPT];
  int n_row[CPT];  // index into s.ik / s.q rows
  bool n_mine[CPT];
#pragma unroll
  for (int j = 0; j < CPT; ++j) {
    const int i = tile * CPT + j;
    n_mine[j] = n_spread && i < RPT && a0 + i < dqk;
    n_row[j] = i < RPT ? warp * RPT + i : kRowsPerSplit;
    n[j] = n_mine[j] ? LoadState(head_state + layout.n_offset() + a0 + i) : 0.0f;
  }
  if (threadIdx.x < 2 * kTokens) {
    const int b = threadIdx.x / kTokens, g = threadIdx.x % kTokens;
    *reinterpret_cast<float4*>(&s.ik[b][g][kRowsPerSplit]) = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    *reinterpret_cast<float4*>(&s.q[b][g][kRowsPerSplit]) = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  }

  const int64_t begin = rows.token_begin[r];
  const int count = rows.token_count[r];

  // Staging: thread idx takes rows 4j..4j+3 (a quad) of token g for k and q, as one float4 when
  // vector_loads (aligned columns and stride, dqk % 4 == 0), else as four guarded loads; warp g
  // takes v of token g at its lane's columns, and f_act. With kPipelined (rows of many tokens)
  // the loads of round n+1 are issued before round n's arithmetic and land in registers, which
  // are written to the other buffer afterwards. Decode steps (one round) skip the prefetch and
  // its register cost; both variants do identical arithmetic.
  constexpr int kQuads = kRowsPerSplit / 4;
  constexpr int kStage = (kTokens * kQuads + kScanWarps * kWarp - 1) / (kScanWarps * kWarp);
  float4 k_reg[kStage], q_reg[kStage];
  float i_reg[kStage], v_reg[CPT], f_reg = 0.0f;
  auto fetch = [&](int t0, int round) {
#pragma unroll
    for (int e = 0; e < kStage; ++e) {
      const int idx = threadIdx.x + e * kScanWarps * kWarp;
      const int g = idx / kQuads, j = (idx % kQuads) * 4;
      const int64_t a = split_a0 + j, t = begin + t0 + g;
      const bool ok = idx < kTokens * kQuads && g < round && a < dqk;
      const float* p = proj + t * proj_stride + head * dqk + a;
      const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (vector_loads) {
        k_reg[e] = ok ? *reinterpret_cast<const float4*>(p + k_column) : zero;
        q_reg[e] = ok ? *reinterpret_cast<const float4*>(p + q_column) : zero;
      } else {
        k_reg[e] = zero;
        q_reg[e] = zero;
        if (ok) {
          k_reg[e].x = p[k_column];
          q_reg[e].x = p[q_column];
          if (a + 1 < dqk) {
            k_reg[e].y = p[k_column + 1];
            q_reg[e].y = p[q_column + 1];
          }
          if (a + 2 < dqk) {
            k_reg[e].z = p[k_column + 2];
            q_reg[e].z = p[q_column + 2];
          }
          if (a + 3 < dqk) {
            k_reg[e].w = p[k_column + 3];
            q_reg[e].w = p[q_column + 3];
          }
        }
      }
      i_reg[e] = ok ? gates[(t * nh + head) * 3 + 1] : 0.0f;
    }
    const int64_t t = begin + t0 + warp;
    const bool token_ok = warp < round;
    const float* v_row = proj + t * proj_stride + v_column + head * dv;
#pragma unroll
    for (int j = 0; j < CPT; ++j) {
      v_reg[j] = !token_ok ? 0.0f : col + j < dv ? v_row[col + j] : (n_column ? 1.0f : 0.0f);
    }
    f_reg = token_ok ? gates[(t * nh + head) * 3] : 0.0f;
  };
  auto stage = [&](int b) {
#pragma unroll
    for (int e = 0; e < kStage; ++e) {
      const int idx = threadIdx.x + e * kScanWarps * kWarp;
      if (idx >= kTokens * kQuads) break;
      const int g = idx / kQuads, j = (idx % kQuads) * 4;
      const float i = i_reg[e];
      *reinterpret_cast<float4*>(&s.ik[b][g][j]) =
          make_float4(i * k_reg[e].x, i * k_reg[e].y, i * k_reg[e].z, i * k_reg[e].w);
      *reinterpret_cast<float4*>(&s.q[b][g][j]) = make_float4(
          q_reg[e].x * scale, q_reg[e].y * scale, q_reg[e].z * scale, q_reg[e].w * scale);
    }
    if constexpr (CPT == 2) {
      *reinterpret_cast<float2*>(&s.v[b][warp][lane * 2]) = make_float2(v_reg[0], v_reg[1]);
    } else {
      s.v[b][warp][lane] = v_reg[0];
    }
    if (lane == 0) s.f[b][warp] = f_reg;
  };

  // One token's update of this thread's C rows (and spread n rows) and its share of the
  // read-outs. Both kernel variants run exactly this.
  auto token = [&](int b, int g) {
    float v[CPT];
    if constexpr (CPT == 2) {
      const float2 x = *reinterpret_cast<const float2*>(&s.v[b][g][lane * 2]);
      v[0] = x.x;
      v[1] = x.y;
    } else {
      v[0] = s.v[b][g][lane];
    }
    const float f_act = s.f[b][g];
    const float* ik_row = &s.ik[b][g][warp * RPT];
    const float* q_row = &s.q[b][g][warp * RPT];
    float p[2][CPT] = {};
    if constexpr (RPT % 4 == 0) {
#pragma unroll
      for (int i = 0; i < RPT; i += 4) {
        const float4 ik4 = *reinterpret_cast<const float4*>(ik_row + i);
        const float4 q4 = *reinterpret_cast<const float4*>(q_row + i);
        const float ik[4] = {ik4.x, ik4.y, ik4.z, ik4.w}, q[4] = {q4.x, q4.y, q4.z, q4.w};
#pragma unroll
        for (int e = 0; e < 4; ++e) {
#pragma unroll
          for (int j = 0; j < CPT; ++j) c[i + e][j] = f_act * c[i + e][j] + ik[e] * v[j];
        }
#pragma unroll
        for (int e = 0; e < 4; ++e) {
#pragma unroll
          for (int j = 0; j < CPT; ++j) p[e % 2][j] += q[e] * c[i + e][j];
        }
      }
    } else {
#pragma unroll
      for (int i = 0; i < RPT; ++i) {
#pragma unroll
        for (int j = 0; j < CPT; ++j) {
          c[i][j] = f_act * c[i][j] + ik_row[i] * v[j];
          p[i % 2][j] += q_row[i] * c[i][j];
        }
      }
    }
    if constexpr (CPT == 2) {
      *reinterpret_cast<float2*>(&s.red[b][g][warp][lane * 2]) =
          make_float2(p[0][0] + p[1][0], p[0][1] + p[1][1]);
    } else {
      s.red[b][g][warp][lane] = p[0][0] + p[1][0];
    }
    if (n_spread) {
      float qn = 0.0f;
#pragma unroll
      for (int j = 0; j < CPT; ++j) {
        n[j] = f_act * n[j] + s.ik[b][g][n_row[j]];
        qn += s.q[b][g][n_row[j]] * n[j];
      }
      s.red_n[b][g][warp] = qn;
    }
  };

  // Warp g sums token g's per-warp values in fixed order (deterministic) and writes them.
  auto reduce = [&](int b, int t0, int round) {
    if (warp >= round) return;
    const int64_t t = begin + t0 + warp;
    float* out = partial + ((split * num_tokens + t) * nh + head) * partial_width;
    if (column_ok) {
      float sum[CPT] = {};
#pragma unroll
      for (int w = 0; w < kScanWarps; ++w) {
#pragma unroll
        for (int j = 0; j < CPT; ++j) sum[j] += s.red[b][warp][w][lane * CPT + j];
      }
#pragma unroll
      for (int j = 0; j < CPT; ++j) out[col + j] = sum[j];  // column dv when this lane is n
    }
    if (n_spread && lane == 0) {
      float sum = 0.0f;
#pragma unroll
      for (int w = 0; w < kScanWarps; ++w) sum += s.red_n[b][warp][w];
      out[dv + tile] = sum;
    }
  };

  int round = min(kTokens, count), b = 0, t0 = 0;
  fetch(0, round);
  stage(0);
  for (;;) {
    __syncthreads();  // buffer b staged; red[b ^ 1] (the previous round) complete
    if (t0 > 0) reduce(b ^ 1, t0 - kTokens, kTokens);  // only the last round can be partial
    const int next_t0 = t0 + kTokens;
    const int next_round = next_t0 < count ? min(kTokens, count - next_t0) : 0;
    if constexpr (kPipelined) {
      if (next_round > 0) fetch(next_t0, next_round);
      if (round == kTokens) {
#pragma unroll
        for (int g = 0; g < kTokens; ++g) token(b, g);
      } else {
        for (int g = 0; g < round; ++g) token(b, g);
      }
    } else {
      for (int g = 0; g < round; ++g) token(b, g);
    }
    if (next_round == 0) break;
    if constexpr (!kPipelined) fetch(next_t0, next_round);
    // Buffer b ^ 1 was last read in the previous round, before the barrier above.
    stage(b ^ 1);
    b ^= 1;
    t0 = next_t0;
    round = next_round;
  }
  __syncthreads();
  reduce(b, t0, round);

  // An empty asm on the base pointer keeps the compiler from computing the store addresses
  // before the token loop and holding them in registers through it (that cost ~30 registers).
  asm volatile("" : "+l"(head_state));
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    const int64_t a = a0 + i;
    if (a >= dqk) continue;
    if constexpr (CPT == 2) {
      StoreState2(head_state + col + a * dv, c[i][0], c[i][1]);
    } else if (column_ok) {
      StoreState(head_state + column_offset + a * row_step, c[i][0]);
    }
  }
#pragma unroll
  for (int j = 0; j < CPT; ++j) {
    if (n_mine[j] && lane == 0)
      StoreState(head_state + layout.n_offset() + a0 + tile * CPT + j, n[j]);
  }
}

}  // namespace

ScanPlan ScanPlan::For(int64_t dqk, int64_t dv) {
  ScanPlan p;
  p.rows_per_thread = 1;
  while (p.rows_per_thread < kMaxRowsPerThread && kScanWarps * p.rows_per_thread < dqk) {
    p.rows_per_thread *= 2;
  }
  p.rows_per_split = kScanWarps * p.rows_per_thread;
  p.splits = static_cast<int32_t>(CeilDiv(dqk, p.rows_per_split));
  // n rides along as column dv when that fits in the last tile's free lanes, or when there are
  // fewer tiles than rows per thread; otherwise it is spread over the tiles (see the kernel).
  p.n_spread = dv % kWarp == 0 && dv / kWarp >= p.rows_per_thread;
  p.columns_per_thread = p.n_spread && dv % (2 * kWarp) == 0 ? 2 : 1;
  const int64_t tile_columns = kWarp * p.columns_per_thread;
  p.column_tiles =
      static_cast<int32_t>(p.n_spread ? dv / tile_columns : CeilDiv(dv + 1, tile_columns));
  p.partial_width = static_cast<int32_t>(dv + (p.n_spread ? p.column_tiles : 1));
  return p;
}

absl::Status LaunchMlstmScan(const float* proj, int64_t proj_stride, int64_t q_column,
                             int64_t k_column, int64_t v_column, const float* gates,
                             const StepRows& rows, const StateLayout& layout, const ScanPlan& plan,
                             int64_t block, int64_t num_tokens, void* states, float* partial,
                             cudaStream_t stream) {
  if (rows.num_rows == 0) return absl::OkStatus();
  if (rows.num_rows > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("mLSTM scan: ", rows.num_rows, " rows in one step (limit 65535)"));
  }
  const dim3 grid(static_cast<unsigned>(layout.num_heads * plan.splits * plan.column_tiles),
                  static_cast<unsigned>(rows.num_rows));
  const dim3 threads(kScanWarps * kWarp);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(layout.dqk)));
  // Rows of more than one round of tokens use the pipelined variant (see the kernel).
  const bool pipelined = rows.max_token_count > kScanTokensPerRound;
  // k and q staged as float4: every (token, head) slice of them 16-byte aligned.
  const bool vector_loads = reinterpret_cast<uintptr_t>(proj) % 16 == 0 && proj_stride % 4 == 0 &&
                            q_column % 4 == 0 && k_column % 4 == 0 && layout.dqk % 4 == 0;
  // Launches one variant; more than 48 KB of shared memory must be allowed per kernel first.
  auto launch = [&](auto kernel, size_t shared_bytes) -> absl::Status {
    if (shared_bytes > 48 * 1024) {
      XLSTM_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(
          kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared_bytes)));
    }
    return LaunchStatus(
        LaunchDependent(kernel, grid, threads, shared_bytes, stream, proj, proj_stride, q_column,
                        k_column, v_column, gates, rows, layout, plan.splits, plan.column_tiles,
                        plan.n_spread, plan.partial_width, vector_loads, block, num_tokens, scale,
                        states, partial),
        "MlstmScanKernel");
  };
  auto launch_typed = [&](auto rpt, auto state) -> absl::Status {
    constexpr int kRpt = decltype(rpt)::value;
    using S = typename decltype(state)::type;
    if (plan.columns_per_thread == 2) {
      constexpr size_t kBytes = sizeof(ScanShared<kRpt, 2>);
      return pipelined ? launch(MlstmScanKernel<kRpt, 2, true, S>, kBytes)
                       : launch(MlstmScanKernel<kRpt, 2, false, S>, kBytes);
    }
    constexpr size_t kBytes = sizeof(ScanShared<kRpt, 1>);
    return pipelined ? launch(MlstmScanKernel<kRpt, 1, true, S>, kBytes)
                     : launch(MlstmScanKernel<kRpt, 1, false, S>, kBytes);
  };
  auto launch_rpt = [&](auto rpt) -> absl::Status {
    return layout.type == ActType::kBF16 ? launch_typed(rpt, TypeTag<__nv_bfloat16>())
                                         : launch_typed(rpt, TypeTag<float>());
  };
  if (plan.columns_per_thread != 1 && plan.columns_per_thread != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("mLSTM scan: unsupported columns_per_thread ", plan.columns_per_thread));
  }
  switch (plan.rows_per_thread) {
    case 1:
      XLSTM_RETURN_IF_ERROR(launch_rpt(std::integral_constant<int, 1>()));
      break;
    case 2:
      XLSTM_RETURN_IF_ERROR(launch_rpt(std::integral_constant<int, 2>()));
      break;
    case 4:
      XLSTM_RETURN_IF_ERROR(launch_rpt(std::integral_constant<int, 4>()));
      break;
    case 8:
      XLSTM_RETURN_IF_ERROR(launch_rpt(std::integral_constant<int, 8>()));
      break;
    case 16:
      XLSTM_RETURN_IF_ERROR(launch_rpt(std::integral_constant<int, 16>()));
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("mLSTM scan: unsupported rows_per_thread ", plan.rows_per_thread));
  }
  return absl::OkStatus();
}

}  // namespace xlstm::engine::cuda
