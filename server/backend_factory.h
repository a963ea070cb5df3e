// Chooses and builds the model backend for xlstm-server: `auto` takes the CUDA backend when
// this build has it and a GPU is visible, else the CPU reference; `cuda` and `cpu` insist.
#ifndef XLSTM_SERVER_BACKEND_FACTORY_H_
#define XLSTM_SERVER_BACKEND_FACTORY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/backend.h"

namespace xlstm::server {

struct BackendChoice {
  std::string backend = "auto";           // auto | cpu | cuda
  std::string weight_dtype = "bfloat16";  // CUDA weights: bfloat16 | float32
  // CUDA GEMM activations with bf16 weights: bfloat16 | bfloat16x2 (kernels.h,
  // LaunchSplitToBf16Pairs)
  std::string activation_dtype = "bfloat16";
  int32_t max_slots = 64;           // CPU: exactly this many; CUDA: at most (memory permitting)
  int32_t step_token_budget = 512;  // sizes the CUDA workspace
};

// Checks --backend, --weight-dtype and --activation-dtype (before anything is loaded); errors name
// the flag.
absl::Status CheckBackendChoice(const BackendChoice& choice);

// "cpu" or "cuda": what `auto` resolves to on this machine.
std::string ResolveBackendName(const std::string& requested);

// Loads `model_dir` into the chosen backend. Errors name the flag at fault.
absl::StatusOr<std::unique_ptr<engine::Backend>> CreateBackend(const std::string& model_dir,
                                                               const BackendChoice& choice);

}  // namespace xlstm::server

#endif  // XLSTM_SERVER_BACKEND_FACTORY_H_
