// absl::Status from CUDA runtime and cuBLAS results. Every CUDA and cuBLAS call in the engine
// goes through these macros, so a failure carries the call, the file and the line.
#ifndef XLSTM_ENGINE_CUDA_CUDA_STATUS_H_
#define XLSTM_ENGINE_CUDA_CUDA_STATUS_H_

#include <cublas_api.h>
#include <cuda_runtime_api.h>

#include "absl/status/status.h"

namespace xlstm::engine::cuda {

absl::Status CudaStatus(cudaError_t error, const char* expression, const char* file, int line);
absl::Status CublasStatus(cublasStatus_t status, const char* expression, const char* file,
                          int line);
// The status of the last kernel launch on the calling thread (cudaGetLastError), naming
// `kernel`. Every launcher returns it right after its launch.
absl::Status LaunchStatus(const char* kernel);
// The same for a launch that returned `launch_error` itself (cudaLaunchKernelEx): that error if
// any (the last error is cleared), else LaunchStatus(kernel).
absl::Status LaunchStatus(cudaError_t launch_error, const char* kernel);

}  // namespace xlstm::engine::cuda

#define XLSTM_CUDA_RETURN_IF_ERROR(expr)                                                      \
  do {                                                                                        \
    const cudaError_t xlstm_cuda_error_ = (expr);                                             \
    if (xlstm_cuda_error_ != cudaSuccess) {                                                   \
      return ::xlstm::engine::cuda::CudaStatus(xlstm_cuda_error_, #expr, __FILE__, __LINE__); \
    }                                                                                         \
  } while (0)

#define XLSTM_CUBLAS_RETURN_IF_ERROR(expr)                                                         \
  do {                                                                                             \
    const cublasStatus_t xlstm_cublas_status_ = (expr);                                            \
    if (xlstm_cublas_status_ != CUBLAS_STATUS_SUCCESS) {                                           \
      return ::xlstm::engine::cuda::CublasStatus(xlstm_cublas_status_, #expr, __FILE__, __LINE__); \
    }                                                                                              \
  } while (0)

#endif  // XLSTM_ENGINE_CUDA_CUDA_STATUS_H_
