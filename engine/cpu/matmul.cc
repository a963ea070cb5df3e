#include "engine/cpu/matmul.h"

#include <algorithm>

#include "common/status_macros.h"

namespace xlstm::engine {
namespace {

// Output features per tile: a tile's weights (kTileBytes) stay in cache while every row of x
// passes over them.
constexpr int64_t kTileBytes = 256 * 1024;
// Multiply-adds below which a product runs on the calling thread alone (about 0.1 ms of work):
// a parallel region costs a team wake-up and a barrier, and on a loaded machine a barrier can
// wait a whole scheduler slice for a descheduled team thread, which made small models decode
// at a few tokens per second while other processes competed for the cores.
constexpr int64_t kParallelMinWork = int64_t{1} << 19;

}  // namespace

float Dot(const float* a, const float* b, int64_t n) {
  // Eight independent accumulators let the compiler vectorize without reassociating floats
  // (no -ffast-math), and fix the order of every addition.
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  }
  for (int j = 0; i < n; ++i, ++j) acc[j] += a[i] * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

void Linear(const float* x, int64_t rows, const FloatTensor& weight, const FloatTensor& bias,
            float* y) {
  XLSTM_CHECK(weight.shape.size() == 2);
  const int64_t out = weight.shape[0];
  const int64_t in = weight.shape[1];
  if (rows == 0 || out == 0) return;
  const int64_t tile = std::max<int64_t>(1, kTileBytes / std::max<int64_t>(1, in * 4));
  const int64_t num_tiles = (out + tile - 1) / tile;
  const bool parallel = num_tiles > 1 && rows * out * in >= kParallelMinWork;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t t = 0; t < num_tiles; ++t) {
    const int64_t begin = t * tile;
    const int64_t end = std::min(out, begin + tile);
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * in;
      float* yr = y + r * out;
      for (int64_t j = begin; j < end; ++j) {
        yr[j] = Dot(xr, weight.data + j * in, in) + (bias.present() ? bias.data[j] : 0.0f);
      }
    }
  }
}

}  // namespace xlstm::engine
