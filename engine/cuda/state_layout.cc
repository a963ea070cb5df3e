// StateLayout: where each (slot, block, head)'s recurrent state lives in the slot pool.
// Contract in kernels.h.
#include "engine/cuda/kernels.h"

namespace xlstm::engine::cuda {
namespace {
int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
}  // namespace

StateLayout StateLayout::For(int64_t num_blocks, int64_t num_heads, int64_t dqk, int64_t dv,
                             ActType type) {
  StateLayout l;
  l.num_blocks = num_blocks;
  l.num_heads = num_heads;
  l.dqk = dqk;
  l.dv = dv;
  l.type = type;
  const bool bf16 = type == ActType::kBF16;
  // bf16: m (4 bytes) at an even element index, two elements wide.
  l.m_index = bf16 ? CeilDiv(dqk * dv + dqk, 2) * 2 : dqk * dv + dqk;
  const int64_t align = 128 / l.element_bytes();
  l.head_stride = CeilDiv(l.m_index + (bf16 ? 2 : 1), align) * align;
  l.slot_stride = num_blocks * num_heads * l.head_stride;
  return l;
}

}  // namespace xlstm::engine::cuda
