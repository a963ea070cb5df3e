// Writes a random-weight model directory in Hugging Face's layout (config.json,
// model.safetensors, generation_config.json), for demos, tests and benchmarks.
//
// Distribution (docs/xlstm-model.md §9, chosen so the exponential gates are exercised):
// linear weights N(0, 1/fan_in), embeddings N(0, 1), lm_head x6, gate weights x3, input-gate
// bias N(-1, 2), forget-gate bias N(2, 2), norm weights 1 + 0.2 N(0, 1), other biases N(0, 0.1).
// Each tensor's values depend only on (seed, tensor name).
#ifndef XLSTM_ENGINE_WEIGHTS_RANDOM_INIT_H_
#define XLSTM_ENGINE_WEIGHTS_RANDOM_INIT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "engine/model_config.h"
#include "engine/weights/dtype.h"

namespace xlstm::engine {

// The most bytes of weights a random model may have: twice the 7B shape in float32 (~28 GiB).
// A config beyond it (a typo, or a hostile file: hidden_size 1e6 passes every per-field check)
// is refused before anything is allocated or written.
inline constexpr uint64_t kMaxRandomModelBytes = uint64_t{64} << 30;
// The most elements of one tensor: each is generated in one float32 buffer (8 GiB at most).
inline constexpr uint64_t kMaxRandomTensorElements = uint64_t{1} << 31;

// InvalidArgument (naming the limit, the size and the config's dims) when a random model of
// `config` in `dtype` would be over kMaxRandomModelBytes or have a tensor over
// kMaxRandomTensorElements. Cheap: lists the tensor shapes only.
absl::Status CheckRandomModelSize(const ModelConfig& config, DType dtype);

// `dtype` is F32, BF16 or F16. Creates `out_dir` if needed; overwrites the files it writes.
// Checks CheckRandomModelSize first, before creating or allocating anything.
absl::Status WriteRandomModel(const ModelConfig& config, uint64_t seed, DType dtype,
                              const std::string& out_dir);

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_WEIGHTS_RANDOM_INIT_H_
