// A Score request as the engine loop drives it: sequence 0 feeds the context but its last token;
// then the context's state is copied into every continuation's slot, and continuation j feeds
// (context.back(), continuation[:-1]) asking for the log-probs of the continuation's tokens.
// The result goes to the request's on_done.
//
// Threading: engine thread only (see task.h).
#ifndef XLSTM_ENGINE_SERVING_SCORE_TASK_H_
#define XLSTM_ENGINE_SERVING_SCORE_TASK_H_

#include <cstdint>
#include <vector>

#include "engine/serving/request.h"
#include "engine/serving/task.h"

namespace xlstm::engine {

class ScoreTask final : public Task {
 public:
  // `request` is valid (request_validation.h).
  explicit ScoreTask(ScoreRequest request);

  int32_t slots_needed() const override {
    return static_cast<int32_t>(request_.continuations.size());
  }
  void ListFeeds(std::vector<SequenceFeed>& feeds) const override;
  void AddToStep(int32_t sequence, int32_t tokens, StepBatch& step) override;
  absl::Status Absorb(int32_t sequence, int32_t tokens, const RowResult& result, SlotPool& pool,
                      Clock::time_point now) override;
  bool finished() const override;

 private:
  struct Continuation {
    PendingTokens feed;  // sequence 0: the context first
    size_t scored = 0;   // targets (the continuation's tokens) scored so far
    ContinuationScore score;
  };

  absl::Status Start(SlotPool& pool) override;
  void Deliver(absl::Status status, const RequestTimings& timings) override;
  // The context is fed: copies its state and starts every continuation.
  absl::Status StartContinuations(SlotPool& pool);

  ScoreRequest request_;
  std::vector<Continuation> continuations_;
  bool context_fed_ = false;
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SERVING_SCORE_TASK_H_
