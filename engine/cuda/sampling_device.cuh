// Device helpers shared by the token-choice kernels (sampling_kernels.cu) and the candidate
// pre-filter (candidate_filter.cu): the SortKey's logit encoding and the weight formula of rule 3.
// Both files must compute the very same bits for a token's weight, so the formula lives here once.
#ifndef XLSTM_ENGINE_CUDA_SAMPLING_DEVICE_CUH_
#define XLSTM_ENGINE_CUDA_SAMPLING_DEVICE_CUH_

#include <cuda_runtime.h>

#include <cstdint>

namespace xlstm::engine::cuda {

// The float order as an unsigned order, reversed: a larger logit gives a smaller number. Finite
// values and infinities map one to one (the inverse below restores the exact float).
__device__ __forceinline__ uint32_t DescendingBits(float v) {
  const uint32_t u = __float_as_uint(v);
  const uint32_t ascending = (u & 0x80000000u) != 0 ? ~u : (u | 0x80000000u);
  return ~ascending;
}
__device__ __forceinline__ float FromDescendingBits(uint32_t d) {
  const uint32_t ascending = ~d;
  return __uint_as_float((ascending & 0x80000000u) != 0 ? (ascending & 0x7fffffffu) : ~ascending);
}

// The logit bits of a SortKey (sampling_kernels.h): the slot above them is dropped by the cast.
__device__ __forceinline__ uint32_t KeyLogitBits(uint64_t key, int id_bits) {
  return static_cast<uint32_t>(key >> id_bits);
}

// exp(l / T - l_0 / T) as the host computes it: l * (1 / T), minus top = l_0 * (1 / T), in
// double, each step rounded on its own (no FMA), then the device's double exp. Non-increasing
// in l for a fixed top, since every step is a monotone rounding.
__device__ __forceinline__ double SampledExponent(float l, double inv_t, double top) {
  return __dsub_rn(__dmul_rn(static_cast<double>(l), inv_t), top);
}
__device__ __forceinline__ double SampledWeight(float l, double inv_t, double top) {
  return exp(SampledExponent(l, inv_t, top));
}

}  // namespace xlstm::engine::cuda

#endif  // XLSTM_ENGINE_CUDA_SAMPLING_DEVICE_CUH_
