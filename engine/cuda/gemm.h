// The one wrapper through which the engine runs matrix products on the GPU (cuBLAS, loaded at
// run time: see cublas_loader.h). Every
// projection of the model is a Linear: y[rows, out] = x[rows, in] · Wᵀ, W stored as HF keeps it
// ([out, in] row-major), operands in bf16 or fp32, accumulation and output in fp32.
//
// Precision: bf16 operands use tensor cores with fp32 accumulation; fp32 operands use plain
// fp32 arithmetic (TF32 is disabled) so the fp32-weights mode can be compared with the CPU
// reference at 1e-4. With EnableBf16x2(), bf16 weights take fp32 activations split into
// bf16 pairs (LaunchSplitToBf16Pairs in kernels.h): bf16 weights with ~16-bit activations.
//
// Threading: one Gemm per stream, used by one thread.
#ifndef XLSTM_ENGINE_CUDA_GEMM_H_
#define XLSTM_ENGINE_CUDA_GEMM_H_

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/kernels.h"

namespace xlstm::engine::cuda {

struct CublasFunctions;  // cublas_loader.h

// A weight matrix on the device: [out_features, in_features] row-major.
struct DeviceMatrix {
  const void* data = nullptr;
  int64_t out_features = 0;
  int64_t in_features = 0;
  ActType type = ActType::kBF16;
};

class Gemm {
 public:
  // Binds a cuBLAS handle to `stream` with a preallocated workspace, so no call allocates.
  static absl::StatusOr<std::unique_ptr<Gemm>> Create(cudaStream_t stream);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // From now on, Linear with bf16 weights takes fp32 x and runs it as bf16 pairs, in pieces of
  // up to kBf16x2Rows rows. Allocates the pair buffers for weights of up to max_in inputs and
  // max_out outputs (nothing is allocated per call).
  absl::Status EnableBf16x2(int64_t max_in, int64_t max_out);
  bool bf16x2() const { return max_in_ > 0; }
  // Bytes allocated by EnableBf16x2.
  int64_t bf16x2_bytes() const { return static_cast<int64_t>(pairs_.bytes() + products_.bytes()); }
  static constexpr int64_t kBf16x2Rows = 256;

  // From now on, bf16 products of up to kGemvRouteRows rows run LaunchGemvBf16 (gemv_bf16.h)
  // instead of cuBLAS. One row only: measured faster than cuBLAS there, slower from 2 rows on.
  void EnableSmallBatchGemv() { small_batch_gemv_ = true; }
  static constexpr int64_t kGemvRouteRows = 1;

  // y = x · Wᵀ (accumulate: y += x · Wᵀ, which fuses a residual add). x is [rows, in] with row
  // stride in_features, of w.type (fp32 for bf16 weights after EnableBf16x2); y is [rows, out]
  // fp32 with row stride y_stride (>= out_features).
  absl::Status Linear(const DeviceMatrix& w, const void* x, int64_t rows, float* y,
                      int64_t y_stride, bool accumulate);

 private:
  Gemm() = default;
  // One cuBLAS call: y = x · Wᵀ (+ y), operands of w.type.
  absl::Status Product(const DeviceMatrix& w, const void* x, int64_t rows, float* y,
                       int64_t y_stride, bool accumulate);

  cudaStream_t stream_ = nullptr;
  int64_t max_in_ = 0, max_out_ = 0;  // bf16x2 capacity; 0: off
  bool small_batch_gemv_ = false;
  DeviceBuffer pairs_;     // [2 * kBf16x2Rows, max_in] bf16: hi rows, then lo rows
  DeviceBuffer products_;  // [2 * kBf16x2Rows, max_out] fp32

  const CublasFunctions* api_ = nullptr;  // cuBLAS, loaded at run time
  cublasHandle_t handle_ = nullptr;
  DeviceBuffer workspace_;
};

}  // namespace xlstm::engine::cuda

#endif  // XLSTM_ENGINE_CUDA_GEMM_H_
