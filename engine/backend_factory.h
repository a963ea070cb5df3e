// Chooses and builds the model backend: `auto` takes the CUDA backend when this build has it and
// a GPU is visible, else the CPU reference; `cuda` and `cpu` insist. The choices are enums whose
// spellings are listed here once (the server's option table parses and prints them).
#ifndef XLSTM_ENGINE_BACKEND_FACTORY_H_
#define XLSTM_ENGINE_BACKEND_FACTORY_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/backend.h"

namespace xlstm::engine {

enum class BackendKind { kAuto, kCpu, kCuda };
// CUDA backend weights (the CPU reference is always float32).
enum class WeightDtype { kBfloat16, kFloat32 };
// CUDA GEMM activations with bfloat16 weights: bfloat16, or a bfloat16 pair (~16 bits of
// mantissa, closer to float32 results; prefill GEMMs do twice the work).
enum class ActivationDtype { kBfloat16, kBfloat16x2 };
// CUDA recurrent state (C and n; the stabilizer m stays float32): bfloat16 halves the state
// traffic of a decode step at an accuracy cost measured in tests/bench/NOTES.md.
enum class StateDtype { kFloat32, kBfloat16 };

inline constexpr std::array<std::pair<absl::string_view, BackendKind>, 3> kBackendKindNames = {{
    {"auto", BackendKind::kAuto},
    {"cpu", BackendKind::kCpu},
    {"cuda", BackendKind::kCuda},
}};
inline constexpr std::array<std::pair<absl::string_view, WeightDtype>, 2> kWeightDtypeNames = {{
    {"bfloat16", WeightDtype::kBfloat16},
    {"float32", WeightDtype::kFloat32},
}};
inline constexpr std::array<std::pair<absl::string_view, ActivationDtype>, 2>
    kActivationDtypeNames = {{
        {"bfloat16", ActivationDtype::kBfloat16},
        {"bfloat16x2", ActivationDtype::kBfloat16x2},
    }};

inline constexpr std::array<std::pair<absl::string_view, StateDtype>, 2> kStateDtypeNames = {{
    {"float32", StateDtype::kFloat32},
    {"bfloat16", StateDtype::kBfloat16},
}};

absl::string_view BackendKindName(BackendKind kind);

struct BackendOptions {
  BackendKind kind = BackendKind::kAuto;
  WeightDtype weight_dtype = WeightDtype::kBfloat16;
  ActivationDtype activation_dtype = ActivationDtype::kBfloat16;
  StateDtype state_dtype = StateDtype::kFloat32;
  int32_t max_slots = 64;           // CPU: exactly this many; CUDA: at most (memory permitting)
  int32_t step_token_budget = 512;  // the engine's per-step budget; sizes the CUDA workspace
};

// kCpu or kCuda: what `requested` resolves to on this machine (kAuto: kCuda when this build has
// the CUDA backend and a device is visible).
BackendKind ResolveBackendKind(BackendKind requested);

// Loads `model_dir` into the chosen backend. Errors name the option at fault (--backend).
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const std::string& model_dir,
                                                       const BackendOptions& options);

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_BACKEND_FACTORY_H_
