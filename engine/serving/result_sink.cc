#include "engine/serving/result_sink.h"

#include <utility>

namespace xlstm::engine {
namespace {

size_t TokenBytes(const GeneratedToken& token) {
  return sizeof(GeneratedToken) + sizeof(Clock::time_point) +
         token.top.size() * sizeof(TokenLogProbEntry);
}

}  // namespace

GenerateSink::GenerateSink(int32_t samples, std::function<void()> on_ready)
    : on_ready_(std::move(on_ready)) {
  const size_t n = samples < 1 ? 1 : static_cast<size_t>(samples);
  pending_.resize(n);
  has_pending_.assign(n, false);
  for (size_t i = 0; i < n; ++i) pending_[i].sample = static_cast<int32_t>(i);
}

void GenerateSink::Append(SampleUpdate update) {
  bool armed_before;
  {
    absl::MutexLock lock(&mu_);
    const size_t i = static_cast<size_t>(update.sample);
    if (i >= pending_.size()) {
      pending_.resize(i + 1);
      has_pending_.resize(i + 1, false);
      pending_[i].sample = update.sample;
    }
    SampleChunk& chunk = pending_[i];
    for (GeneratedToken& t : update.tokens) {
      pending_bytes_ += TokenBytes(t);
      chunk.tokens.push_back(std::move(t));
      chunk.token_times.push_back(update.time);
    }
    pending_bytes_ += update.text.size();
    chunk.text += update.text;
    if (update.finish) chunk.finish = update.finish;
    has_pending_[i] = true;
    armed_before = armed_;
    armed_ = false;
  }
  NotifyIfArmed(armed_before);
}

void GenerateSink::Finish(GenerateDone done) {
  bool armed_before;
  {
    absl::MutexLock lock(&mu_);
    done_ = std::move(done);
    armed_before = armed_;
    armed_ = false;
  }
  NotifyIfArmed(armed_before);
}

void GenerateSink::NotifyIfArmed(bool armed_before) {
  if (armed_before && on_ready_) on_ready_();
}

SinkBatch GenerateSink::Take() {
  absl::MutexLock lock(&mu_);
  SinkBatch batch;
  for (size_t i = 0; i < pending_.size(); ++i) {
    if (!has_pending_[i]) continue;
    SampleChunk fresh;
    fresh.sample = pending_[i].sample;
    batch.chunks.push_back(std::exchange(pending_[i], std::move(fresh)));
    has_pending_[i] = false;
  }
  if (done_ && !done_taken_) {
    batch.done = std::move(done_);
    done_taken_ = true;
  }
  pending_bytes_ = 0;
  armed_ = batch.empty();
  return batch;
}

size_t GenerateSink::pending_bytes() const {
  absl::MutexLock lock(&mu_);
  return pending_bytes_;
}

bool GenerateSink::finished() const {
  absl::MutexLock lock(&mu_);
  return done_.has_value() || done_taken_;
}

}  // namespace xlstm::engine
