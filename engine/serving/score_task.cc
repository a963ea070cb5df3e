#include "engine/serving/score_task.h"

#include <algorithm>
#include <utility>

#include "common/status_macros.h"

namespace xlstm::engine {

ScoreTask::ScoreTask(ScoreRequest request)
    : Task(request.arrival, request.deadline), request_(std::move(request)) {}

absl::Status ScoreTask::Start(SlotPool& pool) {
  continuations_.resize(request_.continuations.size());
  continuations_[0].feed.Assign(
      std::vector<int32_t>(request_.context.begin(), request_.context.end() - 1));
  // A one-token context leaves nothing to feed before the continuations.
  if (continuations_[0].feed.remaining() == 0) return StartContinuations(pool);
  return absl::OkStatus();
}

absl::Status ScoreTask::StartContinuations(SlotPool& pool) {
  const int32_t last = request_.context.back();
  for (size_t j = 0; j < continuations_.size(); ++j) {
    if (j > 0) XLSTM_RETURN_IF_ERROR(pool.Copy(slots()[0], slots()[j]));
    const std::vector<int32_t>& targets = request_.continuations[j];
    std::vector<int32_t> feed = {last};
    feed.insert(feed.end(), targets.begin(), targets.end() - 1);
    continuations_[j].feed.Assign(std::move(feed));
  }
  context_fed_ = true;
  return absl::OkStatus();
}

void ScoreTask::ListFeeds(std::vector<SequenceFeed>& feeds) const {
  for (size_t j = 0; j < continuations_.size(); ++j) {
    const int32_t remaining = continuations_[j].feed.remaining();
    if (remaining > 0) feeds.push_back({static_cast<int32_t>(j), remaining, false});
  }
}

void ScoreTask::AddToStep(int32_t sequence, int32_t tokens, StepBatch& step) {
  const Continuation& c = continuations_[sequence];
  step.AddRow(slots()[sequence], c.feed.Next(tokens));
  if (!context_fed_) return;  // a context chunk only advances the state
  step.SetScore(absl::MakeConstSpan(request_.continuations[sequence]).subspan(c.scored, tokens),
                request_.top_logprobs);
}

absl::Status ScoreTask::Absorb(int32_t sequence, int32_t tokens, const RowResult& result,
                               SlotPool& pool, Clock::time_point now) {
  Continuation& c = continuations_[sequence];
  c.feed.Consume(tokens);
  if (!context_fed_) {
    if (c.feed.remaining() == 0) return StartContinuations(pool);
    return absl::OkStatus();
  }
  NoteFirstOutput(now);
  for (TargetScore& target : result.scores) {
    c.score.logprobs.push_back(target.logprob);
    c.score.sum += target.logprob;
    c.score.is_greedy = c.score.is_greedy && target.is_argmax;
    if (request_.top_logprobs > 0) c.score.top.push_back(std::move(target.top));
    ++c.scored;
  }
  return absl::OkStatus();
}

bool ScoreTask::finished() const {
  if (!context_fed_) return false;
  for (size_t j = 0; j < continuations_.size(); ++j) {
    if (continuations_[j].scored < request_.continuations[j].size()) return false;
  }
  return true;
}

void ScoreTask::Deliver(absl::Status status, const RequestTimings& timings) {
  ScoreDone done;
  done.status = std::move(status);
  done.prompt_tokens = static_cast<int32_t>(request_.context.size());
  for (const std::vector<int32_t>& c : request_.continuations) {
    done.prompt_tokens += static_cast<int32_t>(c.size());
  }
  if (done.status.ok()) {
    for (Continuation& c : continuations_) done.continuations.push_back(std::move(c.score));
  }
  done.timings = timings;
  request_.on_done(std::move(done));
}

}  // namespace xlstm::engine
