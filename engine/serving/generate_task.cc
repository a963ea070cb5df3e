#include "engine/serving/generate_task.h"

#include <algorithm>
#include <string>
#include <utility>

#include "engine/serving/result_sink.h"
#include "common/status_macros.h"

namespace xlstm::engine {
namespace {

// Sample i > 0 of an n > 1 request draws from its own stream.
uint64_t SampleSeed(uint64_t seed, int32_t sample) {
  return seed + static_cast<uint64_t>(sample) * 0x9E3779B97F4A7C15ULL;
}

bool Contains(const std::vector<int32_t>& ids, int32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

GenerateTask::GenerateTask(GenerateRequest request, std::vector<int32_t> eos_token_ids)
    : Task(request.arrival, request.deadline),
      request_(std::move(request)),
      eos_token_ids_(std::move(eos_token_ids)) {}

absl::Status GenerateTask::Start(SlotPool&) {
  samples_.resize(static_cast<size_t>(request_.n));
  for (int32_t i = 0; i < request_.n; ++i) {
    Sample& s = samples_[i];
    SamplingParams params = request_.sampling;
    if (i > 0) params.seed = SampleSeed(params.seed, i);
    s.sampler.emplace(params);
    for (int32_t t : request_.prompt) s.sampler->ObservePrompt(t);
    if (request_.make_decoder) s.decoder = request_.make_decoder();
    if (!request_.stopping.stop_strings.empty()) {
      s.stop.emplace(request_.stopping.stop_strings, request_.stopping.include_stop_str_in_output);
    }
    if (request_.stopping.max_new_tokens == 0) {  // nothing to generate: done at admission
      s.done = true;
      s.reason = FinishReason::kLength;
    }
  }
  samples_[0].feed.Assign(request_.prompt);
  return absl::OkStatus();
}

void GenerateTask::ListFeeds(std::vector<SequenceFeed>& feeds) const {
  for (size_t i = 0; i < samples_.size(); ++i) {
    const Sample& s = samples_[i];
    if (s.done || s.feed.remaining() == 0) continue;
    feeds.push_back({static_cast<int32_t>(i), s.feed.remaining(), prompt_fed_});
  }
}

void GenerateTask::AddToStep(int32_t sequence, int32_t tokens, StepBatch& step) {
  const Sample& s = samples_[sequence];
  step.AddRow(slots()[sequence], s.feed.Next(tokens));
  if (tokens < s.feed.remaining()) return;  // a prompt chunk that is not the last: no draw
  if (prompt_fed_) {
    step.AddSample(NextDraw(sequence));
  } else {
    for (int32_t i = 0; i < request_.n; ++i) step.AddSample(NextDraw(i));
  }
}

absl::Status GenerateTask::Absorb(int32_t sequence, int32_t tokens, const RowResult& result,
                                  SlotPool& pool, Clock::time_point now) {
  samples_[sequence].feed.Consume(tokens);
  if (samples_[sequence].feed.remaining() > 0) return absl::OkStatus();
  if (prompt_fed_) {
    Emit(sequence, result.samples[0], now);
    return absl::OkStatus();
  }
  for (size_t i = 1; i < samples_.size(); ++i) {
    XLSTM_RETURN_IF_ERROR(pool.Copy(slots()[0], slots()[i]));
  }
  prompt_fed_ = true;
  NoteFirstOutput(now);
  for (int32_t i = 0; i < request_.n; ++i) Emit(i, result.samples[i], now);
  return absl::OkStatus();
}

bool GenerateTask::finished() const {
  return std::all_of(samples_.begin(), samples_.end(), [](const Sample& s) { return s.done; });
}

SampleSpec GenerateTask::NextDraw(int32_t sample) {
  Sample& s = samples_[sample];
  const StoppingParams& stopping = request_.stopping;
  banned_.clear();
  if (s.generated < stopping.min_new_tokens) {  // too early to stop: mask what would stop
    if (!stopping.ignore_eos) banned_ = eos_token_ids_;
    banned_.insert(banned_.end(), stopping.stop_token_ids.begin(), stopping.stop_token_ids.end());
  }
  SampleSpec spec;
  spec.params = s.sampler->params();
  spec.step = static_cast<uint64_t>(s.generated);
  spec.adjustments = s.sampler->Adjustments(banned_);
  spec.logprob = request_.logprobs || request_.top_logprobs > 0;
  spec.top_logprobs = request_.top_logprobs;
  return spec;
}

std::optional<FinishReason> GenerateTask::TokenStop(const Sample& sample, int32_t token) const {
  const StoppingParams& stopping = request_.stopping;
  if (!stopping.ignore_eos && Contains(eos_token_ids_, token)) return FinishReason::kEosToken;
  if (Contains(stopping.stop_token_ids, token)) return FinishReason::kStopSequence;
  if (sample.generated >= stopping.max_new_tokens) return FinishReason::kLength;
  return std::nullopt;
}

std::string GenerateTask::TakeText(Sample& sample, int32_t token) {
  std::string text;
  if (sample.decoder) {
    text = sample.decoder->Add(token);
    if (sample.done) text += sample.decoder->Finish();
  }
  if (!sample.stop) return text;
  StopStringMatcher::Result match = sample.stop->Add(text);
  if (match.stopped) {
    sample.done = true;
    sample.reason = FinishReason::kStopSequence;
  } else if (sample.done) {
    match.emit += sample.stop->Flush();  // held-back text of a stream that ends otherwise
  }
  return std::move(match.emit);
}

void GenerateTask::Emit(int32_t sample, const TokenChoice& choice, Clock::time_point now) {
  Sample& s = samples_[sample];
  const int32_t token = choice.token;
  s.sampler->ObserveGenerated(token);
  ++s.generated;
  if (std::optional<FinishReason> stop = TokenStop(s, token)) {
    s.done = true;
    s.reason = *stop;
  }
  SampleUpdate update;
  update.sample = sample;
  GeneratedToken out;
  out.id = token;
  if (request_.logprobs || request_.top_logprobs > 0) out.logprob = choice.logprob;
  if (request_.top_logprobs > 0) out.top = choice.top;
  update.tokens.push_back(std::move(out));
  update.text = TakeText(s, token);
  if (s.done) {
    update.finish = s.reason;
  } else {
    s.feed.Assign({token});
  }
  update.time = now;
  request_.sink->Append(std::move(update));
}

void GenerateTask::Deliver(absl::Status status, const RequestTimings& timings) {
  GenerateDone done;
  done.status = std::move(status);
  done.prompt_tokens = static_cast<int32_t>(request_.prompt.size());
  done.finish.assign(static_cast<size_t>(request_.n), FinishReason::kCancelled);
  for (size_t i = 0; i < samples_.size(); ++i) {
    if (samples_[i].done) done.finish[i] = samples_[i].reason;
    done.generated_tokens += samples_[i].generated;
  }
  done.timings = timings;
  request_.sink->Finish(std::move(done));
}

}  // namespace xlstm::engine
