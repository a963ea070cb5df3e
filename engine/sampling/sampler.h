// Chooses the next token of one sequence from its logits.
//
// Order of operations (as HF / vLLM): repetition penalty (on prompt and generated tokens),
// presence and frequency penalties (generated tokens), temperature, top-k, top-p, min-p, then a
// draw. Randomness is counter-based: the draw for the t-th generated token depends only on
// (seed, t), so a request's tokens never depend on what else shares its batch.
//
// Thread safety: one Sampler per sequence; not thread-safe.
#ifndef XLSTM_ENGINE_SAMPLING_SAMPLER_H_
#define XLSTM_ENGINE_SAMPLING_SAMPLER_H_

#include <cstdint>
#include <string>
#include <unordered_map>

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

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params) : params_(params) {}

  // Records a token of the prompt (repetition penalty only) or one that was generated.
  void ObservePrompt(int32_t token) { ++prompt_counts_[token]; }
  void ObserveGenerated(int32_t token) { ++generated_counts_[token]; }

  // Picks a token from `logits` [vocab]; `step` is the index of the token being generated.
  int32_t Sample(absl::Span<const float> logits, uint64_t step) const;

  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  std::unordered_map<int32_t, int32_t> prompt_counts_;
  std::unordered_map<int32_t, int32_t> generated_counts_;
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SAMPLING_SAMPLER_H_
