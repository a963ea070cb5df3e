#include "engine/serving/embedding_pooling.h"

#include <cmath>

namespace xlstm::engine {

EmbeddingPooler::EmbeddingPooler(Pooling pooling, int64_t hidden_size)
    : pooling_(pooling), hidden_size_(hidden_size) {
  if (pooling_ == Pooling::kMean) sum_.assign(static_cast<size_t>(hidden_size_), 0.0);
}

void EmbeddingPooler::Add(absl::Span<const float> rows) {
  const int64_t n = static_cast<int64_t>(rows.size()) / hidden_size_;
  switch (pooling_) {
    case Pooling::kLast:
      if (n > 0) rows_.assign(rows.end() - hidden_size_, rows.end());
      break;
    case Pooling::kMean:
      for (int64_t r = 0; r < n; ++r) {
        for (int64_t d = 0; d < hidden_size_; ++d) sum_[d] += rows[r * hidden_size_ + d];
      }
      break;
    case Pooling::kAll:
      rows_.insert(rows_.end(), rows.begin(), rows.end());
      break;
  }
  count_ += n;
}

std::vector<float> EmbeddingPooler::Finish(bool normalize, int32_t& positions) {
  std::vector<float> out;
  if (pooling_ == Pooling::kMean) {
    out.resize(static_cast<size_t>(hidden_size_));
    for (int64_t d = 0; d < hidden_size_; ++d) {
      out[d] = count_ == 0 ? 0.0f : static_cast<float>(sum_[d] / static_cast<double>(count_));
    }
  } else {
    out = std::move(rows_);
  }
  if (normalize) L2NormalizeRows(absl::MakeSpan(out), hidden_size_);
  positions = static_cast<int32_t>(static_cast<int64_t>(out.size()) / hidden_size_);
  return out;
}

void L2NormalizeRows(absl::Span<float> rows, int64_t dim) {
  for (size_t start = 0; start + dim <= rows.size(); start += dim) {
    double sq = 0;
    for (int64_t d = 0; d < dim; ++d) sq += static_cast<double>(rows[start + d]) * rows[start + d];
    if (sq == 0) continue;
    const double inv = 1.0 / std::sqrt(sq);
    for (int64_t d = 0; d < dim; ++d) {
      rows[start + d] = static_cast<float>(rows[start + d] * inv);
    }
  }
}

}  // namespace xlstm::engine
