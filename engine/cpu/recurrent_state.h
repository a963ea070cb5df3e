// The recurrent state of one sequence for the CPU reference backend: per block, the mLSTM
// memory C, normalizer n and stabilizer m of every head (docs/xlstm-model.md §4.1). Stored in
// fp32, stabilised (the true values are e^m C and e^m n). A fresh or Reset() state is all
// zeros, m included, exactly as HF's initial state.
//
// Thread safety: a plain value; one owner at a time.
#ifndef XLSTM_ENGINE_CPU_RECURRENT_STATE_H_
#define XLSTM_ENGINE_CPU_RECURRENT_STATE_H_

#include <cstdint>
#include <vector>

#include "engine/model_config.h"

namespace xlstm::engine {

class RecurrentState {
 public:
  explicit RecurrentState(const ModelConfig& config);

  void Reset();
  // Copies another state of the same shape (e.g. to fork a prefilled prompt).
  void CopyFrom(const RecurrentState& other);

  int64_t num_blocks() const { return num_blocks_; }
  int64_t num_heads() const { return num_heads_; }
  int64_t qk_head_dim() const { return qk_head_dim_; }
  int64_t v_head_dim() const { return v_head_dim_; }

  // Per block and head: C [DHQK, DHV] row-major, n [DHQK], m (one float).
  float* C(int64_t block, int64_t head);
  float* n(int64_t block, int64_t head);
  float* m(int64_t block, int64_t head);
  const float* C(int64_t block, int64_t head) const;
  const float* n(int64_t block, int64_t head) const;
  const float* m(int64_t block, int64_t head) const;

  // All floats, [blocks, heads, DHQK*DHV + DHQK + 1], for comparisons and copies.
  const std::vector<float>& data() const { return data_; }

 private:
  int64_t offset(int64_t block, int64_t head) const;

  int64_t num_blocks_, num_heads_, qk_head_dim_, v_head_dim_;
  std::vector<float> data_;
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_CPU_RECURRENT_STATE_H_
