#include "tests/serving/fake_backend.h"

#include <set>

namespace xlstm::engine::testing {

uint64_t FakeBackend::Advance(uint64_t state, int32_t token) {
  uint64_t x = state * 0x100000001B3ULL + static_cast<uint64_t>(token) + 0x9E3779B97F4A7C15ULL;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 29;
  return x;
}

std::vector<float> FakeBackend::Logits(uint64_t state, int64_t vocab) {
  std::vector<float> out(vocab);
  for (int64_t v = 0; v < vocab; ++v) {
    const uint64_t h = Advance(state, static_cast<int32_t>(v) + 1000);
    out[v] = static_cast<float>(h % 1000) / 100.0f;
  }
  return out;
}

absl::Status FakeBackend::Forward(absl::Span<const ForwardRow> rows, ForwardOutput& out) {
  {
    absl::MutexLock lock(&mu_);
    in_forward_ = true;
    mu_.Await(absl::Condition(
        +[](bool* hold) { return !*hold; }, &hold_));
    in_forward_ = false;
    if (fail_) {
      fail_ = false;
      return absl::InternalError("fake device fault");
    }
    Step step;
    std::set<int32_t> seen;
    for (const ForwardRow& row : rows) {
      if (!seen.insert(row.slot).second) return absl::InternalError("slot twice in one step");
      ++step.rows;
      step.tokens += static_cast<int32_t>(row.tokens.size());
      if (row.tokens.size() == 1) ++step.decode_rows;
    }
    steps_.push_back(step);
  }
  out.Clear();
  const int64_t vocab = config_.vocab_size;
  for (size_t r = 0; r < rows.size(); ++r) {
    if (absl::Status s = ValidateRowOutputs(rows[r], r, vocab); !s.ok()) return s;
  }
  for (const ForwardRow& row : rows) {
    const LogitsMode mode = HostLogitsMode(row);
    std::vector<float> row_logits;
    for (size_t i = 0; i < row.tokens.size(); ++i) {
      states_[row.slot] = Advance(states_[row.slot], row.tokens[i]);
      const bool want =
          mode == LogitsMode::kAll || (mode == LogitsMode::kLast && i + 1 == row.tokens.size());
      if (want) {
        std::vector<float> l = Logits(states_[row.slot], vocab);
        row_logits.insert(row_logits.end(), l.begin(), l.end());
      }
    }
    ReduceRowOnHost(row, row_logits, vocab, out);
  }
  return absl::OkStatus();
}

}  // namespace xlstm::engine::testing
