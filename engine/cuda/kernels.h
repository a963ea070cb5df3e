// Launchers of the CUDA kernels of the xLSTM forward pass (docs/xlstm-model.md §3-§4). Each
// computes what the float32 CPU reference (engine/cpu/cpu_model.cc) computes, on packed tokens:
// a step feeds T tokens from several sequences ("rows") as one [T, ...] matrix, row r owning
// tokens [token_begin[r], token_begin[r] + token_count[r]).
//
// Activations that feed a GEMM ("Act") are bf16 or fp32 (ActType); everything else (residual
// stream, GEMM outputs, gates, state) is fp32. All pointers are device pointers unless named
// host_*. Launchers only enqueue on `stream`; they return the launch status.
//
// Threading: stateless; callers serialize work on a stream.
#ifndef XLSTM_ENGINE_CUDA_KERNELS_H_
#define XLSTM_ENGINE_CUDA_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"

// Small accessors shared by host code and kernels.
#ifdef __CUDACC__
#define XLSTM_HOST_DEVICE __host__ __device__
#else
#define XLSTM_HOST_DEVICE
#endif

namespace xlstm::engine::cuda {

// Element type of GEMM operands: weights and the activations multiplied with them.
enum class ActType { kBF16, kF32 };
inline size_t ActSize(ActType t) { return t == ActType::kBF16 ? 2 : 4; }

// Where each (slot, block, head)'s recurrent state lives in the slot pool, nested slot, then
// block, then head (padding unspecified). Per head: C [dqk, dv] row-major, then n [dqk], then
// m, padded to head_stride elements (128 bytes a multiple, so every head's C starts 128-byte
// aligned). C and n are stored as `type`; m is always one fp32 (for a bf16 state it takes two
// elements, at an even index so that it is 4-byte aligned). Offsets and strides count elements
// of `type`.
//
// A bf16 state halves the state traffic of decode at large batches (one read and one write of
// C per layer per step); the kernels do their arithmetic in fp32 registers and round to bf16
// only when they store C and n.
struct StateLayout {
  int64_t num_blocks = 0, num_heads = 0, dqk = 0, dv = 0;
  ActType type = ActType::kF32;  // storage of C and n
  int64_t head_stride = 0;       // elements
  int64_t slot_stride = 0;       // elements: num_blocks * num_heads * head_stride
  int64_t m_index = 0;           // element index of m within a head

  static StateLayout For(int64_t num_blocks, int64_t num_heads, int64_t dqk, int64_t dv,
                         ActType type = ActType::kF32);
  XLSTM_HOST_DEVICE int64_t n_offset() const { return dqk * dv; }
  XLSTM_HOST_DEVICE int64_t m_offset() const { return m_index; }
  XLSTM_HOST_DEVICE int64_t element_bytes() const { return type == ActType::kBF16 ? 2 : 4; }
  XLSTM_HOST_DEVICE int64_t slot_bytes() const { return slot_stride * element_bytes(); }
};

// The rows of a step, as device arrays of length num_rows. Slots must be distinct (the scan
// updates each row's state in place), except among rows of token_count 0: those are skipped by
// the gates and the scan (their slot is neither read nor written, their gates and read-outs are
// left as they were), so that a decode graph can pad its batch with rows that cost no state
// traffic. Their tokens still pass through the row-wise kernels and the GEMMs, whose outputs
// for them nobody reads.
struct StepRows {
  const int32_t* slot = nullptr;
  const int32_t* token_begin = nullptr;
  const int32_t* token_count = nullptr;
  int32_t num_rows = 0;
  int32_t max_token_count = 0;  // host-side maximum of token_count (picks the scan variant)
};

// How the mLSTM read-out is split over DHQK: each head's rows are cut into `splits` slices of
// `rows_per_split`, each slice summed by its own thread blocks (one per column tile); the
// slices are added in fixed order afterwards. Chosen from the model's shape only, never from
// the batch, so a sequence's result does not depend on what else is in the step.
//
// The scan's read-outs for (split, token t, head h) are partial_width floats at
// partial[((split * num_tokens + t) * num_heads + h) * partial_width]: columns 0..dv-1 are that
// split's share of num, columns dv..partial_width-1 shares of qn, to be added up. When n rides
// along as column dv of the last tile, partial_width = dv + 1. When it is spread (n_spread:
// dv % 32 == 0 and dv / 32 >= rows_per_thread), tile j computes the n rows w * rows_per_thread
// + j * columns_per_thread + c (w < 8 warps, c < columns_per_thread, rows past rows_per_thread
// skipped) of each split and writes their share of qn to column dv + j, partial_width = dv +
// column_tiles.
struct ScanPlan {
  int32_t rows_per_thread = 0;     // C rows each thread keeps in registers (1, 2, 4, 8 or 16)
  int32_t rows_per_split = 0;      // 8 warps * rows_per_thread
  int32_t splits = 0;              // ceil(dqk / rows_per_split)
  bool n_spread = false;           // n spread over the column tiles (else column dv)
  int32_t columns_per_thread = 0;  // C columns per thread: 2 when n_spread and dv % 64 == 0
  // Tiles of 32 * columns_per_thread columns: dv / (32 * columns_per_thread) when n_spread,
  // else ceil((dv + 1) / 32).
  int32_t column_tiles = 0;
  int32_t partial_width = 0;  // n_spread ? dv + column_tiles : dv + 1

