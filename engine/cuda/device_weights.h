// The model's weights on one GPU, fused for the forward pass (docs/xlstm-model.md §5):
// per block one input projection [q | k | v | o-gate | i-gate | f-gate] (2QK + 2V + 2NH rows)
// and one FFN up projection [up-gate | up] (2F rows), plus out_proj, proj_down, the embedding
// table and lm_head, in bf16 (default) or fp32. Norm weights and all biases stay fp32.
//
// Loading streams each tensor through a bounded pinned staging buffer, so host memory never
// holds a second copy of the model (F32 checkpoints are mmapped by ModelWeights).
//
// Threading: built once, then read-only; freed with the object.
#ifndef XLSTM_ENGINE_CUDA_DEVICE_WEIGHTS_H_
#define XLSTM_ENGINE_CUDA_DEVICE_WEIGHTS_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/gemm.h"
#include "engine/model_config.h"
#include "engine/weights/model_weights.h"

namespace xlstm::engine::cuda {

struct DeviceBlockWeights {
  const float* norm_mlstm_weight = nullptr;  // [D]
  const float* norm_mlstm_bias = nullptr;    // [D] or null
  DeviceMatrix in_proj;                      // [2QK + 2V + 2NH, D]
  const float* qkvo_bias = nullptr;          // [2QK + 2V] or null (use_bias)
  const float* igate_bias = nullptr;         // [NH], always present
  const float* fgate_bias = nullptr;         // [NH], always present
  const float* head_norm_weight = nullptr;   // [V]
  const float* head_norm_bias = nullptr;     // [V] or null
  DeviceMatrix out_proj;                     // [D, V]
  const float* out_proj_bias = nullptr;      // [D] or null
  const float* norm_ffn_weight = nullptr;    // [D]
  const float* norm_ffn_bias = nullptr;      // [D] or null
  DeviceMatrix up_proj;                      // [2F, D]: up-gate rows, then up rows
  const float* up_proj_bias = nullptr;       // [2F] or null
  DeviceMatrix down_proj;                    // [D, F]
  const float* down_proj_bias = nullptr;     // [D] or null
};

class DeviceWeights {
 public:
  // Uploads `weights`, converting to `type`. Fails cleanly (nothing leaked) when the device
  // is out of memory.
  static absl::StatusOr<std::unique_ptr<DeviceWeights>> Upload(const ModelWeights& weights,
                                                               ActType type, cudaStream_t stream);
  // Random weights generated on the device (benchmarks): the distribution of
  // engine/weights/random_init.h (N(0, 1/fan_in) linears, gate weights x3, gate biases
  // N(-1, 2) / N(2, 2), norm weights near 1), deterministic in `seed`.
  static absl::StatusOr<std::unique_ptr<DeviceWeights>> Random(const ModelConfig& config,
                                                               uint64_t seed, ActType type,
                                                               cudaStream_t stream);

  const ModelConfig& config() const { return config_; }
  ActType type() const { return type_; }
  const void* embeddings() const { return embeddings_; }  // [vocab, D] of type()
  const DeviceBlockWeights& block(int64_t i) const { return blocks_[i]; }
  const float* out_norm_weight() const { return out_norm_weight_; }
  const DeviceMatrix& lm_head() const { return lm_head_; }
  size_t device_bytes() const { return storage_.bytes(); }

  // Column offsets inside a row of the in_proj output.
  int64_t q_column() const { return 0; }
  int64_t k_column() const { return config_.qk_dim(); }
  int64_t v_column() const { return 2 * config_.qk_dim(); }
  int64_t o_column() const { return 2 * config_.qk_dim() + config_.v_dim(); }
  int64_t i_column() const { return 2 * config_.qk_dim() + 2 * config_.v_dim(); }
  int64_t f_column() const { return i_column() + config_.num_heads; }
  int64_t in_proj_width() const { return f_column() + config_.num_heads; }

 private:
  DeviceWeights(const ModelConfig& config, ActType type) : config_(config), type_(type) {}
  // Lays out every tensor in one device allocation and fills the pointers.
  absl::Status AllocateAndLayOut();

  ModelConfig config_;
  ActType type_;
  DeviceBuffer storage_;
  const void* embeddings_ = nullptr;
  std::vector<DeviceBlockWeights> blocks_;
  const float* out_norm_weight_ = nullptr;
  DeviceMatrix lm_head_;
};

}  // namespace xlstm::engine::cuda

#endif  // XLSTM_ENGINE_CUDA_DEVICE_WEIGHTS_H_
