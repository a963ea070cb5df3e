// Log-probabilities from logits, computed in double so that sums over long continuations are
// accurate. Used for Score, for chosen-token log-probs and for top-n alternatives.
#ifndef XLSTM_ENGINE_SAMPLING_LOGPROBS_H_
#define XLSTM_ENGINE_SAMPLING_LOGPROBS_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/types/span.h"

namespace xlstm::engine {

// log Σ exp(logits).
double LogSumExp(absl::Span<const float> logits);
// log softmax(logits)[token].
double TokenLogProb(absl::Span<const float> logits, int32_t token);
// Index of the largest logit; the lowest index wins ties (as torch.argmax).
int32_t Argmax(absl::Span<const float> logits);

struct TokenLogProbEntry {
  int32_t token;
  double logprob;
};
// The `n` most likely tokens, most likely first (ties: lower id first).
std::vector<TokenLogProbEntry> TopLogProbs(absl::Span<const float> logits, int n);

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SAMPLING_LOGPROBS_H_
