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
#include "engine/cpu/cpu_model.h"  // LogitsMode
#include "engine/model_config.h"

namespace xlstm::engine {

// One sequence's share of a step.
struct ForwardRow {
  int32_t slot;                      // in [0, num_slots()); at most once per step
  absl::Span<const int32_t> tokens;  // >= 1 token ids in [0, vocab_size)
  LogitsMode logits = LogitsMode::kLast;
};

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
  // Advances each row's slot by its tokens and writes the requested logits, row-major
  // [rows, vocab_size] float32 on the host, in row order: one row per kLast, one per token for
  // kAll, none for kNone. On error no slot named in `rows` is left half-updated unless the
  // error is a device fault, after which the backend is unusable (every later call fails).
  virtual absl::Status Forward(absl::Span<const ForwardRow> rows, std::vector<float>& logits) = 0;
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_BACKEND_H_
