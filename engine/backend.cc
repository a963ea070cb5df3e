#include "engine/backend.h"

#include "absl/strings/str_cat.h"

namespace xlstm::engine {

absl::Status ValidateRowOutputs(const ForwardRow& row, size_t row_index, int64_t vocab) {
  const bool wants_logits = row.logits != LogitsMode::kNone;
  const bool wants_hidden = row.hidden != LogitsMode::kNone;
  if (static_cast<int>(wants_logits) + static_cast<int>(!row.samples.empty()) +
          static_cast<int>(row.score != nullptr) + static_cast<int>(wants_hidden) >
      1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "row ", row_index, " asks for more than one of logits, samples, score and hidden"));
  }
  for (size_t i = 0; i < row.samples.size(); ++i) {
    if (absl::Status s = ValidateSampleSpec(row.samples[i], vocab); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("row ", row_index, ", sample ", i, ": ", s.message()));
    }
  }
  if (row.score != nullptr) {
    if (absl::Status s =
            ValidateScoreSpec(*row.score, static_cast<int64_t>(row.tokens.size()), vocab);
        !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("row ", row_index, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status ForwardLogits(Backend& backend, absl::Span<const ForwardRow> rows,
                           std::vector<float>& logits) {
  ForwardOutput out;
  absl::Status s = backend.Forward(rows, out);
  logits = std::move(out.logits);
  return s;
}

LogitsMode HostLogitsMode(const ForwardRow& row) {
  if (!row.samples.empty()) return LogitsMode::kLast;
  if (row.score != nullptr) return LogitsMode::kAll;
  if (row.hidden != LogitsMode::kNone) return LogitsMode::kNone;
  return row.logits;
}

void ReduceRowOnHost(const ForwardRow& row, absl::Span<const float> row_logits, int64_t vocab,
                     ForwardOutput& out) {
  if (!row.samples.empty()) {
    for (const SampleSpec& spec : row.samples) out.samples.push_back(ChooseToken(spec, row_logits));
  } else if (row.score != nullptr) {
    for (size_t t = 0; t < row.score->targets.size(); ++t) {
      out.scores.push_back(ScoreTarget(row_logits.subspan(t * vocab, vocab), row.score->targets[t],
                                       row.score->top_logprobs));
    }
  } else {
    out.logits.insert(out.logits.end(), row_logits.begin(), row_logits.end());
  }
}

}  // namespace xlstm::engine
