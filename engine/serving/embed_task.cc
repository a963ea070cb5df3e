#include "engine/serving/embed_task.h"

#include <utility>

namespace xlstm::engine {

EmbedTask::EmbedTask(EmbedRequest request, int64_t hidden_size)
    : Task(request.arrival, request.deadline),
      request_(std::move(request)),
      pooler_(request_.pooling, hidden_size) {}

absl::Status EmbedTask::Start(SlotPool& pool) {
  feed_.Assign(request_.input);
  started_ = true;
  return absl::OkStatus();
}

void EmbedTask::ListFeeds(std::vector<SequenceFeed>& feeds) const {
  if (feed_.remaining() > 0) feeds.push_back({0, feed_.remaining(), false});
}

void EmbedTask::AddToStep(int32_t sequence, int32_t tokens, StepBatch& step) {
  step.AddRow(slots()[0], feed_.Next(tokens));
  if (request_.pooling != Pooling::kLast) {
    step.SetHidden(LogitsMode::kAll);
  } else if (tokens == feed_.remaining()) {
    // Only the input's very last position counts; earlier chunks only advance the state.
    step.SetHidden(LogitsMode::kLast);
  }
}

absl::Status EmbedTask::Absorb(int32_t sequence, int32_t tokens, const RowResult& result,
                               SlotPool& pool, Clock::time_point now) {
  feed_.Consume(tokens);
  if (!result.hidden.empty()) {
    NoteFirstOutput(now);
    pooler_.Add(result.hidden);
  }
  return absl::OkStatus();
}

void EmbedTask::Deliver(absl::Status status, const RequestTimings& timings) {
  EmbedDone done;
  done.status = std::move(status);
  done.prompt_tokens = static_cast<int32_t>(request_.input.size());
  if (done.status.ok()) done.values = pooler_.Finish(request_.normalize, done.positions);
  done.timings = timings;
  request_.on_done(std::move(done));
}

}  // namespace xlstm::engine
