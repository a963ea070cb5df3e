#include "engine/serving/step_batch.h"

#include "common/status_macros.h"

namespace xlstm::engine {

void StepBatch::Clear() {
  rows_.clear();
  samples_.clear();
  scores_.clear();
  forward_rows_.clear();
  scored_tokens_ = 0;
  hidden_rows_ = 0;
  tokens_ = 0;
}

void StepBatch::AddRow(int32_t slot, absl::Span<const int32_t> tokens) {
  Row row;
  row.slot = slot;
  row.tokens = tokens;
  row.first_sample = samples_.size();
  rows_.push_back(row);
  tokens_ += static_cast<int32_t>(tokens.size());
}

void StepBatch::AddSample(const SampleSpec& spec) {
  XLSTM_CHECK(!rows_.empty() && rows_.back().score < 0 && rows_.back().hidden == LogitsMode::kNone);
  samples_.push_back(spec);
  ++rows_.back().num_samples;
}

void StepBatch::SetScore(absl::Span<const int32_t> targets, int32_t top_logprobs) {
  Row& row = rows_.back();
  XLSTM_CHECK(row.num_samples == 0 && row.score < 0 && row.hidden == LogitsMode::kNone &&
              targets.size() == row.tokens.size());
  row.score = static_cast<int32_t>(scores_.size());
  row.first_score = scored_tokens_;
  scores_.push_back({targets, top_logprobs});
  scored_tokens_ += targets.size();
}

void StepBatch::SetHidden(LogitsMode positions) {
  XLSTM_CHECK(!rows_.empty());
  Row& row = rows_.back();
  XLSTM_CHECK(row.num_samples == 0 && row.score < 0 && row.hidden == LogitsMode::kNone);
  row.hidden = positions;
  row.first_hidden = hidden_rows_;
  if (positions == LogitsMode::kAll) {
    hidden_rows_ += static_cast<int64_t>(row.tokens.size());
  } else if (positions == LogitsMode::kLast) {
    ++hidden_rows_;
  }
}

absl::Span<const ForwardRow> StepBatch::Rows() {
  forward_rows_.clear();
  for (const Row& row : rows_) {
    ForwardRow f{row.slot, row.tokens, LogitsMode::kNone};
    f.samples = absl::MakeConstSpan(samples_).subspan(row.first_sample, row.num_samples);
    if (row.score >= 0) f.score = &scores_[static_cast<size_t>(row.score)];
    f.hidden = row.hidden;
    forward_rows_.push_back(f);
  }
  return forward_rows_;
}

RowResult StepBatch::ResultOf(size_t row, ForwardOutput& out) const {
  const Row& r = rows_[row];
  RowResult result;
  result.samples = absl::MakeConstSpan(out.samples).subspan(r.first_sample, r.num_samples);
  if (r.score >= 0) {
    result.scores = absl::MakeSpan(out.scores).subspan(r.first_score, r.tokens.size());
  }
  if (r.hidden != LogitsMode::kNone && hidden_rows_ > 0) {
    // The backend returned hidden_rows() rows of equal width (checked by the loop).
    const size_t dim = out.hidden.size() / static_cast<size_t>(hidden_rows_);
    const size_t n = r.hidden == LogitsMode::kAll ? r.tokens.size() : 1;
    result.hidden =
        absl::MakeConstSpan(out.hidden).subspan(static_cast<size_t>(r.first_hidden) * dim, n * dim);
  }
  return result;
}

}  // namespace xlstm::engine
