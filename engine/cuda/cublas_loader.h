// cuBLAS, loaded at run time with dlopen instead of linked.
//
// Why: libraries a program is linked against get their thread-local storage in the static TLS
// block that glibc carves out of every thread's stack, and libcublasLt alone has 94 KB of it.
// civetweb (prometheus-cpp's HTTP server, the /metrics endpoint) creates threads with 100 KB
// stacks, and with cuBLAS linked pthread_create fails with EINVAL, so xlstm-server could not
// serve metrics. A dlopen'ed library's TLS is allocated lazily instead (dynamic TLS). Loading it
// on demand also keeps CPU-only runs free of cuBLAS.
//
// Thread safety: CublasApi() is safe to call from any thread (loads once).
#ifndef XLSTM_ENGINE_CUDA_CUBLAS_LOADER_H_
#define XLSTM_ENGINE_CUDA_CUBLAS_LOADER_H_

#include <cublas_v2.h>

#include "absl/status/statusor.h"

namespace xlstm::engine::cuda {

// The cuBLAS entry points the engine uses.
struct CublasFunctions {
  decltype(&cublasCreate_v2) create;
  decltype(&cublasDestroy_v2) destroy;
  decltype(&cublasSetStream_v2) set_stream;
  decltype(&cublasSetWorkspace_v2) set_workspace;
  decltype(&cublasSetMathMode) set_math_mode;
  // cublasGemmEx has C++ overloads, so its C signature is spelled out.
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                            const void*, const void*, cudaDataType, int, const void*, cudaDataType,
                            int, const void*, void*, cudaDataType, int, cublasComputeType_t,
                            cublasGemmAlgo_t);
  decltype(&cublasGetStatusName) status_name;
  decltype(&cublasGetStatusString) status_string;
};

// Loads libcublas.so.<major of the toolkit we were built with> (the loader's search path, then
// $CUDA_HOME/lib64 and /usr/local/cuda/lib64) once; the error says where it looked.
absl::StatusOr<const CublasFunctions*> CublasApi();

}  // namespace xlstm::engine::cuda

#endif  // XLSTM_ENGINE_CUDA_CUBLAS_LOADER_H_
