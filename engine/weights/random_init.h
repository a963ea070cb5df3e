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

// `dtype` is F32, BF16 or F16. Creates `out_dir` if needed; overwrites the files it writes.
absl::Status WriteRandomModel(const ModelConfig& config, uint64_t seed, DType dtype,
                              const std::string& out_dir);

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_WEIGHTS_RANDOM_INIT_H_
