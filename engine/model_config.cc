#include "engine/model_config.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "common/untrusted_file.h"
#include "nlohmann/json.hpp"

namespace xlstm::engine {
namespace {

using Json = nlohmann::json;

// Largest accepted dimension. Keeps every product of two dims far from int64 overflow, so a
// hostile config cannot turn into a huge allocation before the tensor shapes are checked.
constexpr int64_t kMaxDim = int64_t{1} << 24;

std::string Describe(const Json& value) {
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return absl::StrCat(value.type_name(), " ", text);
}

// Reads one field of a config.json object. Absent keys leave `out` at its default.
class FieldReader {
 public:
  FieldReader(const Json& object, absl::string_view source) : object_(object), source_(source) {}

  absl::Status Error(absl::string_view key, absl::string_view problem) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": field '", key, "' ", problem));
  }

  const Json* Find(absl::string_view key) const {
    auto it = object_.find(std::string(key));
    return it == object_.end() ? nullptr : &*it;
  }

  static std::optional<int64_t> AsInt(const Json& v) {
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
      return static_cast<int64_t>(u);
    }
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) {
        return static_cast<int64_t>(d);
      }
    }
    return std::nullopt;
  }

  absl::Status Int(absl::string_view key, int64_t* out) const {
    const Json* v = Find(key);
    if (v == nullptr) return absl::OkStatus();
    std::optional<int64_t> i = AsInt(*v);
    if (!i) return Error(key, absl::StrCat("must be an integer, got ", Describe(*v)));
    *out = *i;
    return absl::OkStatus();
  }

  // Integer or null. Returns whether the key was present.
  absl::StatusOr<bool> NullableInt(absl::string_view key, std::optional<int64_t>* out) const {
    const Json* v = Find(key);
    if (v == nullptr) return false;
    if (v->is_null()) {
      *out = std::nullopt;
      return true;
    }
    std::optional<int64_t> i = AsInt(*v);
    if (!i) return Error(key, absl::StrCat("must be an integer or null, got ", Describe(*v)));
    *out = *i;
    return true;
  }

  absl::Status Double(absl::string_view key, double* out) const {
    const Json* v = Find(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_number()) return Error(key, absl::StrCat("must be a number, got ", Describe(*v)));
    *out = v->get<double>();
    if (!std::isfinite(*out)) return Error(key, "must be finite");
    return absl::OkStatus();
  }

  absl::Status NullableDouble(absl::string_view key, std::optional<double>* out) const {
    const Json* v = Find(key);
    if (v == nullptr) return absl::OkStatus();
    if (v->is_null()) {
      *out = std::nullopt;
      return absl::OkStatus();
    }
    double d = 0;
    XLSTM_RETURN_IF_ERROR(Double(key, &d));
    *out = d;
    return absl::OkStatus();
  }

  absl::Status Bool(absl::string_view key, bool* out) const {
    const Json* v = Find(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_boolean())
      return Error(key, absl::StrCat("must be true or false, got ", Describe(*v)));
    *out = v->get<bool>();
    return absl::OkStatus();
  }

  // A string field restricted to `allowed` (empty: any string).
  absl::Status String(absl::string_view key, std::string* out,
                      const std::vector<std::string>& allowed = {}) const {
    const Json* v = Find(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_string()) return Error(key, absl::StrCat("must be a string, got ", Describe(*v)));
    std::string s = v->get<std::string>();
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
      return Error(key,
                   absl::StrCat("is '", s, "', expected one of: ", absl::StrJoin(allowed, ", ")));
    }
    *out = std::move(s);
    return absl::OkStatus();
  }

 private:
  const Json& object_;
  absl::string_view source_;
};

absl::Status CheckRange(absl::string_view source, absl::string_view key, int64_t value, int64_t lo,
                        int64_t hi) {
  if (value < lo || value > hi) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": field '", key, "' is ", value,
                                                   ", must be in [", lo, ", ", hi, "]"));
  }
  return absl::OkStatus();
}

