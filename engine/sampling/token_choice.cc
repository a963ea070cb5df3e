#include "engine/sampling/token_choice.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace xlstm::engine {

absl::Status ValidateSampleSpec(const SampleSpec& spec, int64_t vocab) {
  if (absl::Status s = spec.params.Validate(); !s.ok()) return s;
  if (spec.top_logprobs < 0 || spec.top_logprobs > kMaxTopLogprobsPerToken) {
    return absl::InvalidArgumentError(absl::StrCat(
        "top_logprobs = ", spec.top_logprobs, " is outside [0, ", kMaxTopLogprobsPerToken, "]"));
  }
  for (size_t i = 0; i < spec.adjustments.size(); ++i) {
    const int32_t t = spec.adjustments[i].token;
    if (t < 0 || t >= vocab) {
      return absl::InvalidArgumentError(absl::StrCat(
          "logit adjustment ", i, ": token ", t, " is outside the vocabulary [0, ", vocab, ")"));
    }
    if (!std::isfinite(spec.adjustments[i].subtract)) {
      return absl::InvalidArgumentError(
          absl::StrCat("logit adjustment ", i, ": subtract is not finite"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateScoreSpec(const ScoreSpec& spec, int64_t expected_targets, int64_t vocab) {
  if (static_cast<int64_t>(spec.targets.size()) != expected_targets) {
    return absl::InvalidArgumentError(absl::StrCat("score: ", spec.targets.size(), " targets for ",
                                                   expected_targets,
                                                   " tokens (one target per token)"));
  }
  for (size_t i = 0; i < spec.targets.size(); ++i) {
    if (spec.targets[i] < 0 || spec.targets[i] >= vocab) {
      return absl::InvalidArgumentError(absl::StrCat("score: target ", i, " = ", spec.targets[i],
                                                     " is outside the vocabulary [0, ", vocab,
                                                     ")"));
    }
  }
  if (spec.top_logprobs < 0 || spec.top_logprobs > kMaxTopLogprobsPerToken) {
    return absl::InvalidArgumentError(absl::StrCat(
        "top_logprobs = ", spec.top_logprobs, " is outside [0, ", kMaxTopLogprobsPerToken, "]"));
  }
  return absl::OkStatus();
}

void ApplyAdjustments(const SamplingParams& params, absl::Span<const LogitAdjustment> adjustments,
                      absl::Span<float> logits) {
  const float rp = static_cast<float>(params.repetition_penalty);
  for (const LogitAdjustment& a : adjustments) {
    float l = logits[a.token];
    if (a.repeated && rp != 1.0f) l = l > 0 ? l / rp : l * rp;
    l -= a.subtract;
    if (a.banned) l = -std::numeric_limits<float>::infinity();
    logits[a.token] = l;
  }
}

int32_t DrawToken(const SamplingParams& params, absl::Span<const float> adjusted, uint64_t step) {
  const size_t vocab = adjusted.size();
  if (params.greedy()) {
    size_t best = 0;
    for (size_t i = 1; i < vocab; ++i) {
      if (adjusted[i] > adjusted[best]) best = i;
    }
    return static_cast<int32_t>(best);
  }

  // Candidates by (logit desc, id asc), cut by top-k.
  std::vector<int32_t> ids(vocab);
  std::iota(ids.begin(), ids.end(), 0);
  const size_t k = params.top_k > 0 ? std::min(vocab, static_cast<size_t>(params.top_k)) : vocab;
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
    return adjusted[a] > adjusted[b] || (adjusted[a] == adjusted[b] && a < b);
  });
  const double inv_t = 1.0 / params.temperature;
  const double top = static_cast<double>(adjusted[ids[0]]) * inv_t;
  if (!std::isfinite(top)) return ids[0];  // every candidate masked: nothing to weigh

  std::vector<double> probs(k);
  double total = 0;
  for (size_t i = 0; i < k; ++i) {
    probs[i] = std::exp(static_cast<double>(adjusted[ids[i]]) * inv_t - top);
    total += probs[i];
  }
  for (double& p : probs) p /= total;

  size_t keep = k;
  if (params.top_p < 1.0) {
    double cumulative = 0;
    for (size_t i = 0; i < k; ++i) {
      cumulative += probs[i];
      if (cumulative >= params.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (params.min_p > 0.0) {
    const double threshold = params.min_p * probs[0];
    size_t n = 1;
    while (n < keep && probs[n] >= threshold) ++n;
    keep = n;
  }
  while (keep > 1 && probs[keep - 1] == 0.0) --keep;  // masked tokens are never drawn

  double kept_total = 0;
  for (size_t i = 0; i < keep; ++i) kept_total += probs[i];
  const double u = CounterUniform(params.seed, step) * kept_total;
  double cumulative = 0;
  for (size_t i = 0; i < keep; ++i) {
    cumulative += probs[i];
    if (u < cumulative) return ids[i];
  }
  return ids[keep - 1];
}

TokenChoice ChooseToken(const SampleSpec& spec, absl::Span<const float> logits) {
  TokenChoice choice;
  if (spec.adjustments.empty()) {
    choice.token = DrawToken(spec.params, logits, spec.step);
  } else {
    std::vector<float> adjusted(logits.begin(), logits.end());
    ApplyAdjustments(spec.params, spec.adjustments, absl::MakeSpan(adjusted));
    choice.token = DrawToken(spec.params, adjusted, spec.step);
  }
  if (spec.logprob || spec.top_logprobs > 0) choice.logprob = TokenLogProb(logits, choice.token);
  if (spec.top_logprobs > 0) choice.top = TopLogProbs(logits, spec.top_logprobs);
  return choice;
}

TargetScore ScoreTarget(absl::Span<const float> logits, int32_t target, int32_t top_logprobs) {
  TargetScore score;
  score.logprob = TokenLogProb(logits, target);
  score.is_argmax = Argmax(logits) == target;
  if (top_logprobs > 0) score.top = TopLogProbs(logits, top_logprobs);
  return score;
}

}  // namespace xlstm::engine
