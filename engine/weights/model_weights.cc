#include "engine/weights/model_weights.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/weights/checkpoint.h"

namespace xlstm::engine {
namespace {

// Makes a FloatTensor from a validated view: zero-copy for aligned F32, converted otherwise.
FloatTensor ToFloat(const TensorView& view, const std::shared_ptr<const void>& file_owner) {
  FloatTensor t;
  t.shape = view.shape;
  const size_t count = static_cast<size_t>(view.num_elements());
  if (view.dtype == DType::kF32 && reinterpret_cast<uintptr_t>(view.data) % alignof(float) == 0) {
    t.data = reinterpret_cast<const float*>(view.data);
    t.owner = file_owner;
    return t;
  }
  auto storage = std::make_shared<std::vector<float>>(count);
  ConvertToFloat(view.dtype, view.data, count, storage->data());
  t.data = storage->data();
  t.owner = storage;
  return t;
}

class WeightLoader {
 public:
  WeightLoader(Checkpoint* ckpt, std::shared_ptr<const void> owner)
      : ckpt_(ckpt), owner_(std::move(owner)) {}

  absl::StatusOr<FloatTensor> Take(const std::string& name, std::vector<int64_t> shape) {
    XLSTM_ASSIGN_OR_RETURN(const TensorView* view, ckpt_->Take(name, shape));
    return ToFloat(*view, owner_);
  }
  // A bias that exists only when `present` (use_bias); an absent one stays empty.
  absl::StatusOr<FloatTensor> TakeOptional(bool present, const std::string& name,
                                           std::vector<int64_t> shape) {
    if (!present) return FloatTensor{};
    return Take(name, std::move(shape));
  }

