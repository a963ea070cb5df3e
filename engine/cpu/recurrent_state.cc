#include "engine/cpu/recurrent_state.h"

#include <algorithm>

#include "common/status_macros.h"

namespace xlstm::engine {

RecurrentState::RecurrentState(const ModelConfig& config)
    : num_blocks_(config.num_blocks),
      num_heads_(config.num_heads),
      qk_head_dim_(config.qk_head_dim()),
      v_head_dim_(config.v_head_dim()),
      data_(static_cast<size_t>(config.state_floats_per_sequence()), 0.0f) {}

void RecurrentState::Reset() { std::fill(data_.begin(), data_.end(), 0.0f); }

void RecurrentState::CopyFrom(const RecurrentState& other) {
  XLSTM_CHECK(other.data_.size() == data_.size());
  std::copy(other.data_.begin(), other.data_.end(), data_.begin());
}

int64_t RecurrentState::offset(int64_t block, int64_t head) const {
  const int64_t per_head = qk_head_dim_ * v_head_dim_ + qk_head_dim_ + 1;
  return (block * num_heads_ + head) * per_head;
}

float* RecurrentState::C(int64_t block, int64_t head) { return data_.data() + offset(block, head); }
float* RecurrentState::n(int64_t block, int64_t head) {
  return C(block, head) + qk_head_dim_ * v_head_dim_;
}
float* RecurrentState::m(int64_t block, int64_t head) { return n(block, head) + qk_head_dim_; }
const float* RecurrentState::C(int64_t block, int64_t head) const {
  return data_.data() + offset(block, head);
}
const float* RecurrentState::n(int64_t block, int64_t head) const {
  return C(block, head) + qk_head_dim_ * v_head_dim_;
}
const float* RecurrentState::m(int64_t block, int64_t head) const {
  return n(block, head) + qk_head_dim_;
}

}  // namespace xlstm::engine
