// Device and launch helpers shared by the forward pass's kernels (one kernel a file, each
// launched through kernels.h). Everything here is inline: each kernel file gets its own copy.
#ifndef XLSTM_ENGINE_CUDA_KERNEL_UTIL_CUH_
#define XLSTM_ENGINE_CUDA_KERNEL_UTIL_CUH_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace xlstm::engine::cuda {

inline constexpr int kWarp = 32;

inline int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Carries a type through a generic lambda (the launchers pick kernel instantiations with it).
template <typename T>
struct TypeTag {
  using type = T;
};

// Blocks for a grid-stride elementwise kernel: enough to fill the GPU, never more than needed.
inline unsigned ElementwiseBlocks(int64_t count, int threads) {
  return static_cast<unsigned>(
      std::max<int64_t>(1, std::min<int64_t>(CeilDiv(count, threads), 65535)));
}

__device__ __forceinline__ float LoadAct(const void* p, int64_t i, bool bf16) {
  return bf16 ? __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i])
              : static_cast<const float*>(p)[i];
}

__device__ __forceinline__ void StoreAct(void* p, int64_t i, float v, bool bf16) {
  if (bf16) {
    static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
  } else {
    static_cast<float*>(p)[i] = v;
  }
}

__device__ __forceinline__ float WarpSum(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the result.
// `scratch` holds 32 floats; the trailing barrier makes it reusable at once.
__device__ __forceinline__ float BlockSum(float v, float* scratch) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  v = WarpSum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int warps = blockDim.x / kWarp;
  float total = 0.0f;
  for (int w = 0; w < warps; ++w) total += scratch[w];  // fixed order: deterministic
  __syncthreads();
  return total;
}

__device__ __forceinline__ float SigmoidF(float x) { return 1.0f / (1.0f + expf(-x)); }

__device__ __forceinline__ float LogSigmoidF(float x) {
  return fminf(x, 0.0f) - log1pf(expf(-fabsf(x)));
}

__device__ __forceinline__ float SoftCapF(float x, float cap) {
  return cap > 0.0f ? cap * tanhf(x / cap) : x;
}

// Threads for a per-row kernel over `dim` elements: a multiple of 32, at most 1024.
inline int RowThreads(int64_t dim) {
  return static_cast<int>(std::clamp<int64_t>(CeilDiv(dim, kWarp) * kWarp, kWarp, 256));
}

}  // namespace xlstm::engine::cuda

#endif  // XLSTM_ENGINE_CUDA_KERNEL_UTIL_CUH_
