#include "engine/cpu/cpu_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/cpu/matmul.h"

namespace xlstm::engine {
namespace {

// HF's xLSTMRMSNorm in fp32: x * rsqrt(mean(x²) + eps) * weight (+ bias).
void RmsNorm(const float* x, int64_t rows, int64_t dim, const FloatTensor& weight,
             const FloatTensor& bias, double eps, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * dim;
    float* out = y + r * dim;
    double sum_sq = 0;
    for (int64_t i = 0; i < dim; ++i) sum_sq += static_cast<double>(in[i]) * in[i];
    const float inv_rms =
        static_cast<float>(1.0 / std::sqrt(sum_sq / static_cast<double>(dim) + eps));
    for (int64_t i = 0; i < dim; ++i) {
      out[i] = in[i] * inv_rms * weight.data[i] + (bias.present() ? bias.data[i] : 0.0f);
    }
  }
}

float SoftCap(float x, const std::optional<double>& cap) {
  if (!cap) return x;
  const float c = static_cast<float>(*cap);
  return c * std::tanh(x / c);
}

float LogSigmoid(float x) { return std::min(x, 0.0f) - std::log1p(std::exp(-std::fabs(x))); }
float Sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// One recurrent step of one head (docs §4.2). Updates C [dqk, dv], n [dqk], m in place and
// writes the head output h [dv].
void MlstmStep(const float* q, const float* k, const float* v, float i_preact, float f_preact,
               int64_t dqk, int64_t dv, float eps, float* C, float* n, float* m, float* h) {
  const float log_f = LogSigmoid(f_preact);
  const float m_old = *m;
  const float m_new = std::max(log_f + m_old, i_preact);
  const float f_act = std::exp(log_f + m_old - m_new);
  const float i_act = std::exp(i_preact - m_new);
  *m = m_new;
  for (int64_t a = 0; a < dqk; ++a) {
    float* c_row = C + a * dv;
    const float ik = i_act * k[a];
    for (int64_t b = 0; b < dv; ++b) c_row[b] = f_act * c_row[b] + ik * v[b];
    n[a] = f_act * n[a] + i_act * k[a];
  }
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dqk)));
  float qn = 0.0f;
  for (int64_t b = 0; b < dv; ++b) h[b] = 0.0f;
  for (int64_t a = 0; a < dqk; ++a) {
    const float qa = q[a] * scale;
    const float* c_row = C + a * dv;
    for (int64_t b = 0; b < dv; ++b) h[b] += qa * c_row[b];
    qn += qa * n[a];
  }
  const float denom = std::max(std::fabs(qn), std::exp(-m_new)) + eps;
  for (int64_t b = 0; b < dv; ++b) h[b] /= denom;
}

