#include "engine/cuda/cuda_status.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cublas_loader.h"

namespace xlstm::engine::cuda {

absl::Status CudaStatus(cudaError_t error, const char* expression, const char* file, int line) {
  return absl::InternalError(absl::StrCat("CUDA error ", cudaGetErrorName(error), " (",
                                          cudaGetErrorString(error), ") in ", expression, " at ",
                                          file, ":", line));
}

absl::Status LaunchStatus(const char* kernel) {
  const cudaError_t error = cudaGetLastError();
  if (error == cudaSuccess) return absl::OkStatus();
  return CudaStatus(error, kernel, __FILE__, __LINE__);
}

absl::Status LaunchStatus(cudaError_t launch_error, const char* kernel) {
  if (launch_error == cudaSuccess) return LaunchStatus(kernel);
  static_cast<void>(cudaGetLastError());
  return CudaStatus(launch_error, kernel, __FILE__, __LINE__);
}

absl::Status CublasStatus(cublasStatus_t status, const char* expression, const char* file,
                          int line) {
  absl::StatusOr<const CublasFunctions*> api = CublasApi();
  const std::string name =
      api.ok() ? (*api)->status_name(status) : absl::StrCat(static_cast<int>(status));
  const std::string text = api.ok() ? (*api)->status_string(status) : "cuBLAS not loaded";
  return absl::InternalError(absl::StrCat("cuBLAS error ", name, " (", text, ") in ", expression,
                                          " at ", file, ":", line));
}

}  // namespace xlstm::engine::cuda
