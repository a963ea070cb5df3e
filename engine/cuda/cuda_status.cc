#include "engine/cuda/cuda_status.h"

#include "absl/strings/str_cat.h"

namespace xlstm::engine::cuda {

absl::Status CudaStatus(cudaError_t error, const char* expression, const char* file, int line) {
  return absl::InternalError(absl::StrCat("CUDA error ", cudaGetErrorName(error), " (",
                                          cudaGetErrorString(error), ") in ", expression, " at ",
                                          file, ":", line));
}

absl::Status CublasStatus(cublasStatus_t status, const char* expression, const char* file,
                          int line) {
  return absl::InternalError(absl::StrCat("cuBLAS error ", cublasGetStatusName(status), " (",
                                          cublasGetStatusString(status), ") in ", expression,
                                          " at ", file, ":", line));
}

}  // namespace xlstm::engine::cuda
