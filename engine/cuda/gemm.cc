#include "engine/cuda/gemm.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cublas_loader.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/gemv_bf16.h"
#include "common/status_macros.h"

namespace xlstm::engine::cuda {
namespace {

// cuBLAS's own recommendation for Hopper is 32 MiB; allocating it up front keeps the step loop
// free of allocations.
constexpr size_t kWorkspaceBytes = size_t{32} << 20;

bool FitsInt(int64_t v) { return v >= 0 && v <= std::numeric_limits<int>::max(); }

}  // namespace

absl::StatusOr<std::unique_ptr<Gemm>> Gemm::Create(cudaStream_t stream) {
  XLSTM_ASSIGN_OR_RETURN(const CublasFunctions* api, CublasApi());
  std::unique_ptr<Gemm> gemm(new Gemm());
  gemm->api_ = api;
  gemm->stream_ = stream;
  XLSTM_CUBLAS_RETURN_IF_ERROR(api->create(&gemm->handle_));
  XLSTM_CUBLAS_RETURN_IF_ERROR(api->set_stream(gemm->handle_, stream));
  // Plain fp32 arithmetic for fp32 operands (no TF32 rounding); bf16 uses tensor cores anyway.
  XLSTM_CUBLAS_RETURN_IF_ERROR(api->set_math_mode(gemm->handle_, CUBLAS_DEFAULT_MATH));
  XLSTM_ASSIGN_OR_RETURN(gemm->workspace_,
                         DeviceBuffer::Allocate(kWorkspaceBytes, "the cuBLAS workspace"));
  XLSTM_CUBLAS_RETURN_IF_ERROR(
      api->set_workspace(gemm->handle_, gemm->workspace_.data(), gemm->workspace_.bytes()));
  return gemm;
}

Gemm::~Gemm() {
  if (handle_ != nullptr) api_->destroy(handle_);
}

absl::Status Gemm::EnableBf16x2(int64_t max_in, int64_t max_out) {
  if (max_in < 1 || max_out < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("bf16x2 GEMM capacity: max_in ", max_in, ", max_out ", max_out));
  }
  XLSTM_ASSIGN_OR_RETURN(
      pairs_, DeviceBuffer::Allocate(2 * kBf16x2Rows * max_in * 2, "bf16x2 activation pairs"));
  XLSTM_ASSIGN_OR_RETURN(
      products_, DeviceBuffer::Allocate(2 * kBf16x2Rows * max_out * 4, "bf16x2 partial products"));
  max_in_ = max_in;
  max_out_ = max_out;
  return absl::OkStatus();
}

absl::Status Gemm::Linear(const DeviceMatrix& w, const void* x, int64_t rows, float* y,
                          int64_t y_stride, bool accumulate) {
  if (!bf16x2() || w.type != ActType::kBF16) return Product(w, x, rows, y, y_stride, accumulate);
  if (w.in_features > max_in_ || w.out_features > max_out_) {
    return absl::InvalidArgumentError(absl::StrCat("bf16x2 GEMM: weight [", w.out_features, ", ",
                                                   w.in_features, "] exceeds the capacity [",
                                                   max_out_, ", ", max_in_, "]"));
  }
  // Each piece: split x into [hi; lo] rows, one GEMM over both (the weights are read once),
  // then y (+)= hi-product + lo-product.
  const float* xf = static_cast<const float*>(x);
  for (int64_t begin = 0; begin < rows; begin += kBf16x2Rows) {
    const int64_t n = std::min(kBf16x2Rows, rows - begin);
    XLSTM_RETURN_IF_ERROR(LaunchSplitToBf16Pairs(xf + begin * w.in_features, n, w.in_features,
                                                 pairs_.data(), stream_));
    XLSTM_RETURN_IF_ERROR(
        Product(w, pairs_.data(), 2 * n, products_.as<float>(), w.out_features, false));
    XLSTM_RETURN_IF_ERROR(LaunchAddPairProducts(products_.as<float>(), n, w.out_features,
                                                y + begin * y_stride, y_stride, accumulate,
                                                stream_));
  }
  return absl::OkStatus();
}

absl::Status Gemm::Product(const DeviceMatrix& w, const void* x, int64_t rows, float* y,
                           int64_t y_stride, bool accumulate) {
  if (rows == 0) return absl::OkStatus();
  if (!FitsInt(rows) || !FitsInt(w.out_features) || !FitsInt(w.in_features) || !FitsInt(y_stride) ||
      y_stride < w.out_features) {
    return absl::InvalidArgumentError(absl::StrCat("GEMM shape out of range: rows ", rows, ", out ",
                                                   w.out_features, ", in ", w.in_features,
                                                   ", y stride ", y_stride));
  }
  if (small_batch_gemv_ && w.type == ActType::kBF16 && rows <= kGemvRouteRows &&
      GemvBf16Supports(w.data, x, rows, w.in_features)) {
    return LaunchGemvBf16(w.data, w.out_features, w.in_features, x, rows, y, y_stride, accumulate,
                          stream_);
  }
  // Column-major view: Yᵀ [out, rows] = W [out, in] (stored as a column-major [in, out], hence
  // OP_T) times Xᵀ [in, rows].
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  const cudaDataType_t type = w.type == ActType::kBF16 ? CUDA_R_16BF : CUDA_R_32F;
  XLSTM_CUBLAS_RETURN_IF_ERROR(api_->gemm_ex(
      handle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(w.out_features), static_cast<int>(rows),
      static_cast<int>(w.in_features), &alpha, w.data, type, static_cast<int>(w.in_features), x,
      type, static_cast<int>(w.in_features), &beta, y, CUDA_R_32F, static_cast<int>(y_stride),
      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  return absl::OkStatus();
}

}  // namespace xlstm::engine::cuda
