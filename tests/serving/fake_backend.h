// A Backend that does no model work, for engine tests: a slot's state is a hash of the tokens it
// has been fed, and logits are a fixed function of that hash, so outputs depend on exactly the
// history of one sequence (as with a real model) and never on the batch. Records every step.
// Optionally blocks in Forward (to hold requests in flight) or fails.
#ifndef XLSTM_TESTS_SERVING_FAKE_BACKEND_H_
#define XLSTM_TESTS_SERVING_FAKE_BACKEND_H_

#include <cstdint>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "engine/backend.h"

namespace xlstm::engine::testing {

class FakeBackend : public Backend {
 public:
  FakeBackend(int32_t num_slots, int64_t vocab) : states_(num_slots, 0) {
    config_.vocab_size = vocab;
    config_.eos_token_ids = {2};
  }

  const ModelConfig& config() const override { return config_; }
  absl::string_view name() const override { return "fake"; }
  int32_t num_slots() const override { return static_cast<int32_t>(states_.size()); }
  absl::Status ResetSlot(int32_t slot) override {
    states_[slot] = 0;
    return absl::OkStatus();
  }
  absl::Status CopySlot(int32_t from, int32_t to) override {
    states_[to] = states_[from];
    return absl::OkStatus();
  }
  absl::Status Forward(absl::Span<const ForwardRow> rows, ForwardOutput& out) override;

  // The state after feeding `tokens` to `state`, and its logits (used by tests as the oracle).
  static uint64_t Advance(uint64_t state, int32_t token);
  static std::vector<float> Logits(uint64_t state, int64_t vocab);

  struct Step {
    int32_t rows = 0;
    int32_t tokens = 0;
    int32_t decode_rows = 0;  // rows of one token
  };
  std::vector<Step> steps() const {
    absl::MutexLock lock(&mu_);
    return steps_;
  }
  // While held, Forward blocks (the engine thread stays inside the step).
  void Hold(bool hold) {
    absl::MutexLock lock(&mu_);
    hold_ = hold;
  }
  bool in_forward() const {
    absl::MutexLock lock(&mu_);
    return in_forward_;
  }
  void FailNextForward() {
    absl::MutexLock lock(&mu_);
    fail_ = true;
  }

 private:
  ModelConfig config_;
  std::vector<uint64_t> states_;  // engine thread only
  mutable absl::Mutex mu_;
  std::vector<Step> steps_ ABSL_GUARDED_BY(mu_);
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  bool in_forward_ ABSL_GUARDED_BY(mu_) = false;
  bool fail_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace xlstm::engine::testing

#endif  // XLSTM_TESTS_SERVING_FAKE_BACKEND_H_
