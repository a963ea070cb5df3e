#include "engine/cuda/device_buffer.h"

#include <cuda_runtime_api.h>

#include "absl/strings/str_format.h"

namespace xlstm::engine::cuda {
namespace {

absl::Status AllocationError(cudaError_t error, size_t bytes, const char* what, const char* kind) {
  cudaGetLastError();  // allocation failures are not sticky: clear the error.
  return absl::ResourceExhaustedError(
      absl::StrFormat("cannot allocate %.1f MiB of %s memory for %s: %s", bytes / 1048576.0, kind,
                      what, cudaGetErrorString(error)));
}

}  // namespace

absl::Status DeviceMemory::Allocate(void** data, size_t bytes, const char* what) {
  const cudaError_t error = cudaMalloc(data, bytes);
  return error == cudaSuccess ? absl::OkStatus() : AllocationError(error, bytes, what, kKind);
}

void DeviceMemory::Free(void* data) { cudaFree(data); }

absl::Status PinnedHostMemory::Allocate(void** data, size_t bytes, const char* what) {
  const cudaError_t error = cudaMallocHost(data, bytes);
  return error == cudaSuccess ? absl::OkStatus() : AllocationError(error, bytes, what, kKind);
}

void PinnedHostMemory::Free(void* data) { cudaFreeHost(data); }

}  // namespace xlstm::engine::cuda
