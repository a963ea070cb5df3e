// The CPU backend's one dense-projection primitive, y = x Wᵀ + b, backed by BLAS (OpenBLAS).
#ifndef XLSTM_ENGINE_CPU_MATMUL_H_
#define XLSTM_ENGINE_CPU_MATMUL_H_

#include <cstdint>

#include "engine/weights/model_weights.h"

namespace xlstm::engine {

// y[rows, out] = x[rows, in] · weight[out, in]ᵀ (+ bias[out] when present). `x` and `y` are
// row-major and must not overlap. Each output element is a dot product over `in` whose
// summation order does not depend on `rows`, so a sequence's results do not depend on what else
// is in the batch (checked by the batch-invariance tests).
void Linear(const float* x, int64_t rows, const FloatTensor& weight, const FloatTensor& bias,
            float* y);

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_CPU_MATMUL_H_
