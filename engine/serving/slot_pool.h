// The pool of recurrent-state slots: which backend slots are free, and the reset / copy
// operations on them. A request holds its slots from admission until it ends, however it ends
// (finished, failed, cancelled, expired): the engine releases them in one place.
//
// Threading: owned and used by the engine thread only; not thread-safe.
#ifndef XLSTM_ENGINE_SERVING_SLOT_POOL_H_
#define XLSTM_ENGINE_SERVING_SLOT_POOL_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/backend.h"

namespace xlstm::engine {

class SlotPool {
 public:
  // `backend` must outlive the pool.
  explicit SlotPool(Backend* backend);

  int32_t total() const { return static_cast<int32_t>(in_use_.size()); }
  int32_t used() const { return used_; }
  int32_t free() const { return total() - used_; }

  // Takes `count` free slots, each reset to the zero state. FailedPrecondition when fewer are
  // free (nothing is taken then); the backend's error if a reset fails (nothing is taken).
  absl::StatusOr<std::vector<int32_t>> Acquire(int32_t count);
  // Returns slots to the pool. Releasing a slot that is not held is a programmer error.
  void Release(const std::vector<int32_t>& slots);
  // Copies the state of `from` into `to`; both must be held.
  absl::Status Copy(int32_t from, int32_t to);

 private:
  Backend* backend_;
  std::vector<bool> in_use_;
  int32_t used_ = 0;
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SERVING_SLOT_POOL_H_