// Per-head LayerNorm over dv (biased variance), times weight (+ bias), gated by sigmoid(o).
void HeadNormAndGate(float* h, const float* o_preact, int64_t heads, int64_t dv,
                     const FloatTensor& weight, const FloatTensor& bias, double eps) {
  for (int64_t j = 0; j < heads; ++j) {
    float* hh = h + j * dv;
    double mean = 0;
    for (int64_t b = 0; b < dv; ++b) mean += hh[b];
    mean /= static_cast<double>(dv);
    double var = 0;
    for (int64_t b = 0; b < dv; ++b) var += (hh[b] - mean) * (hh[b] - mean);
    var /= static_cast<double>(dv);
    const float inv_std = static_cast<float>(1.0 / std::sqrt(var + eps));
    const float mean_f = static_cast<float>(mean);
    for (int64_t b = 0; b < dv; ++b) {
      const int64_t idx = j * dv + b;
      float y = (hh[b] - mean_f) * inv_std * weight.data[idx];
      if (bias.present()) y += bias.data[idx];
      hh[b] = Sigmoid(o_preact[idx]) * y;
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<CpuModel>> CpuModel::Load(const std::string& model_dir) {
  XLSTM_ASSIGN_OR_RETURN(std::shared_ptr<const ModelWeights> weights,
                         ModelWeights::Load(model_dir));
  return std::make_unique<CpuModel>(std::move(weights));
}

CpuModel::CpuModel(std::shared_ptr<const ModelWeights> weights) : weights_(std::move(weights)) {}

void CpuModel::Block(const BlockWeights& w, int64_t block_index,
                     absl::Span<const SequenceChunk> batch, int64_t T,
                     std::vector<float>& x) const {
  const ModelConfig& c = config();
  const int64_t D = c.hidden_size, QK = c.qk_dim(), V = c.v_dim(), NH = c.num_heads,
                F = c.ffn_dim(), DQK = c.qk_head_dim(), DV = c.v_head_dim();
  std::vector<float> h(T * D), q(T * QK), k(T * QK), v(T * V), o(T * V), ig(T * NH), fg(T * NH),
      cell(T * V), y(T * D);

  // mLSTM sub-layer: x += out_proj(sigmoid(o) * MultiHeadLayerNorm(mLSTM(q, k, v, i, f))).
  RmsNorm(x.data(), T, D, w.norm_mlstm_weight, w.norm_mlstm_bias, c.norm_eps, h.data());
  Linear(h.data(), T, w.q_weight, w.q_bias, q.data());
  Linear(h.data(), T, w.k_weight, w.k_bias, k.data());
  Linear(h.data(), T, w.v_weight, w.v_bias, v.data());
  Linear(h.data(), T, w.ogate_weight, w.ogate_bias, o.data());
  Linear(h.data(), T, w.igate_weight, w.igate_bias, ig.data());
  Linear(h.data(), T, w.fgate_weight, w.fgate_bias, fg.data());
  for (float& g : ig) g = SoftCap(g, c.gate_soft_cap);
  for (float& g : fg) g = SoftCap(g, c.gate_soft_cap);
  const float eps = static_cast<float>(c.eps);
  int64_t row = 0;
  for (const SequenceChunk& chunk : batch) {
    RecurrentState& state = *chunk.state;
    for (size_t t = 0; t < chunk.tokens.size(); ++t, ++row) {
      for (int64_t j = 0; j < NH; ++j) {
        MlstmStep(&q[row * QK + j * DQK], &k[row * QK + j * DQK], &v[row * V + j * DV],
                  ig[row * NH + j], fg[row * NH + j], DQK, DV, eps, state.C(block_index, j),
                  state.n(block_index, j), state.m(block_index, j), &cell[row * V + j * DV]);
      }
      HeadNormAndGate(&cell[row * V], &o[row * V], NH, DV, w.multihead_norm_weight,
                      w.multihead_norm_bias, c.norm_eps);
    }
  }
  Linear(cell.data(), T, w.out_proj_weight, w.out_proj_bias, y.data());
  for (int64_t i = 0; i < T * D; ++i) x[i] += y[i];

  // SwiGLU feed-forward sub-layer: x += down(silu(up_gate(h2)) * up(h2)).
  RmsNorm(x.data(), T, D, w.norm_ffn_weight, w.norm_ffn_bias, c.norm_eps, h.data());
  std::vector<float> gate(T * F), up(T * F);
  Linear(h.data(), T, w.up_gate_weight, w.up_gate_bias, gate.data());
  Linear(h.data(), T, w.up_weight, w.up_bias, up.data());
  for (int64_t i = 0; i < T * F; ++i) gate[i] = gate[i] * Sigmoid(gate[i]) * up[i];
  Linear(gate.data(), T, w.down_weight, w.down_bias, y.data());
  for (int64_t i = 0; i < T * D; ++i) x[i] += y[i];
}

absl::StatusOr<std::vector<float>> CpuModel::Forward(absl::Span<const SequenceChunk> batch) const {
  return Forward(batch, nullptr);
}

absl::StatusOr<std::vector<float>> CpuModel::Forward(absl::Span<const SequenceChunk> batch,
                                                     std::vector<float>* hidden) const {
  const ModelConfig& c = config();
  const int64_t D = c.hidden_size, vocab = c.vocab_size;
  int64_t T = 0;
  for (size_t s = 0; s < batch.size(); ++s) {
    const SequenceChunk& chunk = batch[s];
    XLSTM_CHECK(chunk.state != nullptr && chunk.state->num_blocks() == c.num_blocks);
    if (chunk.tokens.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence ", s, " of the batch has no tokens"));
    }
    for (size_t t = 0; t < chunk.tokens.size(); ++t) {
      const int32_t id = chunk.tokens[t];
      if (id < 0 || id >= vocab) {
        return absl::InvalidArgumentError(absl::StrCat(
            "token id ", id, " at position ", t, " is outside the vocabulary [0, ", vocab, ")"));
      }
    }
    T += static_cast<int64_t>(chunk.tokens.size());
  }

  std::vector<float> x(T * D);
  int64_t row = 0;
  for (const SequenceChunk& chunk : batch) {
    for (int32_t id : chunk.tokens) {
      std::memcpy(&x[row * D], weights_->embeddings.data + static_cast<int64_t>(id) * D,
                  D * sizeof(float));
      ++row;
    }
  }
  for (int64_t b = 0; b < c.num_blocks; ++b) Block(weights_->blocks[b], b, batch, T, x);

  // Only the rows whose logits are wanted go through out_norm and the (large) lm_head.
  std::vector<float> normed =
      NormedRows(batch, x, [](const SequenceChunk& chunk) { return chunk.logits; });
  if (hidden != nullptr) {
    *hidden = NormedRows(batch, x, [](const SequenceChunk& chunk) { return chunk.hidden; });
  }
  const int64_t R = static_cast<int64_t>(normed.size()) / D;
  std::vector<float> logits(R * vocab);
  Linear(normed.data(), R, weights_->lm_head, FloatTensor{}, logits.data());
  for (float& l : logits) l = SoftCap(l, c.output_logit_soft_cap);
  return logits;
}

template <typename Mode>
std::vector<float> CpuModel::NormedRows(absl::Span<const SequenceChunk> batch,
                                        const std::vector<float>& x, const Mode& mode) const {
  const ModelConfig& c = config();
  const int64_t D = c.hidden_size;
  std::vector<int64_t> wanted_rows;
  int64_t row = 0;
  for (const SequenceChunk& chunk : batch) {
    const int64_t n = static_cast<int64_t>(chunk.tokens.size());
    if (mode(chunk) == LogitsMode::kAll) {
      for (int64_t t = 0; t < n; ++t) wanted_rows.push_back(row + t);
    } else if (mode(chunk) == LogitsMode::kLast) {
      wanted_rows.push_back(row + n - 1);
    }
    row += n;
  }
  const int64_t R = static_cast<int64_t>(wanted_rows.size());
  std::vector<float> selected(R * D), normed(R * D);
  for (int64_t r = 0; r < R; ++r) {
    std::memcpy(&selected[r * D], &x[wanted_rows[r] * D], D * sizeof(float));
  }
  RmsNorm(selected.data(), R, D, weights_->out_norm_weight, FloatTensor{}, c.norm_eps,
          normed.data());
  return normed;
}

absl::StatusOr<std::vector<float>> CpuModel::Prefill(RecurrentState& state,
                                                     absl::Span<const int32_t> tokens,
                                                     LogitsMode logits) const {
  const SequenceChunk chunk{&state, tokens, logits};
  return Forward(absl::MakeConstSpan(&chunk, 1));
}

absl::StatusOr<std::vector<float>> CpuModel::DecodeStep(absl::Span<RecurrentState* const> states,
                                                        absl::Span<const int32_t> tokens) const {
  if (states.size() != tokens.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("DecodeStep: ", states.size(), " states but ", tokens.size(), " tokens"));
  }
  std::vector<SequenceChunk> batch;
  batch.reserve(states.size());
  for (size_t i = 0; i < states.size(); ++i) {
    batch.push_back({states[i], tokens.subspan(i, 1), LogitsMode::kLast});
  }
  return Forward(batch);
}

}  // namespace xlstm::engine
