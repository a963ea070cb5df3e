#include "engine/serving/scheduler.h"

#include <algorithm>

namespace xlstm::engine {

std::vector<PlannedChunk> PlanStep(absl::Span<const PlanCandidate> candidates,
                                   int32_t step_token_budget) {
  std::vector<PlannedChunk> plan;
  int32_t left = step_token_budget;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (!candidates[i].decode) continue;
    plan.push_back({i, 1});
    --left;
  }
  for (size_t i = 0; i < candidates.size() && left > 0; ++i) {
    if (candidates[i].decode || candidates[i].remaining <= 0) continue;
    const int32_t take = std::min(candidates[i].remaining, left);
    plan.push_back({i, take});
    left -= take;
  }
  return plan;
}

}  // namespace xlstm::engine
