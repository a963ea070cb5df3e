#include "engine/sampling/logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace xlstm::engine {

double LogSumExp(absl::Span<const float> logits) {
  double max_logit = -std::numeric_limits<double>::infinity();
  for (float l : logits) max_logit = std::max(max_logit, static_cast<double>(l));
  if (!std::isfinite(max_logit)) return max_logit;
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - max_logit);
  return max_logit + std::log(sum);
}

double TokenLogProb(absl::Span<const float> logits, int32_t token) {
  return static_cast<double>(logits[token]) - LogSumExp(logits);
}

int32_t Argmax(absl::Span<const float> logits) {
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = static_cast<int32_t>(i);
  }
  return best;
}

std::vector<TokenLogProbEntry> TopLogProbs(absl::Span<const float> logits, int n) {
  const double lse = LogSumExp(logits);
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  const size_t k = std::min(ids.size(), static_cast<size_t>(std::max(n, 0)));
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  std::vector<TokenLogProbEntry> out;
  out.reserve(k);
  for (size_t i = 0; i < k; ++i) {
    out.push_back({ids[i], static_cast<double>(logits[ids[i]]) - lse});
  }
  return out;
}

}  // namespace xlstm::engine
