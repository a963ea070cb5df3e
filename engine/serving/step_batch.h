// One backend step as the tasks build it: rows (a slot and the tokens it is fed) and what each
// row asks for (draws, or the log-probs of targets); after Backend::Forward, each row's share of
// the output (draws, scores or hidden states). Keeps the specs that ForwardRow points into alive,
// and lays the rows out only once every spec is in, so that no span into a growing vector is handed
// out early.
//
// Threading: engine thread only.
#ifndef XLSTM_ENGINE_SERVING_STEP_BATCH_H_
#define XLSTM_ENGINE_SERVING_STEP_BATCH_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "engine/backend.h"

namespace xlstm::engine {

// A row's share of ForwardOutput.
struct RowResult {
  absl::Span<const TokenChoice> samples;  // one per AddSample, in order
  absl::Span<TargetScore> scores;         // one per target of SetScore (the task may move from it)
  absl::Span<const float> hidden;         // SetHidden's rows, [1 or tokens, hidden_size]
};

class StepBatch {
 public:
  void Clear();

  // Starts a row: `slot` is fed `tokens`, which must stay valid until the results are absorbed.
  void AddRow(int32_t slot, absl::Span<const int32_t> tokens);
  // What the current row asks for: a draw from its last position (several for the samples of
  // one prompt), or the log-probs of `targets` (one per fed token). At most one kind per row.
  void AddSample(const SampleSpec& spec);
  void SetScore(absl::Span<const int32_t> targets, int32_t top_logprobs);
  // Or the final-normed hidden states of its last position (kLast) or of every one (kAll).
  void SetHidden(LogitsMode positions);

  bool empty() const { return rows_.empty(); }
  size_t size() const { return rows_.size(); }
  int32_t tokens() const { return tokens_; }
  // Hidden-state rows the step asks for (ForwardOutput::hidden holds this many rows).
  int64_t hidden_rows() const { return hidden_rows_; }

  // The rows for Backend::Forward; valid until the batch changes.
  absl::Span<const ForwardRow> Rows();
  // Row `row`'s results in `out` (the output of Forward on Rows()).
  RowResult ResultOf(size_t row, ForwardOutput& out) const;

 private:
  struct Row {
    int32_t slot = 0;
    absl::Span<const int32_t> tokens;
    size_t first_sample = 0;  // into samples_ and ForwardOutput::samples
    size_t num_samples = 0;
    int32_t score = -1;      // into scores_
    size_t first_score = 0;  // into ForwardOutput::scores
    LogitsMode hidden = LogitsMode::kNone;
    int64_t first_hidden = 0;  // row into ForwardOutput::hidden
  };

  std::vector<Row> rows_;
  std::vector<SampleSpec> samples_;
  std::vector<ScoreSpec> scores_;
  std::vector<ForwardRow> forward_rows_;
  size_t scored_tokens_ = 0;
  int64_t hidden_rows_ = 0;
  int32_t tokens_ = 0;
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SERVING_STEP_BATCH_H_