absl::Status Validate(const ModelConfig& c, absl::string_view source) {
  XLSTM_RETURN_IF_ERROR(CheckRange(source, "vocab_size", c.vocab_size, 1, kMaxDim));
  XLSTM_RETURN_IF_ERROR(CheckRange(source, "hidden_size", c.hidden_size, 1, kMaxDim));
  XLSTM_RETURN_IF_ERROR(CheckRange(source, "num_blocks", c.num_blocks, 1, 4096));
  XLSTM_RETURN_IF_ERROR(CheckRange(source, "num_hidden_layers", c.num_hidden_layers, 1, 4096));
  XLSTM_RETURN_IF_ERROR(CheckRange(source, "num_heads", c.num_heads, 1, 4096));
  XLSTM_RETURN_IF_ERROR(CheckRange(source, "chunk_size", c.chunk_size, 1, kMaxDim));
  XLSTM_RETURN_IF_ERROR(
      CheckRange(source, "ffn_round_up_to_multiple_of", c.ffn_round_up_to_multiple_of, 1, kMaxDim));
  if (c.embedding_dim != c.hidden_size) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": embedding_dim (", c.embedding_dim, ") must equal hidden_size (",
                     c.hidden_size, "): the embedding output feeds the first block directly"));
  }
  for (auto [name, factor] : {std::pair<const char*, double>{"qk_dim_factor", c.qk_dim_factor},
                              {"v_dim_factor", c.v_dim_factor},
                              {"ffn_proj_factor", c.ffn_proj_factor}}) {
    if (!(factor > 0) || factor * static_cast<double>(c.hidden_size) > kMaxDim) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": field '", name, "' is ", factor,
          ", must be > 0 and give a dimension <= ", kMaxDim, " with hidden_size ", c.hidden_size));
    }
  }
  for (auto [name, dim] :
       {std::pair<const char*, int64_t>{"qk_dim", c.qk_dim()}, {"v_dim", c.v_dim()}}) {
    if (dim < c.num_heads || dim % c.num_heads != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": ", name, " = int(hidden_size * ", name, "_factor) = ", dim,
                       " is not divisible by num_heads = ", c.num_heads));
    }
  }
  if (c.ffn_dim() < 1 || c.ffn_dim() > kMaxDim) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": FFN width ", c.ffn_dim(), " is outside [1, ", kMaxDim, "]"));
  }
  if (c.norm_eps < 0)
    return absl::InvalidArgumentError(absl::StrCat(source, ": field 'norm_eps' must be >= 0"));
  if (c.eps < 0)
    return absl::InvalidArgumentError(absl::StrCat(source, ": field 'eps' must be >= 0"));
  for (auto [name, cap] :
       {std::pair<const char*, std::optional<double>>{"gate_soft_cap", c.gate_soft_cap},
        {"output_logit_soft_cap", c.output_logit_soft_cap}}) {
    if (cap.has_value() && !(*cap > 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": field '", name, "' is ", *cap, ", must be > 0 or null"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

int64_t PyRoundUpToMultiple(double x, int64_t multiple_of) {
  // CPython's float floor division (float_divmod), so the result equals HF's for every input.
  const double vx = x + static_cast<double>(multiple_of) - 1.0;
  const double wx = static_cast<double>(multiple_of);
  double mod = std::fmod(vx, wx);
  double div = (vx - mod) / wx;
  if (mod != 0.0 && ((wx < 0) != (mod < 0))) div -= 1.0;
  double floordiv = 0.0;
  if (div != 0.0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  }
  return static_cast<int64_t>(floordiv * wx);
}

int64_t ModelConfig::qk_dim() const {
  return static_cast<int64_t>(static_cast<double>(hidden_size) * qk_dim_factor);
}
int64_t ModelConfig::v_dim() const {
  return static_cast<int64_t>(static_cast<double>(hidden_size) * v_dim_factor);
}
int64_t ModelConfig::qk_head_dim() const { return qk_dim() / num_heads; }
int64_t ModelConfig::v_head_dim() const { return v_dim() / num_heads; }
int64_t ModelConfig::ffn_dim() const {
  return PyRoundUpToMultiple(static_cast<double>(hidden_size) * ffn_proj_factor,
                             ffn_round_up_to_multiple_of);
}
int64_t ModelConfig::state_floats_per_sequence() const {
  return num_blocks * num_heads * (qk_head_dim() * v_head_dim() + qk_head_dim() + 1);
}

absl::StatusOr<ModelConfig> ModelConfig::FromJson(absl::string_view json_text,
                                                  absl::string_view source) {
  Json root;
  try {
    root = Json::parse(json_text);
  } catch (const Json::exception& e) {
    // parse_error, and out_of_range for numbers that overflow a double (1e999).
    return absl::InvalidArgumentError(absl::StrCat(source, ": invalid JSON: ", e.what()));
  }
  if (!root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": expected a JSON object, got ", root.type_name()));
  }
  FieldReader r(root, source);
  ModelConfig c;

  std::string model_type;
  if (r.Find("model_type") == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": missing field 'model_type' (expected \"xlstm\")"));
  }
  XLSTM_RETURN_IF_ERROR(r.String("model_type", &model_type));
  if (model_type != "xlstm") {
    return absl::InvalidArgumentError(absl::StrCat(source, ": unsupported model_type '", model_type,
                                                   "' (this server runs \"xlstm\")"));
  }

  XLSTM_RETURN_IF_ERROR(r.Int("vocab_size", &c.vocab_size));
  // HF's __post_init__: hidden_size/embedding_dim and num_hidden_layers/num_blocks each fall
  // back to the other only when None; hidden_size and num_hidden_layers default to 4096/32.
  std::optional<int64_t> hidden = c.hidden_size, embedding, layers = c.num_hidden_layers, blocks;
  embedding.reset();
  blocks.reset();
  XLSTM_RETURN_IF_ERROR(r.NullableInt("hidden_size", &hidden).status());
  XLSTM_RETURN_IF_ERROR(r.NullableInt("embedding_dim", &embedding).status());
  XLSTM_RETURN_IF_ERROR(r.NullableInt("num_hidden_layers", &layers).status());
  XLSTM_RETURN_IF_ERROR(r.NullableInt("num_blocks", &blocks).status());
  if (!hidden) hidden = embedding;
  if (!embedding) embedding = hidden;
  if (!layers) layers = blocks;
  if (!blocks) blocks = layers;
  if (!hidden || !layers) {
    return absl::InvalidArgumentError(absl::StrCat(
        source,
        ": hidden_size/embedding_dim and num_hidden_layers/num_blocks cannot both be null"));
  }
  c.hidden_size = *hidden;
  c.embedding_dim = *embedding;
  c.num_hidden_layers = *layers;
  c.num_blocks = *blocks;

  XLSTM_RETURN_IF_ERROR(r.Int("num_heads", &c.num_heads));
  XLSTM_RETURN_IF_ERROR(r.Bool("use_bias", &c.use_bias));
  XLSTM_RETURN_IF_ERROR(r.Bool("norm_reduction_force_float32", &c.norm_reduction_force_float32));
  XLSTM_RETURN_IF_ERROR(r.Bool("tie_word_embeddings", &c.tie_word_embeddings));
  XLSTM_RETURN_IF_ERROR(r.Bool("add_out_norm", &c.add_out_norm));
  XLSTM_RETURN_IF_ERROR(r.Double("norm_eps", &c.norm_eps));
  XLSTM_RETURN_IF_ERROR(r.Double("qk_dim_factor", &c.qk_dim_factor));
  XLSTM_RETURN_IF_ERROR(r.Double("v_dim_factor", &c.v_dim_factor));
  XLSTM_RETURN_IF_ERROR(r.String("chunkwise_kernel", &c.chunkwise_kernel));
  XLSTM_RETURN_IF_ERROR(r.String("sequence_kernel", &c.sequence_kernel));
  XLSTM_RETURN_IF_ERROR(r.String("step_kernel", &c.step_kernel));
  XLSTM_RETURN_IF_ERROR(r.String("mode", &c.mode, {"train", "train_with_padding", "inference"}));
  XLSTM_RETURN_IF_ERROR(r.Int("chunk_size", &c.chunk_size));
  XLSTM_RETURN_IF_ERROR(r.Bool("return_last_states", &c.return_last_states));
  const std::vector<std::string> dtypes = {"float32", "bfloat16", "float16"};
  XLSTM_RETURN_IF_ERROR(r.String("autocast_kernel_dtype", &c.autocast_kernel_dtype, dtypes));
  XLSTM_RETURN_IF_ERROR(r.Double("eps", &c.eps));
  XLSTM_RETURN_IF_ERROR(r.String("inference_state_dtype", &c.inference_state_dtype, dtypes));
  XLSTM_RETURN_IF_ERROR(r.Double("ffn_proj_factor", &c.ffn_proj_factor));
  XLSTM_RETURN_IF_ERROR(r.Int("ffn_round_up_to_multiple_of", &c.ffn_round_up_to_multiple_of));
  XLSTM_RETURN_IF_ERROR(r.NullableDouble("gate_soft_cap", &c.gate_soft_cap));
  XLSTM_RETURN_IF_ERROR(r.NullableDouble("output_logit_soft_cap", &c.output_logit_soft_cap));
  std::string weight_mode = "single";
  XLSTM_RETURN_IF_ERROR(r.String("weight_mode", &weight_mode, {"single", "fused"}));
  c.weight_mode = weight_mode == "fused" ? WeightMode::kFused : WeightMode::kSingle;
  XLSTM_RETURN_IF_ERROR(r.Bool("use_cache", &c.use_cache));
  XLSTM_RETURN_IF_ERROR(r.NullableInt("pad_token_id", &c.pad_token_id).status());
  XLSTM_RETURN_IF_ERROR(r.NullableInt("bos_token_id", &c.bos_token_id).status());
  if (const Json* eos = r.Find("eos_token_id"); eos != nullptr) {
    c.eos_token_ids.clear();
    if (eos->is_array()) {
      for (const Json& e : *eos) {
        std::optional<int64_t> id = FieldReader::AsInt(e);
        if (!id)
          return r.Error("eos_token_id", absl::StrCat("has a non-integer entry ", Describe(e)));
        c.eos_token_ids.push_back(*id);
      }
    } else if (!eos->is_null()) {
      std::optional<int64_t> id = FieldReader::AsInt(*eos);
      if (!id) {
        return r.Error(
            "eos_token_id",
            absl::StrCat("must be an integer, a list of integers or null, got ", Describe(*eos)));
      }
      c.eos_token_ids.push_back(*id);
    }
  }
  XLSTM_RETURN_IF_ERROR(r.Int("max_inference_chunksize", &c.max_inference_chunksize));
  if (const Json* d = r.Find("dtype"); d != nullptr && d->is_string()) {
    c.stored_dtype = d->get<std::string>();
  } else if (const Json* td = r.Find("torch_dtype"); td != nullptr && td->is_string()) {
    c.stored_dtype = td->get<std::string>();
  }
  XLSTM_RETURN_IF_ERROR(Validate(c, source));
  return c;
}

