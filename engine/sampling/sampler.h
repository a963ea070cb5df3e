// Sampling parameters, the counter-based draw, and the per-sequence record of which tokens the
// penalties apply to.
//
// Order of operations (as HF / vLLM): repetition penalty (on prompt and generated tokens),
// presence and frequency penalties (generated tokens), temperature, top-k, top-p, min-p, then a
// draw; the exact rules are in token_choice.h, where the host implementation lives (the CUDA
// backend runs the same rules on the device). Randomness is counter-based: the draw for the
// t-th generated token depends only on (seed, t), so a request's tokens never depend on what
// else shares its batch.
//
// Thread safety: one Sampler per sequence; not thread-safe.
#ifndef XLSTM_ENGINE_SAMPLING_SAMPLER_H_
#define XLSTM_ENGINE_SAMPLING_SAMPLER_H_

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace xlstm::engine {

struct SamplingParams {
  double temperature = 1.0;         // 0: greedy (argmax)
  int32_t top_k = 0;                // 0: no limit
  double top_p = 1.0;               // in (0, 1]
  double min_p = 0.0;               // in [0, 1]
  double repetition_penalty = 1.0;  // > 0; 1: off
  double presence_penalty = 0.0;
  double frequency_penalty = 0.0;
  uint64_t seed = 0;

  bool greedy() const { return temperature == 0.0; }
  // InvalidArgument naming the field and its limit.
  absl::Status Validate() const;
};

// A uniform double in [0, 1) from (seed, counter): splitmix64 mixing, 53 random bits.
double CounterUniform(uint64_t seed, uint64_t counter);

// A change to one token's logit before the draw (rule 1 in token_choice.h).
struct LogitAdjustment {
  int32_t token = 0;
  bool repeated = false;  // the repetition penalty applies (token seen in prompt or output)
  float subtract = 0.0f;  // presence_penalty + frequency_penalty * times generated
  bool banned = false;    // masked out (EOS and stop tokens before min_new_tokens)
};

// One sequence's sampling state: its parameters and the logit adjustments its history calls
// for (repetition penalty on prompt and output tokens, presence and frequency penalties on
// output tokens), kept up to date token by token so that each step only hands out a view.
class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // Records a token of the prompt (repetition penalty only) or one that was generated.
  void ObservePrompt(int32_t token);
  void ObserveGenerated(int32_t token);

  // The adjustments for the next draw, with `banned` tokens (e.g. EOS before min_new_tokens)
  // masked as well. Distinct tokens; valid until the next call on this Sampler.
  absl::Span<const LogitAdjustment> Adjustments(absl::Span<const int32_t> banned = {});

  // Host convenience: picks a token from raw `logits` [vocab] for generated token `step`.
  int32_t Sample(absl::Span<const float> logits, uint64_t step);

  const SamplingParams& params() const { return params_; }

 private:
  // The entry for `token`, added (with no effect yet) when missing.
  LogitAdjustment& Entry(int32_t token);

  SamplingParams params_;
  bool penalties_on_ = false;  // any penalty differs from its neutral value
  std::vector<LogitAdjustment> adjustments_;
  std::unordered_map<int32_t, size_t> index_;              // token -> position in adjustments_
  std::unordered_map<int32_t, int32_t> generated_counts_;  // for the frequency penalty
  std::vector<LogitAdjustment> with_bans_;                 // scratch for Adjustments(banned)
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SAMPLING_SAMPLER_H_
