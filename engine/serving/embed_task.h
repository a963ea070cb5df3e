// An Embed request as the engine loop drives it: one sequence in one slot feeds the input in
// chunks; the chunks ask the backend for the final-normed hidden states the pooling needs (the
// last chunk's last position for kLast, every position for kMean and kAll), and the pooler
// folds them in. Nothing is generated, and the slot is released when the task ends.
//
// Threading: engine thread only (see task.h).
#ifndef XLSTM_ENGINE_SERVING_EMBED_TASK_H_
#define XLSTM_ENGINE_SERVING_EMBED_TASK_H_

#include <cstdint>
#include <vector>

#include "engine/serving/embedding_pooling.h"
#include "engine/serving/request.h"
#include "engine/serving/task.h"

namespace xlstm::engine {

class EmbedTask final : public Task {
 public:
  // `request` is valid (request_validation.h); `hidden_size` is the model's.
  EmbedTask(EmbedRequest request, int64_t hidden_size);

  int32_t slots_needed() const override { return 1; }
  void ListFeeds(std::vector<SequenceFeed>& feeds) const override;
  void AddToStep(int32_t sequence, int32_t tokens, StepBatch& step) override;
  absl::Status Absorb(int32_t sequence, int32_t tokens, const RowResult& result, SlotPool& pool,
                      Clock::time_point now) override;
  bool finished() const override { return feed_.remaining() == 0 && started_; }

 private:
  absl::Status Start(SlotPool& pool) override;
  void Deliver(absl::Status status, const RequestTimings& timings) override;

  EmbedRequest request_;
  PendingTokens feed_;
  EmbeddingPooler pooler_;
  bool started_ = false;
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SERVING_EMBED_TASK_H_
