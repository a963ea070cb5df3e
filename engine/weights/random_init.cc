#include "engine/weights/random_init.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "engine/weights/safetensors.h"
#include "engine/weights/safetensors_writer.h"

namespace xlstm::engine {
namespace {

enum class Init {
  kLinear,
  kEmbedding,
  kLmHead,
  kGateWeight,
  kNormWeight,
  kIgateBias,
  kFgateBias,
  kBias
};

struct RandomTensor {
  TensorSpec spec;
  Init init;
};

// HF names and shapes for `c` (docs §5), in single or fused layout.
std::vector<RandomTensor> ListTensors(const ModelConfig& c, DType dtype) {
  const int64_t D = c.hidden_size, QK = c.qk_dim(), V = c.v_dim(), NH = c.num_heads,
                F = c.ffn_dim();
  std::vector<RandomTensor> out;
  auto add = [&](std::string name, std::vector<int64_t> shape, Init init) {
    out.push_back({TensorSpec{std::move(name), dtype, std::move(shape)}, init});
  };
  auto linear = [&](const std::string& name, int64_t rows, int64_t cols, bool bias,
                    Init init = Init::kLinear) {
    add(name + ".weight", {rows, cols}, init);
    if (bias) add(name + ".bias", {rows}, Init::kBias);
  };
  add("backbone.embeddings.weight", {c.vocab_size, D}, Init::kEmbedding);
  for (int64_t i = 0; i < c.num_blocks; ++i) {
    const std::string p = absl::StrCat("backbone.blocks.", i, ".");
    const std::string m = p + "mlstm_layer.";
    add(p + "norm_mlstm.weight", {D}, Init::kNormWeight);
    if (c.use_bias) add(p + "norm_mlstm.bias", {D}, Init::kBias);
    if (c.weight_mode == WeightMode::kSingle) {
      linear(m + "q", QK, D, c.use_bias);
      linear(m + "k", QK, D, c.use_bias);
      linear(m + "v", V, D, c.use_bias);
      linear(m + "ogate_preact", V, D, c.use_bias);
      add(m + "igate_preact.weight", {NH, D}, Init::kGateWeight);
      add(m + "igate_preact.bias", {NH}, Init::kIgateBias);
      add(m + "fgate_preact.weight", {NH, D}, Init::kGateWeight);
      add(m + "fgate_preact.bias", {NH}, Init::kFgateBias);
    } else {
      linear(m + "qkv_opreact", 2 * QK + 2 * V, D, c.use_bias);
      add(m + "ifgate_preact.weight", {2 * NH, D}, Init::kGateWeight);
      // Fused gate bias: first NH input-gate, last NH forget-gate; filled in Fill().
      add(m + "ifgate_preact.bias", {2 * NH}, Init::kIgateBias);
    }
    add(m + "multihead_norm.weight", {V}, Init::kNormWeight);
    if (c.use_bias) add(m + "multihead_norm.bias", {V}, Init::kBias);
    linear(m + "out_proj", D, V, c.use_bias);
    add(p + "norm_ffn.weight", {D}, Init::kNormWeight);
    if (c.use_bias) add(p + "norm_ffn.bias", {D}, Init::kBias);
    if (c.weight_mode == WeightMode::kSingle) {
      linear(p + "ffn.proj_up_gate", F, D, c.use_bias);
      linear(p + "ffn.proj_up", F, D, c.use_bias);
    } else {
      linear(p + "ffn.proj_up_gate_z", 2 * F, D, c.use_bias);
    }
    linear(p + "ffn.proj_down", D, F, c.use_bias);
  }
  add("backbone.out_norm.weight", {D}, Init::kNormWeight);
  add("lm_head.weight", {c.vocab_size, D}, Init::kLmHead);
  return out;
}

uint64_t Fnv1a(absl::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (char ch : s) h = (h ^ static_cast<uint8_t>(ch)) * 1099511628211ull;
  return h;
}

void Fill(const RandomTensor& t, uint64_t seed, std::vector<float>& values) {
  std::mt19937_64 rng(seed ^ Fnv1a(t.spec.name));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t fan_in = t.spec.shape.size() == 2 ? t.spec.shape[1] : 1;
  const float linear_std = 1.0f / std::sqrt(static_cast<float>(fan_in));
  const size_t n = values.size();
  for (size_t i = 0; i < n; ++i) {
    const float z = normal(rng);
    switch (t.init) {
      case Init::kLinear:
        values[i] = z * linear_std;
        break;
      case Init::kEmbedding:
        values[i] = z;
        break;
      case Init::kLmHead:
        values[i] = 6.0f * z * linear_std;
        break;
      case Init::kGateWeight:
        values[i] = 3.0f * z * linear_std;
        break;
      case Init::kNormWeight:
        values[i] = 1.0f + 0.2f * z;
        break;
      case Init::kIgateBias:
        // Fused [i | f] bias: the second half is the forget gate's.
        values[i] = absl::EndsWith(t.spec.name, "ifgate_preact.bias") && i >= n / 2
                        ? 2.0f + 2.0f * z
                        : -1.0f + 2.0f * z;
        break;
      case Init::kFgateBias:
        values[i] = 2.0f + 2.0f * z;
        break;
      case Init::kBias:
        values[i] = 0.1f * z;
        break;
    }
  }
}

absl::Status WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat(path.string(), ": write failed"));
  return absl::OkStatus();
}

