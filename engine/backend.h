// The backend seam: the one interface through which the serving engine drives a model
// implementation (CPU reference now, CUDA next). Slot-native: the backend owns a fixed pool
// of recurrent-state slots; a sequence lives in one slot from admission to release, and a
// step names, for each row, the slot to continue and the tokens to feed it.
//
// Threading: a Backend is owned and called by exactly one thread (the engine thread); it is
// not thread-safe. config(), name() and num_slots() are immutable and may be read anywhere.
#ifndef XLSTM_ENGINE_BACKEND_H_
#define XLSTM_ENGINE_BACKEND_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "engine/logits_mode.h"
#include "engine/model_config.h"
#include "engine/sampling/token_choice.h"

namespace xlstm::engine {

// One sequence's share of a step, and what it wants back. A row asks for exactly one kind of
// output: raw logits (`logits` kLast or kAll), tokens drawn on the backend from its last
// position's logits (`samples`, one TokenChoice per spec: n > 1 samples of a prompt draw from
// one row), log-probs of the tokens that follow each fed token (`score`), the hidden states
// after the final norm, i.e. what feeds lm_head (`hidden` kLast or kAll: embeddings), or
// nothing (kNone). With `samples`, `score` or `hidden` set, `logits` must be kNone: the logits
// stay on the backend (a `hidden` row never runs lm_head).
struct ForwardRow {
  int32_t slot;                      // in [0, num_slots()); at most once per step
  absl::Span<const int32_t> tokens;  // >= 1 token ids in [0, vocab_size)
  LogitsMode logits = LogitsMode::kLast;
  absl::Span<const SampleSpec> samples = {};
  const ScoreSpec* score = nullptr;       // targets.size() == tokens.size()
  LogitsMode hidden = LogitsMode::kNone;  // which positions' final-normed hidden states
};

// A step's results, each list in row order.
struct ForwardOutput {
  std::vector<float> logits;         // [n, vocab]: one row per kLast row, one per token for kAll
  std::vector<TokenChoice> samples;  // one per SampleSpec
  std::vector<TargetScore> scores;   // one per scored token
  // [n, hidden_size] float32 whatever the backend computes in: one row per `hidden` kLast row,
  // one per token for kAll.
  std::vector<float> hidden;

  void Clear() {
    logits.clear();
    samples.clear();
    scores.clear();
    hidden.clear();
  }
};

// Checks what a row asks for (not its slot or tokens, which backends check themselves):
// InvalidArgument naming the row and the field.
absl::Status ValidateRowOutputs(const ForwardRow& row, size_t row_index, int64_t vocab);

class Backend {
 public:
  virtual ~Backend() = default;

  virtual const ModelConfig& config() const = 0;
  virtual absl::string_view name() const = 0;  // "cpu", "cuda"
  virtual int32_t num_slots() const = 0;

  // Zeroes a slot's state (admission of a new sequence).
  virtual absl::Status ResetSlot(int32_t slot) = 0;
  // Copies one slot's state into another (n > 1 samples, Score continuations).
  virtual absl::Status CopySlot(int32_t from, int32_t to) = 0;
  // Advances each row's slot by its tokens and replaces `out` with what the rows asked for
  // (see ForwardRow). On error no slot named in `rows` is left half-updated unless the error is
  // a device fault, after which the backend is unusable (every later call fails).
  virtual absl::Status Forward(absl::Span<const ForwardRow> rows, ForwardOutput& out) = 0;
};

// Forward() for rows that want raw logits only (tools and tests): `logits` gets out.logits.
absl::Status ForwardLogits(Backend& backend, absl::Span<const ForwardRow> rows,
                           std::vector<float>& logits);

// The host side of ForwardOutput for backends that compute logits on the host: appends to
// `out` what `row` asked for, given the logits it produced ([1 or tokens, vocab] rows, as
// LogitsMode kLast / kAll would return them).
void ReduceRowOnHost(const ForwardRow& row, absl::Span<const float> row_logits, int64_t vocab,
                     ForwardOutput& out);
// The LogitsMode a host backend must compute for `row` so that ReduceRowOnHost can serve it.
// kNone for a `hidden` row: it needs no logits.
LogitsMode HostLogitsMode(const ForwardRow& row);

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_BACKEND_H_
