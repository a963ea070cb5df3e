// What a backend computes from a row's logits when the caller does not want the logits
// themselves: the next token of a Generate sample (penalties, masks, temperature, top-k, top-p,
// min-p, counter-based draw) and the log-probabilities of Score targets. The functions here are
// the host reference; the CUDA backend runs the same rules on the device (engine/cuda/
// device_sampler.h) and its tests compare the two on the same logits.
//
// The rules, exactly (both implementations follow them; ties never depend on the batch):
//   1. Adjust (float arithmetic, per LogitAdjustment, each token at most once per list):
//        if repeated and repetition_penalty != 1:  l = l > 0 ? l / rp : l * rp   (rp as float)
//        l = l - subtract
//        if banned: l = -inf
//   2. temperature == 0: the first index of the largest adjusted logit.
//   3. Otherwise order the tokens by (adjusted logit descending, token id ascending); keep the
//      first k (top_k > 0 ? min(top_k, vocab) : vocab). In double: e_i = exp(l_i / T - l_0 / T),
//      p_i = e_i / sum(e over the k). Cut to the shortest prefix whose cumulative p reaches
//      top_p (when top_p < 1); then, with min_p > 0, to the prefix with p_i >= min_p * p_0; then
//      drop trailing tokens with p_i == 0 (masked ones). Draw u = CounterUniform(seed, step) *
//      sum(p over the kept prefix) and return the first kept token whose cumulative p exceeds u
//      (the last kept token if rounding leaves none).
//   4. logprob and top alternatives always come from the RAW logits (log softmax before any
//      adjustment), as OpenAI-style APIs report them.
//
// Thread safety: plain functions and value types.
#ifndef XLSTM_ENGINE_SAMPLING_TOKEN_CHOICE_H_
#define XLSTM_ENGINE_SAMPLING_TOKEN_CHOICE_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/sampling/logprobs.h"
#include "engine/sampling/sampler.h"

namespace xlstm::engine {

// One draw from one row's logits.
struct SampleSpec {
  SamplingParams params;                          // temperature 0: greedy
  uint64_t step = 0;                              // the draw uses CounterUniform(params.seed, step)
  absl::Span<const LogitAdjustment> adjustments;  // distinct tokens, any order
  bool logprob = false;                           // also report log softmax(raw logits)[token]
  int32_t top_logprobs = 0;  // and the n most likely raw tokens (0..kMaxTopLogprobsPerToken)
};

// Log-probabilities of the next tokens of a row: targets[i] is the token that follows the
// row's i-th fed token, so a row with a ScoreSpec has one target per token.
struct ScoreSpec {
  absl::Span<const int32_t> targets;
  int32_t top_logprobs = 0;
};

struct TokenChoice {
  int32_t token = 0;
  double logprob = 0;  // set when SampleSpec::logprob or top_logprobs > 0
  std::vector<TokenLogProbEntry> top;
};

struct TargetScore {
  double logprob = 0;      // log softmax(raw logits)[target]
  bool is_argmax = false;  // target is the first index of the largest raw logit
  std::vector<TokenLogProbEntry> top;
};

inline constexpr int32_t kMaxTopLogprobsPerToken = 20;

// InvalidArgument naming the field when a spec cannot be run against `vocab` tokens.
absl::Status ValidateSampleSpec(const SampleSpec& spec, int64_t vocab);
absl::Status ValidateScoreSpec(const ScoreSpec& spec, int64_t expected_targets, int64_t vocab);

// Rule 1 in place on one row's logits.
void ApplyAdjustments(const SamplingParams& params, absl::Span<const LogitAdjustment> adjustments,
                      absl::Span<float> logits);
// Rules 2-3 on already adjusted logits.
int32_t DrawToken(const SamplingParams& params, absl::Span<const float> adjusted, uint64_t step);

// The whole choice (rules 1-4) from raw logits.
TokenChoice ChooseToken(const SampleSpec& spec, absl::Span<const float> logits);
TargetScore ScoreTarget(absl::Span<const float> logits, int32_t target, int32_t top_logprobs);

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SAMPLING_TOKEN_CHOICE_H_
