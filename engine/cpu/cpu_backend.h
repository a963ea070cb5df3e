// The CPU reference model behind the Backend seam: a CpuModel plus a pool of RecurrentStates.
#ifndef XLSTM_ENGINE_CPU_CPU_BACKEND_H_
#define XLSTM_ENGINE_CPU_CPU_BACKEND_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/backend.h"
#include "engine/cpu/cpu_model.h"

namespace xlstm::engine {

class CpuBackend : public Backend {
 public:
  // `num_slots` >= 1 states of config().state_floats_per_sequence() floats each, allocated now.
  static absl::StatusOr<std::unique_ptr<CpuBackend>> Create(std::unique_ptr<CpuModel> model,
                                                            int32_t num_slots);

  const ModelConfig& config() const override { return model_->config(); }
  absl::string_view name() const override { return "cpu"; }
  int32_t num_slots() const override { return static_cast<int32_t>(slots_.size()); }
  absl::Status ResetSlot(int32_t slot) override;
  absl::Status CopySlot(int32_t from, int32_t to) override;
  absl::Status Forward(absl::Span<const ForwardRow> rows, ForwardOutput& out) override;

  // For tests: the state held in a slot.
  const RecurrentState& slot_state(int32_t slot) const { return slots_[slot]; }

 private:
  CpuBackend(std::unique_ptr<CpuModel> model, int32_t num_slots);
  absl::Status CheckSlot(int32_t slot) const;

  std::unique_ptr<CpuModel> model_;
  std::vector<RecurrentState> slots_;
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_CPU_CPU_BACKEND_H_
