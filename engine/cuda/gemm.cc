#include "engine/cuda/gemm.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cublas_loader.h"
#include "engine/cuda/cuda_status.h"
#include "engine/util/status_macros.h"

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

absl::Status Gemm::Linear(const DeviceMatrix& w, const void* x, int64_t rows, float* y,
                          int64_t y_stride, bool accumulate) {
  if (rows == 0) return absl::OkStatus();
  if (!FitsInt(rows) || !FitsInt(w.out_features) || !FitsInt(w.in_features) || !FitsInt(y_stride) ||
      y_stride < w.out_features) {
    return absl::InvalidArgumentError(absl::StrCat("GEMM shape out of range: rows ", rows, ", out ",
                                                   w.out_features, ", in ", w.in_features,
                                                   ", y stride ", y_stride));
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
