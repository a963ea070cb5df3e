// bf16x2 activations: a float32 activation x is carried into a bf16 GEMM as the pair
// hi = bf16(x), lo = bf16(x - hi), so that W·x = W·hi + W·lo keeps about 16 significant bits of
// x instead of bf16's 8. Weights stay bf16 (their memory and bandwidth are unchanged); only the
// activation side of each product doubles, which costs little while the GEMM is bound by
// reading weights (decode) and doubles the tensor-core work of large prefills.
//
// Why: bf16 rounding of activations is what moves greedy tokens on the HF fixtures; weights
// rounded to bf16 with exact activations reproduce HF fp32's greedy tokens on all of them
// (tools/gpu/bf16_error_study.py, tests/bench/NOTES.md).
//
// Threading: stateless launchers; callers serialize work on a stream.
#ifndef XLSTM_ENGINE_CUDA_SPLIT_BF16_H_
#define XLSTM_ENGINE_CUDA_SPLIT_BF16_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"

namespace xlstm::engine::cuda {

// pairs[r, :] = bf16(x[r, :]) and pairs[rows + r, :] = bf16(x[r, :] - hi) for r < rows, both
// [cols] with row stride cols (x's row stride is cols too). Round to nearest even.
absl::Status LaunchSplitToBf16Pairs(const float* x, int64_t rows, int64_t cols, void* pairs,
                                    cudaStream_t stream);

// y[r, c] = (accumulate ? y[r, c] : 0) + (products[r, c] + products[rows + r, c]) for c < cols,
// y with row stride y_stride, products [2 * rows, cols] with row stride cols.
absl::Status LaunchAddPairProducts(const float* products, int64_t rows, int64_t cols, float* y,
                                   int64_t y_stride, bool accumulate, cudaStream_t stream);

}  // namespace xlstm::engine::cuda

#endif  // XLSTM_ENGINE_CUDA_SPLIT_BF16_H_
