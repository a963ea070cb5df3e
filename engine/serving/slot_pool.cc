#include "engine/serving/slot_pool.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace xlstm::engine {

SlotPool::SlotPool(Backend* backend)
    : backend_(backend), in_use_(static_cast<size_t>(backend->num_slots()), false) {}

absl::StatusOr<std::vector<int32_t>> SlotPool::Acquire(int32_t count) {
  if (count > free()) {
    return absl::FailedPreconditionError(
        absl::StrCat("asked for ", count, " state slots, ", free(), " free"));
  }
  std::vector<int32_t> slots;
  for (int32_t s = 0; s < total() && static_cast<int32_t>(slots.size()) < count; ++s) {
    if (!in_use_[s]) slots.push_back(s);
  }
  // Reset before marking, so that a failed reset leaves the pool as it was.
  for (int32_t s : slots) XLSTM_RETURN_IF_ERROR(backend_->ResetSlot(s));
  for (int32_t s : slots) in_use_[s] = true;
  used_ += count;
  return slots;
}

void SlotPool::Release(const std::vector<int32_t>& slots) {
  for (int32_t s : slots) {
    XLSTM_CHECK(s >= 0 && s < total() && in_use_[s]);
    in_use_[s] = false;
    --used_;
  }
}

absl::Status SlotPool::Copy(int32_t from, int32_t to) {
  XLSTM_CHECK(in_use_[from] && in_use_[to]);
  return backend_->CopySlot(from, to);
}

}  // namespace xlstm::engine