  static ScanPlan For(int64_t dqk, int64_t dv);
};

// x[t, :] = table[tokens[t], :] as fp32.
absl::Status LaunchEmbeddingGather(const int32_t* tokens, int64_t num_tokens, const void* table,
                                   ActType table_type, int64_t dim, float* x, cudaStream_t stream);

// out[r, :] = x[r, :] * rsqrt(mean(x[r]²) + eps) * weight (+ bias); bias may be null.
absl::Status LaunchRmsNorm(const float* x, int64_t rows, int64_t dim, const float* weight,
                           const float* bias, float eps, void* out, ActType out_type,
                           cudaStream_t stream);

// y[r, c] += bias[c] for c < cols, rows with stride `row_stride` floats.
absl::Status LaunchAddBias(float* y, int64_t rows, int64_t cols, int64_t row_stride,
                           const float* bias, cudaStream_t stream);

// Input and forget gates of one block for every token (docs §4.2 scalar part). Reads the gate
// pre-activations proj[t, i_column + h] and proj[t, f_column + h] (row stride proj_stride),
// adds the biases, soft-caps them (gate_soft_cap <= 0: no cap), and runs the stabilizer
// recurrence of each row's (slot, head) from the m stored in the pool. Writes per token and
// head gates[(t * num_heads + h) * 3 + {0, 1, 2}] = {f_act, i_act, m_t} and stores the final m
// back into the pool. `states` is the pool, laid out by `layout`.
absl::Status LaunchMlstmGates(const float* proj, int64_t proj_stride, int64_t i_column,
                              int64_t f_column, const float* i_bias, const float* f_bias,
                              float gate_soft_cap, const StepRows& rows, const StateLayout& layout,
                              int64_t block, void* states, float* gates, cudaStream_t stream);

// The matrix part of the step for every token, with C and n kept on chip across a row's tokens:
// C = f_act C + i_act k vᵀ, n = f_act n + i_act k, and the unnormalized read-outs
// num = (q/sqrt(dqk))ᵀ C (dv values) and qn = (q/sqrt(dqk))·n, written as partial sums laid out
// as ScanPlan describes (plan.splits * num_tokens * num_heads * plan.partial_width floats).
// q, k, v are read from proj at q_column/k_column/v_column (row stride proj_stride).
absl::Status LaunchMlstmScan(const float* proj, int64_t proj_stride, int64_t q_column,
                             int64_t k_column, int64_t v_column, const float* gates,
                             const StepRows& rows, const StateLayout& layout, const ScanPlan& plan,
                             int64_t block, int64_t num_tokens, void* states, float* partial,
                             cudaStream_t stream);

// Per token and head: h = num / (max(|qn|, exp(-m_t)) + eps) from the summed partials (laid
// out by `plan`, as LaunchMlstmScan wrote them), then LayerNorm over dv (biased variance,
// norm_eps) * weight (+ bias), times sigmoid(o) with o read from proj at o_column. Writes
// out[t, h * dv + d] (row stride num_heads * dv).
absl::Status LaunchHeadNormGate(const float* partial, const ScanPlan& plan, const float* gates,
                                const float* proj, int64_t proj_stride, int64_t o_column,
                                const float* weight, const float* bias, int64_t num_tokens,
                                int64_t num_heads, int64_t dv, float eps, float norm_eps, void* out,
                                ActType out_type, cudaStream_t stream);

// SwiGLU: out[t, c] = silu(up[t, c] + bg[c]) * (up[t, ffn + c] + bu[c]) for c < ffn, where up
// is [T, 2 * ffn] = [gate | up] and the biases may be null.
absl::Status LaunchSwiGlu(const float* up, int64_t num_tokens, int64_t ffn, const float* gate_bias,
                          const float* up_bias, void* out, ActType out_type, cudaStream_t stream);

// out[i, :] = x[rows[i], :] for i < num_rows.
absl::Status LaunchGatherRows(const float* x, const int32_t* rows, int64_t num_rows, int64_t dim,
                              float* out, cudaStream_t stream);

// v = cap * tanh(v / cap) for count values (cap <= 0: nothing to do).
absl::Status LaunchSoftCap(float* values, int64_t count, float cap, cudaStream_t stream);

// ids[r] = the first index of the maximum of logits[r, :vocab] (greedy decoding on device).
absl::Status LaunchArgmax(const float* logits, int64_t rows, int64_t vocab, int32_t* ids,
                          cudaStream_t stream);

// Sets `count` floats starting at `dst` to `value`.
absl::Status LaunchFill(float* dst, int64_t count, float value, cudaStream_t stream);

// Deterministic pseudo-random fill for benchmark weights (no files): values[i] =
// mean + stddev * N(0,1) from a counter-based hash of (seed, i), written as `type`.
absl::Status LaunchRandomNormal(void* values, ActType type, int64_t count, uint64_t seed,
                                float mean, float stddev, cudaStream_t stream);

// bf16x2 activations (Gemm::EnableBf16x2): a float32 activation x is carried into a bf16 GEMM as
// the pair hi = bf16(x), lo = bf16(x - hi), so that W·x = W·hi + W·lo keeps about 16 significant
// bits of x instead of bf16's 8. Weights stay bf16 (their memory and bandwidth are unchanged); only
// the activation side of each product doubles, which costs little while the GEMM is bound by
// reading weights (decode) and doubles the tensor-core work of large prefills.
//
// Why: bf16 rounding of activations is what moves greedy tokens on the HF fixtures; weights
// rounded to bf16 with exact activations reproduce HF fp32's greedy tokens on all of them
// (tools/gpu/bf16_error_study.py, tests/bench/NOTES.md).
//
// pairs[r, :] = bf16(x[r, :]) and pairs[rows + r, :] = bf16(x[r, :] - hi) for r < rows, both
// [cols] with row stride cols (x's row stride is cols too). Round to nearest even.
absl::Status LaunchSplitToBf16Pairs(const float* x, int64_t rows, int64_t cols, void* pairs,
                                    cudaStream_t stream);

// y[r, c] = (accumulate ? y[r, c] : 0) + (products[r, c] + products[rows + r, c]) for c < cols,
// y with row stride y_stride, products [2 * rows, cols] with row stride cols.
absl::Status LaunchAddPairProducts(const float* products, int64_t rows, int64_t cols, float* y,
                                   int64_t y_stride, bool accumulate, cudaStream_t stream);

// dst[i] = src[i] converted from fp32 to `type`.
absl::Status LaunchConvertF32(const float* src, int64_t count, void* dst, ActType type,
                              cudaStream_t stream);

}  // namespace xlstm::engine::cuda

#endif  // XLSTM_ENGINE_CUDA_KERNELS_H_
