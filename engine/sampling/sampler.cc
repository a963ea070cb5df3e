#include "engine/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"

namespace xlstm::engine {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

absl::Status SamplingParams::Validate() const {
  if (!(temperature >= 0) || !std::isfinite(temperature)) {
    return absl::InvalidArgumentError(
        absl::StrCat("temperature is ", temperature, ", must be >= 0"));
  }
  if (top_k < 0)
    return absl::InvalidArgumentError(absl::StrCat("top_k is ", top_k, ", must be >= 0"));
  if (!(top_p > 0 && top_p <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("top_p is ", top_p, ", must be in (0, 1]"));
  }
  if (!(min_p >= 0 && min_p <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("min_p is ", min_p, ", must be in [0, 1]"));
  }
  if (!(repetition_penalty > 0) || !std::isfinite(repetition_penalty)) {
    return absl::InvalidArgumentError(
        absl::StrCat("repetition_penalty is ", repetition_penalty, ", must be > 0"));
  }
  for (auto [name, value] : {std::pair<const char*, double>{"presence_penalty", presence_penalty},
                             {"frequency_penalty", frequency_penalty}}) {
    if (!(value >= -2 && value <= 2)) {
      return absl::InvalidArgumentError(absl::StrCat(name, " is ", value, ", must be in [-2, 2]"));
    }
  }
  return absl::OkStatus();
}

double CounterUniform(uint64_t seed, uint64_t counter) {
  const uint64_t bits = SplitMix64(SplitMix64(seed) ^ SplitMix64(counter + 0x632be59bd9b4e019ull));
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

int32_t Sampler::Sample(absl::Span<const float> logits, uint64_t step) const {
  const size_t vocab = logits.size();
  std::vector<double> adjusted(logits.begin(), logits.end());
  if (params_.repetition_penalty != 1.0) {
    auto penalize = [&](int32_t token) {
      double& l = adjusted[token];
      l = l > 0 ? l / params_.repetition_penalty : l * params_.repetition_penalty;
    };
    for (const auto& [token, count] : prompt_counts_) penalize(token);
    for (const auto& [token, count] : generated_counts_) {
      if (prompt_counts_.count(token) == 0) penalize(token);
    }
  }
  for (const auto& [token, count] : generated_counts_) {
    adjusted[token] -= params_.presence_penalty + params_.frequency_penalty * count;
  }

  if (params_.greedy()) {
    size_t best = 0;
    for (size_t i = 1; i < vocab; ++i) {
      if (adjusted[i] > adjusted[best]) best = i;
    }
    return static_cast<int32_t>(best);
  }

  // Candidates sorted by logit (ties: lower id first), cut by top-k.
  std::vector<int32_t> ids(vocab);
  std::iota(ids.begin(), ids.end(), 0);
  const size_t k = params_.top_k > 0 ? std::min(vocab, static_cast<size_t>(params_.top_k)) : vocab;
  auto by_logit = [&](int32_t a, int32_t b) {
    return adjusted[a] > adjusted[b] || (adjusted[a] == adjusted[b] && a < b);
  };
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), by_logit);
  ids.resize(k);

  std::vector<double> probs(k);
  const double max_logit = adjusted[ids[0]] / params_.temperature;
  double total = 0;
  for (size_t i = 0; i < k; ++i) {
    probs[i] = std::exp(adjusted[ids[i]] / params_.temperature - max_logit);
    total += probs[i];
  }
  for (double& p : probs) p /= total;

  size_t keep = k;
  if (params_.top_p < 1.0) {
    double cumulative = 0;
    for (size_t i = 0; i < k; ++i) {
      cumulative += probs[i];
      if (cumulative >= params_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (params_.min_p > 0.0) {
    const double threshold = params_.min_p * probs[0];
    size_t n = 1;
    while (n < keep && probs[n] >= threshold) ++n;
    keep = n;
  }
  double kept_total = 0;
  for (size_t i = 0; i < keep; ++i) kept_total += probs[i];
  const double u = CounterUniform(params_.seed, step) * kept_total;
  double cumulative = 0;
  for (size_t i = 0; i < keep; ++i) {
    cumulative += probs[i];
    if (u < cumulative) return ids[i];
  }
  return ids[keep - 1];
}

}  // namespace xlstm::engine
