#include "engine/backend_factory.h"

#include <algorithm>

#include "engine/cpu/cpu_backend.h"
#include "common/status_macros.h"
#ifdef XLSTM_HAVE_CUDA_BACKEND
#include "engine/cuda/cuda_backend.h"
#endif

namespace xlstm::engine {

absl::string_view BackendKindName(BackendKind kind) {
  for (const auto& [name, value] : kBackendKindNames) {
    if (value == kind) return name;
  }
  return "?";
}

BackendKind ResolveBackendKind(BackendKind requested) {
  if (requested != BackendKind::kAuto) return requested;
#ifdef XLSTM_HAVE_CUDA_BACKEND
  if (cuda::CudaDeviceCount() > 0) return BackendKind::kCuda;
#endif
  return BackendKind::kCpu;
}

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const std::string& model_dir,
                                                       const BackendOptions& options) {
  if (ResolveBackendKind(options.kind) == BackendKind::kCpu) {
    XLSTM_ASSIGN_OR_RETURN(std::unique_ptr<CpuModel> model, CpuModel::Load(model_dir));
    XLSTM_ASSIGN_OR_RETURN(std::unique_ptr<CpuBackend> backend,
                           CpuBackend::Create(std::move(model), options.max_slots));
    return std::unique_ptr<Backend>(std::move(backend));
  }
#ifdef XLSTM_HAVE_CUDA_BACKEND
  if (cuda::CudaDeviceCount() == 0) {
    return absl::FailedPreconditionError(
        "--backend cuda: no CUDA device is visible (no GPU or no driver); use --backend cpu");
  }
  cuda::CudaBackendOptions cuda_options;
  cuda_options.fp32_weights = options.weight_dtype == WeightDtype::kFloat32;
  cuda_options.bf16x2_activations = options.activation_dtype == ActivationDtype::kBfloat16x2;
  cuda_options.state_type =
      options.state_dtype == StateDtype::kBfloat16 ? cuda::ActType::kBF16 : cuda::ActType::kF32;
  cuda_options.max_slots = options.max_slots;
  // A step feeds at most the token budget, plus one token per decoding sequence beyond it.
  cuda_options.max_step_tokens =
      std::max<int64_t>(options.step_token_budget, options.max_slots) + options.max_slots;
  XLSTM_ASSIGN_OR_RETURN(std::unique_ptr<cuda::CudaBackend> backend,
                         cuda::CudaBackend::Load(model_dir, cuda_options));
  return std::unique_ptr<Backend>(std::move(backend));
#else
  return absl::UnimplementedError(
      "--backend cuda: this build has no CUDA backend (nvcc was not found at build time); use "
      "--backend cpu");
#endif
}

}  // namespace xlstm::engine
