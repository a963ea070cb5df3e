// libFuzzer target: config.json text -> ModelConfig::FromJson. Any input must give a config or
// an error, never a crash, a hang or undefined behaviour (built with ASan and UBSan).
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "engine/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<xlstm::engine::ModelConfig> config =
      xlstm::engine::ModelConfig::FromJson(text, "config.json");
  if (config.ok()) {
    // The derived dims are what the loader sizes tensors from: they must be computable.
    (void)config->ffn_dim();
    (void)config->state_floats_per_sequence();
    (void)config->ToJson();
  }
  return 0;
}
