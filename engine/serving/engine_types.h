// The Engine's options, its counters and its per-step observer: the types that the facade
// (engine.h) and the loop (engine_loop.h) share. Include engine.h to use the engine.
#ifndef XLSTM_ENGINE_SERVING_ENGINE_TYPES_H_
#define XLSTM_ENGINE_SERVING_ENGINE_TYPES_H_

#include <cstdint>
#include <string>

#include "engine/serving/request_validation.h"

namespace xlstm::engine {

struct EngineOptions {
  int32_t max_queue = 256;          // waiting requests; beyond: RESOURCE_EXHAUSTED at once
  int32_t step_token_budget = 512;  // tokens fed per step (decodes always run)
  RequestLimits limits;             // checked on Submit (the server checks the same first)
};

struct EngineStats {
  int32_t running = 0;  // admitted (holding slots)
  int32_t waiting = 0;  // submitted, not admitted yet
  int32_t slots_used = 0;
  int32_t slots_total = 0;
  uint64_t steps = 0;
  bool draining = false;
  bool failed = false;  // a backend fault ended the engine; see fault
  std::string fault;
};

// Per-step measurements, reported on the engine thread after each forward step. The phases
// follow each other and start after any idle wait, so they add up to at most the step's wall
// time.
struct StepStats {
  double schedule_seconds = 0;  // inbox, cancels, deadlines, admission, planning
  double forward_seconds = 0;   // Backend::Forward
  double sample_seconds = 0;    // absorbing results: stop checks, emission, scores
  int32_t batch_rows = 0;       // sequences in the step
  int32_t tokens = 0;           // tokens fed
};

// Observes the loop (metrics). Called on the engine thread; must not block.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void OnStep(const StepStats& stats) = 0;
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SERVING_ENGINE_TYPES_H_
