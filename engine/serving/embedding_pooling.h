// The host-side arithmetic of an embedding: pooling hidden-state rows and L2 normalisation.
// Kept apart from the task so that tests check the arithmetic on its own.
//
// Thread safety: an EmbeddingPooler is used by one thread (the engine thread); the free function
// is pure.
#ifndef XLSTM_ENGINE_SERVING_EMBEDDING_POOLING_H_
#define XLSTM_ENGINE_SERVING_EMBEDDING_POOLING_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "engine/serving/request.h"

namespace xlstm::engine {

// Takes an input's hidden-state rows chunk by chunk, as the backend returns them, and yields
// the pooled embedding: kLast keeps the last row it was given, kMean averages every row (summed
// in double so that a long input loses no precision), kAll keeps every row.
class EmbeddingPooler {
 public:
  EmbeddingPooler(Pooling pooling, int64_t hidden_size);

  // `rows` is [n, hidden_size]: every position of a chunk (kMean, kAll) or its last (kLast).
  void Add(absl::Span<const float> rows);
  // [positions, hidden_size]; each row L2-normalised when `normalize`. Call once.
  std::vector<float> Finish(bool normalize, int32_t& positions);

 private:
  const Pooling pooling_;
  const int64_t hidden_size_;
  std::vector<float> rows_;  // kLast: the last row; kAll: every row
  std::vector<double> sum_;  // kMean
  int64_t count_ = 0;        // rows added
};

// Scales each `dim`-float row of `rows` to unit L2 norm; an all-zero row stays zero.
void L2NormalizeRows(absl::Span<float> rows, int64_t dim);

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SERVING_EMBEDDING_POOLING_H_
