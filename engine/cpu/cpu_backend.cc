#include "engine/cpu/cpu_backend.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace xlstm::engine {

absl::StatusOr<std::unique_ptr<CpuBackend>> CpuBackend::Create(std::unique_ptr<CpuModel> model,
                                                               int32_t num_slots) {
  if (num_slots < 1) {
    return absl::InvalidArgumentError(absl::StrCat("num_slots is ", num_slots, ", must be >= 1"));
  }
  return std::unique_ptr<CpuBackend>(new CpuBackend(std::move(model), num_slots));
}

CpuBackend::CpuBackend(std::unique_ptr<CpuModel> model, int32_t num_slots)
    : model_(std::move(model)) {
  slots_.reserve(num_slots);
  for (int32_t i = 0; i < num_slots; ++i) slots_.push_back(model_->NewState());
}

absl::Status CpuBackend::CheckSlot(int32_t slot) const {
  if (slot < 0 || slot >= num_slots()) {
    return absl::OutOfRangeError(
        absl::StrCat("slot ", slot, " is outside the pool [0, ", num_slots(), ")"));
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::ResetSlot(int32_t slot) {
  XLSTM_RETURN_IF_ERROR(CheckSlot(slot));
  slots_[slot].Reset();
  return absl::OkStatus();
}

absl::Status CpuBackend::CopySlot(int32_t from, int32_t to) {
  XLSTM_RETURN_IF_ERROR(CheckSlot(from));
  XLSTM_RETURN_IF_ERROR(CheckSlot(to));
  if (from != to) slots_[to].CopyFrom(slots_[from]);
  return absl::OkStatus();
}

absl::Status CpuBackend::Forward(absl::Span<const ForwardRow> rows, ForwardOutput& out) {
  out.Clear();
  const int64_t vocab = config().vocab_size;
  std::vector<SequenceChunk> chunks;
  chunks.reserve(rows.size());
  std::vector<bool> used(slots_.size(), false);
  for (size_t r = 0; r < rows.size(); ++r) {
    const ForwardRow& row = rows[r];
    XLSTM_RETURN_IF_ERROR(CheckSlot(row.slot));
    if (used[row.slot]) {
      return absl::InvalidArgumentError(
          absl::StrCat("slot ", row.slot, " appears twice in a step"));
    }
    used[row.slot] = true;
    XLSTM_RETURN_IF_ERROR(ValidateRowOutputs(row, r, vocab));
    chunks.push_back({&slots_[row.slot], row.tokens, HostLogitsMode(row), row.hidden});
  }
  XLSTM_ASSIGN_OR_RETURN(std::vector<float> logits, model_->Forward(chunks, &out.hidden));
  size_t offset = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    const size_t produced = chunks[r].logits == LogitsMode::kNone   ? 0
                            : chunks[r].logits == LogitsMode::kLast ? 1
                                                                    : rows[r].tokens.size();
    ReduceRowOnHost(rows[r], absl::MakeConstSpan(logits).subspan(offset * vocab, produced * vocab),
                    vocab, out);
    offset += produced;
  }
  return absl::OkStatus();
}

}  // namespace xlstm::engine
