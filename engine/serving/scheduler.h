// Step planning under a per-step token budget: which sequences run this step and how many
// tokens each feeds. Pure function of its inputs, so that it is unit-tested without a backend.
//
// Policy: every decoding sequence advances exactly one token (decode latency is what users
// feel); the budget left after them goes to prefill / scoring chunks in the order given (the
// engine passes them FCFS by admission), each chunk as large as the rest of the budget allows.
#ifndef XLSTM_ENGINE_SERVING_SCHEDULER_H_
#define XLSTM_ENGINE_SERVING_SCHEDULER_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace xlstm::engine {

struct PlanCandidate {
  int32_t remaining = 0;  // tokens this sequence still has to feed (>= 1)
  bool decode = false;    // a decoding sequence: always one token
};

struct PlannedChunk {
  size_t candidate = 0;  // index into the candidates
  int32_t tokens = 0;    // >= 1
};

// Decodes first (all of them, even past the budget), then chunks for the others while the
// budget lasts. `step_token_budget` >= 1.
std::vector<PlannedChunk> PlanStep(absl::Span<const PlanCandidate> candidates,
                                   int32_t step_token_budget);

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SERVING_SCHEDULER_H_
