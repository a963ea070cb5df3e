#include "server/backend_factory.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/util/status_macros.h"
#ifdef XLSTM_SERVER_HAVE_CUDA
#include "engine/cuda/cuda_backend.h"
#endif

namespace xlstm::server {

absl::Status CheckBackendChoice(const BackendChoice& choice) {
  if (choice.backend != "auto" && choice.backend != "cpu" && choice.backend != "cuda") {
    return absl::InvalidArgumentError(
        absl::StrCat("--backend ", choice.backend, ": expected auto, cpu or cuda"));
  }
  if (choice.weight_dtype != "bfloat16" && choice.weight_dtype != "float32") {
    return absl::InvalidArgumentError(
        absl::StrCat("--weight-dtype ", choice.weight_dtype, ": expected bfloat16 or float32"));
  }
  if (choice.activation_dtype != "bfloat16" && choice.activation_dtype != "bfloat16x2") {
    return absl::InvalidArgumentError(absl::StrCat("--activation-dtype ", choice.activation_dtype,
                                                   ": expected bfloat16 or bfloat16x2"));
  }
  return absl::OkStatus();
}

std::string ResolveBackendName(const std::string& requested) {
  if (requested != "auto") return requested;
#ifdef XLSTM_SERVER_HAVE_CUDA
  if (engine::cuda::CudaDeviceCount() > 0) return "cuda";
#endif
  return "cpu";
}

absl::StatusOr<std::unique_ptr<engine::Backend>> CreateBackend(const std::string& model_dir,
                                                               const BackendChoice& choice) {
  XLSTM_RETURN_IF_ERROR(CheckBackendChoice(choice));
  const std::string name = ResolveBackendName(choice.backend);
  if (name == "cpu") {
    XLSTM_ASSIGN_OR_RETURN(std::unique_ptr<engine::CpuModel> model,
                           engine::CpuModel::Load(model_dir));
    XLSTM_ASSIGN_OR_RETURN(std::unique_ptr<engine::CpuBackend> backend,
                           engine::CpuBackend::Create(std::move(model), choice.max_slots));
    return std::unique_ptr<engine::Backend>(std::move(backend));
  }
#ifdef XLSTM_SERVER_HAVE_CUDA
  if (engine::cuda::CudaDeviceCount() == 0) {
    return absl::FailedPreconditionError(
        "--backend cuda: no CUDA device is visible (no GPU or no driver); use --backend cpu");
  }
  engine::cuda::CudaBackendOptions options;
  options.fp32_weights = choice.weight_dtype == "float32";
  options.bf16x2_activations = choice.activation_dtype == "bfloat16x2";
  options.max_slots = choice.max_slots;
  // A step feeds at most the token budget, plus one token per decoding sequence beyond it.
  options.max_step_tokens =
      std::max<int64_t>(choice.step_token_budget, choice.max_slots) + choice.max_slots;
  XLSTM_ASSIGN_OR_RETURN(std::unique_ptr<engine::cuda::CudaBackend> backend,
                         engine::cuda::CudaBackend::Load(model_dir, options));
  return std::unique_ptr<engine::Backend>(std::move(backend));
#else
  return absl::UnimplementedError(
      "--backend cuda: this build has no CUDA backend (nvcc was not found at build time); use "
      "--backend cpu");
#endif
}

}  // namespace xlstm::server