absl::StatusOr<ModelConfig> ModelConfig::FromFile(const std::string& path) {
  XLSTM_ASSIGN_OR_RETURN(std::string text, files::ReadRegularFile(path, files::kMaxJsonFileBytes));
  return FromJson(text, path);
}

std::string ModelConfig::ToJson() const {
  Json j;
  auto nullable = [](const auto& opt) -> Json { return opt ? Json(*opt) : Json(nullptr); };
  j["model_type"] = "xlstm";
  j["architectures"] = Json::array({"xLSTMForCausalLM"});
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["embedding_dim"] = embedding_dim;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_blocks"] = num_blocks;
  j["num_heads"] = num_heads;
  j["use_bias"] = use_bias;
  j["norm_reduction_force_float32"] = norm_reduction_force_float32;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["add_out_norm"] = add_out_norm;
  j["norm_eps"] = norm_eps;
  j["qk_dim_factor"] = qk_dim_factor;
  j["v_dim_factor"] = v_dim_factor;
  j["chunkwise_kernel"] = chunkwise_kernel;
  j["sequence_kernel"] = sequence_kernel;
  j["step_kernel"] = step_kernel;
  j["mode"] = mode;
  j["chunk_size"] = chunk_size;
  j["return_last_states"] = return_last_states;
  j["autocast_kernel_dtype"] = autocast_kernel_dtype;
  j["eps"] = eps;
  j["inference_state_dtype"] = inference_state_dtype;
  j["ffn_proj_factor"] = ffn_proj_factor;
  j["ffn_round_up_to_multiple_of"] = ffn_round_up_to_multiple_of;
  j["gate_soft_cap"] = nullable(gate_soft_cap);
  j["output_logit_soft_cap"] = nullable(output_logit_soft_cap);
  j["weight_mode"] = weight_mode == WeightMode::kFused ? "fused" : "single";
  j["use_cache"] = use_cache;
  j["pad_token_id"] = nullable(pad_token_id);
  j["bos_token_id"] = nullable(bos_token_id);
  if (eos_token_ids.size() == 1) {
    j["eos_token_id"] = eos_token_ids[0];
  } else if (eos_token_ids.empty()) {
    j["eos_token_id"] = nullptr;
  } else {
    j["eos_token_id"] = eos_token_ids;
  }
  j["max_inference_chunksize"] = max_inference_chunksize;
  if (!stored_dtype.empty()) j["dtype"] = stored_dtype;
  return j.dump(2) + "\n";
}

}  // namespace xlstm::engine
