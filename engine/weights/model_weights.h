// The weights of an xLSTM model as float32 matrices, named by role rather than by HF key.
//
// F32 tensors that are 4-byte aligned in the file are used in place (zero copy, so a 27 GB fp32
// checkpoint needs no second copy in memory); BF16/F16 ones are converted once at load. Fused
// checkpoints (weight_mode "fused") are split into the same per-projection views. Linear weights
// keep HF's [out_features, in_features] layout.
//
// Thread safety: immutable after Load(); safe to read from any thread.
#ifndef XLSTM_ENGINE_WEIGHTS_MODEL_WEIGHTS_H_
#define XLSTM_ENGINE_WEIGHTS_MODEL_WEIGHTS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model_config.h"

namespace xlstm::engine {

class Checkpoint;

// A read-only float32 tensor view plus whatever keeps its memory alive.
struct FloatTensor {
  const float* data = nullptr;  // nullptr: absent (e.g. a bias with use_bias=false)
  std::vector<int64_t> shape;
  std::shared_ptr<const void> owner;

  bool present() const { return data != nullptr; }
  int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
  // Rows [begin, begin + count) of a 2-D (or 1-D) tensor, sharing its memory.
  FloatTensor Rows(int64_t begin, int64_t count) const;
};

// One block (HF `backbone.blocks.{i}`). Shapes use the names of docs/xlstm-model.md §2.
struct BlockWeights {
  FloatTensor norm_mlstm_weight, norm_mlstm_bias;          // [D]
  FloatTensor q_weight, q_bias;                            // [QK, D], [QK]
  FloatTensor k_weight, k_bias;                            // [QK, D], [QK]
  FloatTensor v_weight, v_bias;                            // [V, D], [V]
  FloatTensor ogate_weight, ogate_bias;                    // [V, D], [V]
  FloatTensor igate_weight, igate_bias;                    // [NH, D], [NH] (bias always present)
  FloatTensor fgate_weight, fgate_bias;                    // [NH, D], [NH] (bias always present)
  FloatTensor multihead_norm_weight, multihead_norm_bias;  // [V]
  FloatTensor out_proj_weight, out_proj_bias;              // [D, V], [D]
  FloatTensor norm_ffn_weight, norm_ffn_bias;              // [D]
  FloatTensor up_gate_weight, up_gate_bias;                // [F, D], [F]
  FloatTensor up_weight, up_bias;                          // [F, D], [F]
  FloatTensor down_weight, down_bias;                      // [D, F], [D]
};

struct ModelWeights {
  ModelConfig config;
  FloatTensor embeddings;  // [vocab, D]
  std::vector<BlockWeights> blocks;
  FloatTensor out_norm_weight;  // [D] (HF builds out_norm without a bias)
  FloatTensor lm_head;          // [vocab, D]

  // Opens `model_dir` (see Checkpoint) and maps every tensor; fails on any missing, unexpected,
  // mis-shaped or non-float tensor.
  static absl::StatusOr<std::shared_ptr<const ModelWeights>> Load(const std::string& model_dir);
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_WEIGHTS_MODEL_WEIGHTS_H_