 private:
  Checkpoint* ckpt_;
  std::shared_ptr<const void> owner_;
};

absl::StatusOr<BlockWeights> LoadBlock(const ModelConfig& c, int64_t index, WeightLoader& w) {
  const int64_t D = c.hidden_size, QK = c.qk_dim(), V = c.v_dim(), NH = c.num_heads,
                F = c.ffn_dim();
  const bool bias = c.use_bias;
  const std::string p = absl::StrCat("backbone.blocks.", index, ".");
  const std::string m = p + "mlstm_layer.";
  BlockWeights b;
  XLSTM_ASSIGN_OR_RETURN(b.norm_mlstm_weight, w.Take(p + "norm_mlstm.weight", {D}));
  XLSTM_ASSIGN_OR_RETURN(b.norm_mlstm_bias, w.TakeOptional(bias, p + "norm_mlstm.bias", {D}));
  if (c.weight_mode == WeightMode::kSingle) {
    XLSTM_ASSIGN_OR_RETURN(b.q_weight, w.Take(m + "q.weight", {QK, D}));
    XLSTM_ASSIGN_OR_RETURN(b.q_bias, w.TakeOptional(bias, m + "q.bias", {QK}));
    XLSTM_ASSIGN_OR_RETURN(b.k_weight, w.Take(m + "k.weight", {QK, D}));
    XLSTM_ASSIGN_OR_RETURN(b.k_bias, w.TakeOptional(bias, m + "k.bias", {QK}));
    XLSTM_ASSIGN_OR_RETURN(b.v_weight, w.Take(m + "v.weight", {V, D}));
    XLSTM_ASSIGN_OR_RETURN(b.v_bias, w.TakeOptional(bias, m + "v.bias", {V}));
    XLSTM_ASSIGN_OR_RETURN(b.ogate_weight, w.Take(m + "ogate_preact.weight", {V, D}));
    XLSTM_ASSIGN_OR_RETURN(b.ogate_bias, w.TakeOptional(bias, m + "ogate_preact.bias", {V}));
    XLSTM_ASSIGN_OR_RETURN(b.igate_weight, w.Take(m + "igate_preact.weight", {NH, D}));
    XLSTM_ASSIGN_OR_RETURN(b.igate_bias, w.Take(m + "igate_preact.bias", {NH}));
    XLSTM_ASSIGN_OR_RETURN(b.fgate_weight, w.Take(m + "fgate_preact.weight", {NH, D}));
    XLSTM_ASSIGN_OR_RETURN(b.fgate_bias, w.Take(m + "fgate_preact.bias", {NH}));
  } else {
    // Fused rows: [q | k | v | o] and [i | f] (HF-M xLSTMLayer, docs §5).
    XLSTM_ASSIGN_OR_RETURN(FloatTensor qkvo, w.Take(m + "qkv_opreact.weight", {2 * QK + 2 * V, D}));
    b.q_weight = qkvo.Rows(0, QK);
    b.k_weight = qkvo.Rows(QK, QK);
    b.v_weight = qkvo.Rows(2 * QK, V);
    b.ogate_weight = qkvo.Rows(2 * QK + V, V);
    if (bias) {
      XLSTM_ASSIGN_OR_RETURN(FloatTensor qkvo_b, w.Take(m + "qkv_opreact.bias", {2 * QK + 2 * V}));
      b.q_bias = qkvo_b.Rows(0, QK);
      b.k_bias = qkvo_b.Rows(QK, QK);
      b.v_bias = qkvo_b.Rows(2 * QK, V);
      b.ogate_bias = qkvo_b.Rows(2 * QK + V, V);
    }
    XLSTM_ASSIGN_OR_RETURN(FloatTensor if_w, w.Take(m + "ifgate_preact.weight", {2 * NH, D}));
    XLSTM_ASSIGN_OR_RETURN(FloatTensor if_b, w.Take(m + "ifgate_preact.bias", {2 * NH}));
    b.igate_weight = if_w.Rows(0, NH);
    b.fgate_weight = if_w.Rows(NH, NH);
    b.igate_bias = if_b.Rows(0, NH);
    b.fgate_bias = if_b.Rows(NH, NH);
  }
  XLSTM_ASSIGN_OR_RETURN(b.multihead_norm_weight, w.Take(m + "multihead_norm.weight", {V}));
  XLSTM_ASSIGN_OR_RETURN(b.multihead_norm_bias,
                         w.TakeOptional(bias, m + "multihead_norm.bias", {V}));
  XLSTM_ASSIGN_OR_RETURN(b.out_proj_weight, w.Take(m + "out_proj.weight", {D, V}));
  XLSTM_ASSIGN_OR_RETURN(b.out_proj_bias, w.TakeOptional(bias, m + "out_proj.bias", {D}));
  XLSTM_ASSIGN_OR_RETURN(b.norm_ffn_weight, w.Take(p + "norm_ffn.weight", {D}));
  XLSTM_ASSIGN_OR_RETURN(b.norm_ffn_bias, w.TakeOptional(bias, p + "norm_ffn.bias", {D}));
  const std::string f = p + "ffn.";
  if (c.weight_mode == WeightMode::kSingle) {
    XLSTM_ASSIGN_OR_RETURN(b.up_gate_weight, w.Take(f + "proj_up_gate.weight", {F, D}));
    XLSTM_ASSIGN_OR_RETURN(b.up_gate_bias, w.TakeOptional(bias, f + "proj_up_gate.bias", {F}));
    XLSTM_ASSIGN_OR_RETURN(b.up_weight, w.Take(f + "proj_up.weight", {F, D}));
    XLSTM_ASSIGN_OR_RETURN(b.up_bias, w.TakeOptional(bias, f + "proj_up.bias", {F}));
  } else {
    XLSTM_ASSIGN_OR_RETURN(FloatTensor gz, w.Take(f + "proj_up_gate_z.weight", {2 * F, D}));
    b.up_gate_weight = gz.Rows(0, F);
    b.up_weight = gz.Rows(F, F);
    if (bias) {
      XLSTM_ASSIGN_OR_RETURN(FloatTensor gz_b, w.Take(f + "proj_up_gate_z.bias", {2 * F}));
      b.up_gate_bias = gz_b.Rows(0, F);
      b.up_bias = gz_b.Rows(F, F);
    }
  }
  XLSTM_ASSIGN_OR_RETURN(b.down_weight, w.Take(f + "proj_down.weight", {D, F}));
  XLSTM_ASSIGN_OR_RETURN(b.down_bias, w.TakeOptional(bias, f + "proj_down.bias", {D}));
  return b;
}

}  // namespace

FloatTensor FloatTensor::Rows(int64_t begin, int64_t count) const {
  XLSTM_CHECK(!shape.empty() && begin >= 0 && count >= 0 && begin + count <= shape[0]);
  int64_t row_size = 1;
  for (size_t i = 1; i < shape.size(); ++i) row_size *= shape[i];
  FloatTensor t;
  t.data = data + begin * row_size;
  t.shape = shape;
  t.shape[0] = count;
  t.owner = owner;
  return t;
}

absl::StatusOr<std::shared_ptr<const ModelWeights>> ModelWeights::Load(
    const std::string& model_dir) {
  XLSTM_ASSIGN_OR_RETURN(std::unique_ptr<Checkpoint> ckpt_unique, Checkpoint::Open(model_dir));
  // The checkpoint (and its mappings) lives as long as any zero-copy tensor points into it.
  std::shared_ptr<Checkpoint> ckpt(std::move(ckpt_unique));
  WeightLoader w(ckpt.get(), ckpt);
  auto weights = std::make_shared<ModelWeights>();
  ModelWeights& mw = *weights;
  mw.config = ckpt->config();
  const ModelConfig& c = mw.config;
  const int64_t D = c.hidden_size;

  // XL (NX-AI's xLSTMLarge) names the embedding `embedding.weight`; accept either.
  const std::string embedding_name =
      !ckpt->Has("backbone.embeddings.weight") && ckpt->Has("embedding.weight")
          ? "embedding.weight"
          : "backbone.embeddings.weight";
  XLSTM_ASSIGN_OR_RETURN(mw.embeddings, w.Take(embedding_name, {c.vocab_size, D}));
  for (int64_t i = 0; i < c.num_blocks; ++i) {
    XLSTM_ASSIGN_OR_RETURN(BlockWeights block, LoadBlock(c, i, w));
    mw.blocks.push_back(std::move(block));
  }
  XLSTM_ASSIGN_OR_RETURN(mw.out_norm_weight, w.Take("backbone.out_norm.weight", {D}));
  // HF 5.17 never ties (docs §7 G10): lm_head.weight, when present, is what it uses. Only a
  // checkpoint without it that asks for tying falls back to the embedding matrix.
  if (ckpt->Has("lm_head.weight") || !c.tie_word_embeddings) {
    XLSTM_ASSIGN_OR_RETURN(mw.lm_head, w.Take("lm_head.weight", {c.vocab_size, D}));
  } else {
    mw.lm_head = mw.embeddings;
  }
  XLSTM_RETURN_IF_ERROR(ckpt->CheckAllTaken());
  return std::shared_ptr<const ModelWeights>(std::move(weights));
}

}  // namespace xlstm::engine
