#include "engine/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/sampling/token_choice.h"

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

Sampler::Sampler(const SamplingParams& params)
    : params_(params),
      penalties_on_(params.repetition_penalty != 1.0 || params.presence_penalty != 0.0 ||
                    params.frequency_penalty != 0.0) {}

LogitAdjustment& Sampler::Entry(int32_t token) {
  auto [it, inserted] = index_.try_emplace(token, adjustments_.size());
  if (inserted) adjustments_.push_back({token, false, 0.0f, false});
  return adjustments_[it->second];
}

void Sampler::ObservePrompt(int32_t token) {
  if (penalties_on_) Entry(token).repeated = true;
}

void Sampler::ObserveGenerated(int32_t token) {
  if (!penalties_on_) return;
  const int32_t count = ++generated_counts_[token];
  LogitAdjustment& a = Entry(token);
  a.repeated = true;
  a.subtract = static_cast<float>(params_.presence_penalty + params_.frequency_penalty * count);
}

absl::Span<const LogitAdjustment> Sampler::Adjustments(absl::Span<const int32_t> banned) {
  if (banned.empty()) return adjustments_;
  with_bans_ = adjustments_;
  for (int32_t token : banned) {
    auto it = index_.find(token);
    if (it != index_.end()) {
      with_bans_[it->second].banned = true;
    } else if (std::none_of(with_bans_.begin() + adjustments_.size(), with_bans_.end(),
                            [token](const LogitAdjustment& a) { return a.token == token; })) {
      with_bans_.push_back({token, false, 0.0f, true});
    }
  }
  return with_bans_;
}

int32_t Sampler::Sample(absl::Span<const float> logits, uint64_t step) {
  SampleSpec spec;
  spec.params = params_;
  spec.step = step;
  spec.adjustments = Adjustments();
  return ChooseToken(spec, logits).token;
}

}  // namespace xlstm::engine
