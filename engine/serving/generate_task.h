// A Generate request as the engine loop drives it: sample 0 feeds the prompt (in chunks); the
// last chunk's logits give every sample its first token, and the prompt's state is copied into
// the other samples' slots; from then on each unfinished sample feeds its last token and draws
// the next. Tokens, text and the end go to the request's GenerateSink.
//
// Threading: engine thread only (see task.h).
#ifndef XLSTM_ENGINE_SERVING_GENERATE_TASK_H_
#define XLSTM_ENGINE_SERVING_GENERATE_TASK_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "engine/sampling/sampler.h"
#include "engine/serving/request.h"
#include "engine/serving/stop_matcher.h"
#include "engine/serving/task.h"

namespace xlstm::engine {

class GenerateTask final : public Task {
 public:
  // `request` is valid (request_validation.h). `eos_token_ids`: the model's EOS ids.
  GenerateTask(GenerateRequest request, std::vector<int32_t> eos_token_ids);

  int32_t slots_needed() const override { return request_.n; }
  void ListFeeds(std::vector<SequenceFeed>& feeds) const override;
  void AddToStep(int32_t sequence, int32_t tokens, StepBatch& step) override;
  absl::Status Absorb(int32_t sequence, int32_t tokens, const RowResult& result, SlotPool& pool,
                      Clock::time_point now) override;
  bool finished() const override;

 private:
  struct Sample {
    PendingTokens feed;  // the prompt (sample 0, until it is fed), then the last drawn token
    std::optional<Sampler> sampler;
    std::unique_ptr<TextDecoder> decoder;   // null: no text
    std::optional<StopStringMatcher> stop;  // only with stop strings
    int32_t generated = 0;
    bool done = false;
    FinishReason reason = FinishReason::kCancelled;
  };

  absl::Status Start(SlotPool& pool) override;
  void Deliver(absl::Status status, const RequestTimings& timings) override;

  // The draw of `sample`'s next token, for the backend.
  SampleSpec NextDraw(int32_t sample);
  // Takes the token the backend drew for `sample`, applies the stop rules and emits it.
  void Emit(int32_t sample, const TokenChoice& choice, Clock::time_point now);
  // Why a sample stops at `token` before looking at its text, if it does.
  std::optional<FinishReason> TokenStop(const Sample& sample, int32_t token) const;
  // The text `token` adds to `sample`'s stream, after stop strings (may end the sample).
  std::string TakeText(Sample& sample, int32_t token);

  GenerateRequest request_;
  const std::vector<int32_t> eos_token_ids_;
  std::vector<Sample> samples_;
  // Sample 0 has fed the whole prompt and every sample's slot holds the prompt's state. Before
  // that, only sample 0 feeds, and its last prompt chunk draws for all samples.
  bool prompt_fed_ = false;
  std::vector<int32_t> banned_;  // scratch for NextDraw
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SERVING_GENERATE_TASK_H_
