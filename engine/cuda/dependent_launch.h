// Programmatic dependent launch (Hopper, compute capability 9.0) for the forward pass's kernels.
//
// Why: a decode step is a chain of ~10 kernels per layer, most of them tiny at small batches. In
// plain stream order a kernel's blocks are scheduled only after the previous kernel has fully
// drained, so every boundary costs a few microseconds with the GPU idle (measured on the H200:
// 3-4 us per small kernel inside a CUDA graph; 162M shape, batch 1: ~0.4 ms per step for ~120
// kernels). Launched with programmatic stream serialization, a kernel's blocks may become resident
// while its predecessor is still running; they wait at WaitForPrerequisites() (PTX
// griddepcontrol.wait), which returns once the predecessor grid has completed and its memory
// writes are visible. Work placed before that wait (the GEMV's first weight loads, which read
// nothing a previous kernel wrote) overlaps the previous kernel.
//
// The contract every kernel launched through LaunchDependent keeps:
//  1. Before EnterDependentKernel() / WaitForPrerequisites() it reads only memory that no kernel
//     of the same forward pass writes (weights, and data uploaded by ordinary stream copies).
//  2. It calls LetDependentsLaunch() only after its own wait, so that at most two kernels of the
//     chain are resident at once and a kernel's pre-wait code never overlaps its predecessor's
//     predecessor.
// A kernel launched without the attribute (cuBLAS, the sampler, any ordinary launch) is a full
// barrier as usual, and in a kernel launched without it the two calls are no-ops. Stream capture
// turns these launches into programmatic edges of the decode graphs.
//
// Threading: the on/off switch is process-wide and atomic; it is read at every launch, so graphs
// captured earlier keep the setting they were captured with.
#ifndef XLSTM_ENGINE_CUDA_DEPENDENT_LAUNCH_H_
#define XLSTM_ENGINE_CUDA_DEPENDENT_LAUNCH_H_

#include <cuda_runtime.h>

namespace xlstm::engine::cuda {

// On by default. Benchmarks turn it off to measure what it buys (xlstm-bench
// --no-dependent-launch); results are bit-identical either way.
void SetDependentLaunch(bool enabled);
bool DependentLaunchEnabled();

#ifdef __CUDACC__
__device__ __forceinline__ void WaitForPrerequisites() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void LetDependentsLaunch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// The usual kernel prologue: wait for the predecessor, then let the successor's blocks in.
__device__ __forceinline__ void EnterDependentKernel() {
  WaitForPrerequisites();
  LetDependentsLaunch();
}

// kernel<<<grid, block, shared, stream>>>(args...), with programmatic stream serialization when
// DependentLaunchEnabled(). Returns the launch's error (also left for cudaGetLastError).
template <typename... Params, typename... Args>
cudaError_t LaunchDependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared,
                            cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared;
  config.stream = stream;
  config.attrs = &attribute;
  config.numAttrs = DependentLaunchEnabled() ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}
#endif  // __CUDACC__

}  // namespace xlstm::engine::cuda

#endif  // XLSTM_ENGINE_CUDA_DEPENDENT_LAUNCH_H_
