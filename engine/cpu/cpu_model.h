// The float32 reference implementation of the xLSTM forward pass (docs/xlstm-model.md §3-§4):
// readable loops plus BLAS projections. It is the oracle for every GPU test and lets the server
// run without a GPU.
//
// Each sequence carries its own RecurrentState, advanced in place. The mLSTM cell runs the
// recurrent step (§4.2) for every token, prefill included: §4.3's chunkwise form computes the
// same function, and HF's references agree with this to fp32 rounding.
//
// Thread safety: the model is immutable and Forward() is const, so several threads may run
// Forward() at once on disjoint states. A RecurrentState must not be shared between
// concurrent calls.
#ifndef XLSTM_ENGINE_CPU_CPU_MODEL_H_
#define XLSTM_ENGINE_CPU_CPU_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/cpu/recurrent_state.h"
#include "engine/logits_mode.h"
#include "engine/model_config.h"
#include "engine/weights/model_weights.h"

namespace xlstm::engine {

// One sequence's share of a forward call: its tokens (one for a decode step, many for a
// prefill chunk) are fed after whatever its state has already seen.
struct SequenceChunk {
  RecurrentState* state;
  absl::Span<const int32_t> tokens;
  LogitsMode logits = LogitsMode::kLast;
  // Positions whose hidden states after out_norm (what feeds lm_head) are wanted; a chunk asks
  // for logits or hidden states, not both.
  LogitsMode hidden = LogitsMode::kNone;
};

class CpuModel {
 public:
  static absl::StatusOr<std::unique_ptr<CpuModel>> Load(const std::string& model_dir);
  explicit CpuModel(std::shared_ptr<const ModelWeights> weights);

  const ModelConfig& config() const { return weights_->config; }
  RecurrentState NewState() const { return RecurrentState(config()); }

  // Runs every chunk of `batch` and returns their logits, row-major [rows, vocab]: per chunk in
  // order, one row (kLast), one row per token (kAll) or none. Chunks may have different
  // lengths and states at different positions; each is independent of the others.
  // InvalidArgument if a chunk is empty or holds a token id outside [0, vocab_size); no state
  // is modified then.
  absl::StatusOr<std::vector<float>> Forward(absl::Span<const SequenceChunk> batch) const;
  // Forward() that also replaces `*hidden` with the normed hidden states the chunks' `hidden`
  // asks for, row-major [rows, hidden_size], per chunk in order (like the logits).
  absl::StatusOr<std::vector<float>> Forward(absl::Span<const SequenceChunk> batch,
                                             std::vector<float>* hidden) const;

  // Convenience forms of Forward().
  absl::StatusOr<std::vector<float>> Prefill(RecurrentState& state,
                                             absl::Span<const int32_t> tokens,
                                             LogitsMode logits) const;
  // One token for each of `states`; returns [states.size(), vocab].
  absl::StatusOr<std::vector<float>> DecodeStep(absl::Span<RecurrentState* const> states,
                                                absl::Span<const int32_t> tokens) const;

 private:
  void Block(const BlockWeights& w, int64_t block_index, absl::Span<const SequenceChunk> batch,
             int64_t total_tokens, std::vector<float>& x) const;
  // out_norm of the rows of `x` [T, D] that `mode(chunk)` selects, per chunk in order.
  template <typename Mode>
  std::vector<float> NormedRows(absl::Span<const SequenceChunk> batch, const std::vector<float>& x,
                                const Mode& mode) const;

  std::shared_ptr<const ModelWeights> weights_;
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_CPU_CPU_MODEL_H_
