#include "engine/cpu/matmul.h"

#include <cblas.h>

#include "engine/util/status_macros.h"

namespace xlstm::engine {

void Linear(const float* x, int64_t rows, const FloatTensor& weight, const FloatTensor& bias,
            float* y) {
  XLSTM_CHECK(weight.shape.size() == 2);
  const int64_t out = weight.shape[0];
  const int64_t in = weight.shape[1];
  if (rows == 0 || out == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(rows),
              static_cast<blasint>(out), static_cast<blasint>(in), 1.0f, x,
              static_cast<blasint>(in), weight.data, static_cast<blasint>(in), 0.0f, y,
              static_cast<blasint>(out));
  if (bias.present()) {
    for (int64_t r = 0; r < rows; ++r) {
      float* row = y + r * out;
      for (int64_t j = 0; j < out; ++j) row[j] += bias.data[j];
    }
  }
}

}  // namespace xlstm::engine
