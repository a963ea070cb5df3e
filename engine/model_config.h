// The xLSTM model configuration: every field of Hugging Face's `xLSTMConfig` (transformers
// 5.17), with HF's defaults for fields a config.json leaves out, plus the dimensions the layers
// actually use. See docs/xlstm-model.md §1-§2.
#ifndef XLSTM_ENGINE_MODEL_CONFIG_H_
#define XLSTM_ENGINE_MODEL_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace xlstm::engine {

enum class WeightMode { kSingle, kFused };

struct ModelConfig {
  // ---- xLSTMConfig fields, HF defaults ----
  int64_t vocab_size = 50304;
  int64_t hidden_size = 4096;
  int64_t embedding_dim = 4096;  // HF: None -> hidden_size; must equal hidden_size.
  int64_t num_hidden_layers = 32;
  int64_t num_blocks = 32;  // HF: None -> num_hidden_layers; the number of blocks built.
  int64_t num_heads = 8;
  bool use_bias = false;
  bool norm_reduction_force_float32 = true;
  bool tie_word_embeddings = false;
  bool add_out_norm = true;  // Ignored, as by HF's native path: out_norm is always applied.
  double norm_eps = 1e-6;
  double qk_dim_factor = 0.5;
  double v_dim_factor = 1.0;
  // Kernel selections only choose HF's implementation, not the math; kept for reporting.
  std::string chunkwise_kernel = "chunkwise--native_autograd";
  std::string sequence_kernel = "native_sequence__native";
  std::string step_kernel = "native";
  std::string mode = "inference";
  int64_t chunk_size = 64;
  bool return_last_states = true;
  std::string autocast_kernel_dtype = "bfloat16";
  double eps = 1e-6;  // Added to the mLSTM read-out denominator.
  std::string inference_state_dtype = "float32";
  double ffn_proj_factor = 2.667;
  int64_t ffn_round_up_to_multiple_of = 64;
  std::optional<double> gate_soft_cap = 15.0;          // null: no cap.
  std::optional<double> output_logit_soft_cap = 30.0;  // null: no cap.
  WeightMode weight_mode = WeightMode::kSingle;
  bool use_cache = true;
  std::optional<int64_t> pad_token_id = 1;
  std::optional<int64_t> bos_token_id = 0;
  std::vector<int64_t> eos_token_ids = {2};  // HF accepts an int or a list.
  int64_t max_inference_chunksize = 16384;
  // Informational: the dtype HF recorded for the stored weights ("dtype"/"torch_dtype").
  std::string stored_dtype;

  // ---- Dimensions used by the layers (HF-M xLSTMLayer / xLSTMFeedForward) ----
  // The layer uses the unrounded int(D * factor); only HF's cache rounds up to 64.
  int64_t qk_dim() const;       // QK
  int64_t v_dim() const;        // V
  int64_t qk_head_dim() const;  // DHQK = QK / NH
  int64_t v_head_dim() const;   // DHV = V / NH
  int64_t ffn_dim() const;      // F = round_up(D * ffn_proj_factor, ffn_round_up_to_multiple_of)
  // Floats of recurrent state per sequence: blocks * NH * (DHQK*DHV + DHQK + 1).
  int64_t state_floats_per_sequence() const;

  // Parses a config.json text. `source` names the file in error messages. Unknown keys are
  // ignored (as HF does); present keys must have the right JSON type; the result is validated.
  static absl::StatusOr<ModelConfig> FromJson(absl::string_view json_text,
                                              absl::string_view source);
  static absl::StatusOr<ModelConfig> FromFile(const std::string& path);

  // Serializes every field (HF names), as save_pretrained would, for init-random.
  std::string ToJson() const;
};

// Python's `int(((x + m - 1) // m) * m)` on a float x, reproduced bit for bit (HF's
// round_up_to_next_multiple_of is applied to the float D * ffn_proj_factor).
int64_t PyRoundUpToMultiple(double x, int64_t multiple_of);

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_MODEL_CONFIG_H_
