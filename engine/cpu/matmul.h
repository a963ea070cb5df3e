// The CPU backend's one dense-projection primitive, y = x Wᵀ + b.
//
// Why not BLAS: a sequence's result must not depend on what else shares its batch (the server
// promises that a request's tokens are the same alone or among others, and the scheduler
// splits prompts into chunks that depend on load). BLAS sgemm gives no such guarantee, and
// OpenBLAS 0.3.21 indeed returned different bits for the same row at different batch sizes
// (RecurrentInvariantsTest.BatchOfDifferentLengthsEqualsOneAtATimeBitForBit failed with it).
// Here every output element is one dot product with a fixed summation order, computed by one
// thread, so results are independent of the row count, the row's position and the number of
// threads. Rows share weight tiles in cache, so prefill still streams each weight once per tile.
#ifndef XLSTM_ENGINE_CPU_MATMUL_H_
#define XLSTM_ENGINE_CPU_MATMUL_H_

#include <cstdint>

#include "engine/weights/model_weights.h"

namespace xlstm::engine {

// y[rows, out] = x[rows, in] · weight[out, in]ᵀ (+ bias[out] when present). `x` and `y` are
// row-major and must not overlap.
void Linear(const float* x, int64_t rows, const FloatTensor& weight, const FloatTensor& bias,
            float* y);

// The fixed-order dot product Linear() uses: 8 interleaved partial sums, then a fixed tree.
float Dot(const float* a, const float* b, int64_t n);

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_CPU_MATMUL_H_
