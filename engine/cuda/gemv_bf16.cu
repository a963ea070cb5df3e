#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/dependent_launch.h"
#include "engine/cuda/gemv_bf16.h"

namespace xlstm::engine::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;  // one output row per warp
constexpr int kUnroll = 4;         // 16-byte weight loads in flight per lane

// acc += dot(8 bf16 of w, 8 bf16 of x), in element order.
__device__ __forceinline__ float Dot8(const uint4& w, const uint4& x, float acc) {
  const __nv_bfloat162* wp = reinterpret_cast<const __nv_bfloat162*>(&w);
  const __nv_bfloat162* xp = reinterpret_cast<const __nv_bfloat162*>(&x);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 a = __bfloat1622float2(wp[i]);
    const float2 b = __bfloat1622float2(xp[i]);
    acc = fmaf(a.x, b.x, acc);
    acc = fmaf(a.y, b.y, acc);
  }
  return acc;
}

// Weights are read once per product: stream them past L1 (x stays cached, every warp reads it).
__device__ __forceinline__ uint4 LoadStreaming(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// Block of kWarpsPerBlock warps, warp = output row o; lane l takes the 16-byte chunks l, l + 32,
// l + 64, ... of w[o, :] and of each x[r, :] (in8 chunks per row).
template <int R>
__global__ void __launch_bounds__(kWarpsPerBlock* kWarp)
    GemvBf16Kernel(const uint4* __restrict__ w, int64_t out, int64_t in8,
                   const uint4* __restrict__ x, float* __restrict__ y, int64_t y_stride,
                   bool accumulate) {
  const int64_t o = int64_t{blockIdx.x} * kWarpsPerBlock + threadIdx.x / kWarp;
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  if (o >= out) return;  // whole warps; they read nothing
  const uint4* row = w + o * in8;
  float acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;
  int64_t k = lane;
  // The first round of weight loads is issued before waiting for the kernel that wrote x
  // (dependent_launch.h): weights are never written by the forward pass, so these loads stream
  // while the previous kernel finishes.
  uint4 wv[kUnroll];
  const bool first_round = k + (kUnroll - 1) * kWarp < in8;
  if (first_round) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) wv[u] = LoadStreaming(row + k + u * kWarp);
  }
  EnterDependentKernel();
  // Main loop: kUnroll loads issued before their arithmetic. Chunks are still summed in
  // increasing order per lane, as in the tail loop, so the result does not depend on R.
  for (; k + (kUnroll - 1) * kWarp < in8; k += kUnroll * kWarp) {
    if (k != lane) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) wv[u] = LoadStreaming(row + k + u * kWarp);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
      for (int r = 0; r < R; ++r) acc[r] = Dot8(wv[u], x[r * in8 + k + u * kWarp], acc[r]);
    }
  }
  for (; k < in8; k += kWarp) {
    const uint4 tail_w = LoadStreaming(row + k);
#pragma unroll
    for (int r = 0; r < R; ++r) acc[r] = Dot8(tail_w, x[r * in8 + k], acc[r]);
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int offset = kWarp / 2; offset > 0; offset /= 2) {
      acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], offset);
    }
  }
  // Every lane holds every sum; lane r writes row r (a static index keeps acc in registers).
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (lane == r) {
      float* dst = y + r * y_stride + o;
      *dst = accumulate ? *dst + acc[r] : acc[r];
    }
  }
}

}  // namespace

bool GemvBf16Supports(const void* w, const void* x, int64_t rows, int64_t in) {
  return rows >= 1 && rows <= kGemvMaxRows && in > 0 && in % 8 == 0 &&
         reinterpret_cast<uintptr_t>(w) % 16 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
}

absl::Status LaunchGemvBf16(const void* w, int64_t out, int64_t in, const void* x, int64_t rows,
                            float* y, int64_t y_stride, bool accumulate, cudaStream_t stream) {
  if (!GemvBf16Supports(w, x, rows, in) || out < 1 || y_stride < out) {
    return absl::InvalidArgumentError(absl::StrCat("GEMV bf16: unsupported shape: rows ", rows,
                                                   ", out ", out, ", in ", in, ", y stride ",
                                                   y_stride, " (or unaligned operands)"));
  }
  const int64_t blocks = (out + kWarpsPerBlock - 1) / kWarpsPerBlock;
  if (blocks > 0x7fffffff) return absl::InvalidArgumentError("GEMV bf16: too many outputs");
  const auto* wv = static_cast<const uint4*>(w);
  const auto* xv = static_cast<const uint4*>(x);
  const int64_t in8 = in / 8;
  const dim3 grid(static_cast<unsigned>(blocks));
  const dim3 threads(kWarpsPerBlock * kWarp);
  cudaError_t launch_error = cudaSuccess;
  switch (rows) {
#define XLSTM_GEMV_CASE(R)                                                                        \
  case R:                                                                                         \
    launch_error = LaunchDependent(GemvBf16Kernel<R>, grid, threads, 0, stream, wv, out, in8, xv, \
                                   y, y_stride, accumulate);                                      \
    break;
    XLSTM_GEMV_CASE(1)
    XLSTM_GEMV_CASE(2)
    XLSTM_GEMV_CASE(3)
    XLSTM_GEMV_CASE(4)
    XLSTM_GEMV_CASE(5)
    XLSTM_GEMV_CASE(6)
    XLSTM_GEMV_CASE(7)
    XLSTM_GEMV_CASE(8)
#undef XLSTM_GEMV_CASE
    default:
      return absl::InvalidArgumentError(absl::StrCat("GEMV bf16: ", rows, " rows"));
  }
  return LaunchStatus(launch_error, "GemvBf16Kernel");
}

}  // namespace xlstm::engine::cuda
