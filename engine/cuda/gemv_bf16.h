// Matrix-vector products for decode-sized batches: y[r, :] (+)= W · x[r, :] for up to
// kGemvMaxRows rows, W bf16 [out, in] row-major (HF's layout), x bf16 [rows, in], fp32
// accumulation and output. Gemm::Linear routes bf16 products of one row here
// (Gemm::kGemvRouteRows).
//
// Why: a decode step of one row reads every weight once and does little arithmetic, so it runs
// at the speed weights stream from memory, and for the small models at the speed of short
// kernels. One warp per output row streams its weight row with 16-byte loads, four in flight per
// lane, and reduces across lanes with shuffles. Measured on the H200 (xlstm-layer-profile, one
// row): on the 162M shape the four block products take 33 us per layer with cuBLAS and 14 us
// with this kernel; on the 7B shape 119 vs 114 us (cuBLAS already streams those at ~3.4 TB/s).
// At 8 rows it was 3.5x slower than cuBLAS (every 16-byte weight chunk costs each lane 8 loads of
// x and 64 conversions and FMAs: instruction-bound), hence one row only.
//
// Batch invariance: each row's result depends only on that row and W (each lane sums its
// 8-element chunks in increasing order, then a fixed shuffle tree), so it is the same bits for
// any batch of 1..kGemvMaxRows rows.
//
// Threading: stateless; work is enqueued on `stream`.
#ifndef XLSTM_ENGINE_CUDA_GEMV_BF16_H_
#define XLSTM_ENGINE_CUDA_GEMV_BF16_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"

namespace xlstm::engine::cuda {

inline constexpr int64_t kGemvMaxRows = 8;

// Whether LaunchGemvBf16 serves this product: 1..kGemvMaxRows rows, in % 8 == 0 and w, x
// 16-byte aligned (rows of 8 bf16 are loaded as one 16-byte vector).
bool GemvBf16Supports(const void* w, const void* x, int64_t rows, int64_t in);

// y[r, o] = (accumulate ? y[r, o] : 0) + sum_k w[o, k] * x[r, k] for r < rows, o < out; y has
// row stride y_stride floats. InvalidArgument when !GemvBf16Supports.
absl::Status LaunchGemvBf16(const void* w, int64_t out, int64_t in, const void* x, int64_t rows,
                            float* y, int64_t y_stride, bool accumulate, cudaStream_t stream);

}  // namespace xlstm::engine::cuda

#endif  // XLSTM_ENGINE_CUDA_GEMV_BF16_H_