// Refuses shapes whose weights would not fit the limits (random_init.h). Sizes are summed in
// long double: with dims up to 2^24 a tensor has up to 2^48 elements and a model thousands of
// tensors, which can overflow uint64.
absl::Status CheckSizes(const ModelConfig& c, const std::vector<RandomTensor>& tensors,
                        DType dtype) {
  long double total_bytes = 0;
  for (const RandomTensor& t : tensors) {
    long double elements = 1;
    for (int64_t d : t.spec.shape) elements *= static_cast<long double>(d);
    if (elements > static_cast<long double>(kMaxRandomTensorElements)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tensor '%s' %s would have %.4g elements (hidden_size %d, vocab_size %d), over the "
          "limit of %d elements for one random tensor",
          t.spec.name, ShapeToString(t.spec.shape), static_cast<double>(elements), c.hidden_size,
          c.vocab_size, kMaxRandomTensorElements));
    }
    total_bytes += elements * static_cast<long double>(DTypeSize(dtype));
  }
  if (total_bytes > static_cast<long double>(kMaxRandomModelBytes)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the weights would take %.4g bytes in %s (hidden_size %d, num_blocks %d, vocab_size %d), "
        "over the limit of %d bytes (64 GiB) for a random model",
        static_cast<double>(total_bytes), DTypeName(dtype), c.hidden_size, c.num_blocks,
        c.vocab_size, kMaxRandomModelBytes));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckRandomModelSize(const ModelConfig& config, DType dtype) {
  return CheckSizes(config, ListTensors(config, dtype), dtype);
}

absl::Status WriteRandomModel(const ModelConfig& config, uint64_t seed, DType dtype,
                              const std::string& out_dir) {
  if (!IsWeightDType(dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight dtype must be F32, BF16 or F16, got ", DTypeName(dtype)));
  }
  const std::vector<RandomTensor> tensors = ListTensors(config, dtype);
  XLSTM_RETURN_IF_ERROR(CheckSizes(config, tensors, dtype));
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat(out_dir, ": cannot create: ", ec.message()));
  const std::filesystem::path dir(out_dir);

  ModelConfig written = config;
  written.stored_dtype = dtype == DType::kF32    ? "float32"
                         : dtype == DType::kBF16 ? "bfloat16"
                                                 : "float16";
  XLSTM_RETURN_IF_ERROR(WriteText(dir / "config.json", written.ToJson()));

  std::vector<TensorSpec> specs;
  for (const RandomTensor& t : tensors) specs.push_back(t.spec);
  std::vector<float> values;
  XLSTM_RETURN_IF_ERROR(WriteSafetensors((dir / "model.safetensors").string(), specs,
                                         [&](size_t index, absl::Span<std::byte> out) {
                                           values.resize(out.size() / DTypeSize(dtype));
                                           Fill(tensors[index], seed, values);
                                           if (dtype == DType::kF32) {
                                             std::memcpy(out.data(), values.data(), out.size());
                                             return;
                                           }
                                           for (size_t i = 0; i < values.size(); ++i) {
                                             const uint16_t bits = dtype == DType::kBF16
                                                                       ? FloatToBF16(values[i])
                                                                       : FloatToF16(values[i]);
                                             out[2 * i] = static_cast<std::byte>(bits & 0xff);
                                             out[2 * i + 1] = static_cast<std::byte>(bits >> 8);
                                           }
                                         },
                                         {{"format", "pt"}}));
  return absl::OkStatus();
}

}  // namespace xlstm::engine
