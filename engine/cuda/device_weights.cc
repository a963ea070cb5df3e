#include "engine/cuda/device_weights.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"
#include "common/status_macros.h"

namespace xlstm::engine::cuda {
namespace {

// Every tensor starts on a 256-byte boundary (cuBLAS and vector loads like aligned operands).
constexpr uint64_t kAlignment = 256;
// Host tensors are uploaded through a device staging buffer of this many floats and converted
// on the device, so host memory holds nothing beyond the (mmapped) checkpoint.
constexpr int64_t kStagingFloats = int64_t{16} << 20;

// Assigns offsets in one allocation. Run once with base 0 to count, then with the real base.
class Arena {
 public:
  explicit Arena(uintptr_t base) : base_(base) {}
  void* Take(int64_t bytes) {
    offset_ = (offset_ + kAlignment - 1) / kAlignment * kAlignment;
    void* p = reinterpret_cast<void*>(base_ + offset_);
    offset_ += static_cast<uint64_t>(bytes);
    return p;
  }
  float* TakeFloats(int64_t count) { return static_cast<float*>(Take(count * 4)); }
  uint64_t used() const { return offset_; }

 private:
  uintptr_t base_;
  uint64_t offset_ = 0;
};

}  // namespace

absl::Status DeviceWeights::AllocateAndLayOut() {
  const ModelConfig& c = config_;
  const int64_t D = c.hidden_size, QK = c.qk_dim(), V = c.v_dim(), NH = c.num_heads,
                F = c.ffn_dim(), vocab = c.vocab_size;
  const int64_t act = static_cast<int64_t>(ActSize(type_));
  auto lay_out = [&](Arena& arena) {
    blocks_.assign(c.num_blocks, DeviceBlockWeights{});
    embeddings_ = arena.Take(vocab * D * act);
    for (DeviceBlockWeights& b : blocks_) {
      b.norm_mlstm_weight = arena.TakeFloats(D);
      b.in_proj = {arena.Take((2 * QK + 2 * V + 2 * NH) * D * act), 2 * QK + 2 * V + 2 * NH, D,
                   type_};
      b.igate_bias = arena.TakeFloats(NH);
      b.fgate_bias = arena.TakeFloats(NH);
      b.head_norm_weight = arena.TakeFloats(V);
      b.out_proj = {arena.Take(D * V * act), D, V, type_};
      b.norm_ffn_weight = arena.TakeFloats(D);
      b.up_proj = {arena.Take(2 * F * D * act), 2 * F, D, type_};
      b.down_proj = {arena.Take(D * F * act), D, F, type_};
      if (c.use_bias) {
        b.norm_mlstm_bias = arena.TakeFloats(D);
        b.qkvo_bias = arena.TakeFloats(2 * QK + 2 * V);
        b.head_norm_bias = arena.TakeFloats(V);
        b.out_proj_bias = arena.TakeFloats(D);
        b.norm_ffn_bias = arena.TakeFloats(D);
        b.up_proj_bias = arena.TakeFloats(2 * F);
        b.down_proj_bias = arena.TakeFloats(D);
      }
    }
    out_norm_weight_ = arena.TakeFloats(D);
    lm_head_ = {arena.Take(vocab * D * act), vocab, D, type_};
  };
  Arena counting(0);
  lay_out(counting);
  XLSTM_ASSIGN_OR_RETURN(storage_, DeviceBuffer::Allocate(counting.used(), "the model weights"));
  Arena real(reinterpret_cast<uintptr_t>(storage_.data()));
  lay_out(real);
  return absl::OkStatus();
}

namespace {

// Copies a host fp32 tensor (or rows of one) to `dst` (element offset `dst_offset`, of `type`)
// through the device staging buffer.
absl::Status UploadTensor(const FloatTensor& src, void* dst, int64_t dst_offset, ActType type,
                          float* staging, cudaStream_t stream) {
  int64_t count = 1;
  for (int64_t d : src.shape) count *= d;
  for (int64_t done = 0; done < count; done += kStagingFloats) {
    const int64_t n = std::min(kStagingFloats, count - done);
    XLSTM_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(staging, src.data + done, n * sizeof(float),
                                               cudaMemcpyHostToDevice, stream));
    void* out = static_cast<char*>(dst) + (dst_offset + done) * ActSize(type);
    XLSTM_RETURN_IF_ERROR(LaunchConvertF32(staging, n, out, type, stream));
    // The staging buffer is reused by the next copy: wait for the conversion to finish.
    XLSTM_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<DeviceWeights>> DeviceWeights::Upload(const ModelWeights& weights,
                                                                     ActType type,
                                                                     cudaStream_t stream) {
  std::unique_ptr<DeviceWeights> dw(new DeviceWeights(weights.config, type));
  XLSTM_RETURN_IF_ERROR(dw->AllocateAndLayOut());
  XLSTM_ASSIGN_OR_RETURN(
      DeviceBuffer staging,
      DeviceBuffer::Allocate(kStagingFloats * sizeof(float), "the weight upload staging buffer"));
  float* stage = staging.as<float>();
  const ModelConfig& c = weights.config;
  const int64_t QK = c.qk_dim(), V = c.v_dim(), F = c.ffn_dim();
  auto matrix = [&](const FloatTensor& t, const DeviceMatrix& m, int64_t first_row) {
    return UploadTensor(t, const_cast<void*>(m.data), first_row * m.in_features, type, stage,
                        stream);
  };
  auto vector = [&](const FloatTensor& t, const float* dst, int64_t offset) {
    return UploadTensor(t, const_cast<float*>(dst), offset, ActType::kF32, stage, stream);
  };
  XLSTM_RETURN_IF_ERROR(
      UploadTensor(weights.embeddings, const_cast<void*>(dw->embeddings_), 0, type, stage, stream));
  for (int64_t i = 0; i < c.num_blocks; ++i) {
    const BlockWeights& w = weights.blocks[i];
    const DeviceBlockWeights& b = dw->blocks_[i];
    XLSTM_RETURN_IF_ERROR(vector(w.norm_mlstm_weight, b.norm_mlstm_weight, 0));
    XLSTM_RETURN_IF_ERROR(matrix(w.q_weight, b.in_proj, 0));
    XLSTM_RETURN_IF_ERROR(matrix(w.k_weight, b.in_proj, QK));
    XLSTM_RETURN_IF_ERROR(matrix(w.v_weight, b.in_proj, 2 * QK));
    XLSTM_RETURN_IF_ERROR(matrix(w.ogate_weight, b.in_proj, 2 * QK + V));
    XLSTM_RETURN_IF_ERROR(matrix(w.igate_weight, b.in_proj, 2 * QK + 2 * V));
    XLSTM_RETURN_IF_ERROR(matrix(w.fgate_weight, b.in_proj, 2 * QK + 2 * V + c.num_heads));
    XLSTM_RETURN_IF_ERROR(vector(w.igate_bias, b.igate_bias, 0));
    XLSTM_RETURN_IF_ERROR(vector(w.fgate_bias, b.fgate_bias, 0));
    XLSTM_RETURN_IF_ERROR(vector(w.multihead_norm_weight, b.head_norm_weight, 0));
    XLSTM_RETURN_IF_ERROR(matrix(w.out_proj_weight, b.out_proj, 0));
    XLSTM_RETURN_IF_ERROR(vector(w.norm_ffn_weight, b.norm_ffn_weight, 0));
    XLSTM_RETURN_IF_ERROR(matrix(w.up_gate_weight, b.up_proj, 0));
    XLSTM_RETURN_IF_ERROR(matrix(w.up_weight, b.up_proj, F));
    XLSTM_RETURN_IF_ERROR(matrix(w.down_weight, b.down_proj, 0));
    if (c.use_bias) {
      XLSTM_RETURN_IF_ERROR(vector(w.norm_mlstm_bias, b.norm_mlstm_bias, 0));
      XLSTM_RETURN_IF_ERROR(vector(w.q_bias, b.qkvo_bias, 0));
      XLSTM_RETURN_IF_ERROR(vector(w.k_bias, b.qkvo_bias, QK));
      XLSTM_RETURN_IF_ERROR(vector(w.v_bias, b.qkvo_bias, 2 * QK));
      XLSTM_RETURN_IF_ERROR(vector(w.ogate_bias, b.qkvo_bias, 2 * QK + V));
      XLSTM_RETURN_IF_ERROR(vector(w.multihead_norm_bias, b.head_norm_bias, 0));
      XLSTM_RETURN_IF_ERROR(vector(w.out_proj_bias, b.out_proj_bias, 0));
      XLSTM_RETURN_IF_ERROR(vector(w.norm_ffn_bias, b.norm_ffn_bias, 0));
      XLSTM_RETURN_IF_ERROR(vector(w.up_gate_bias, b.up_proj_bias, 0));
      XLSTM_RETURN_IF_ERROR(vector(w.up_bias, b.up_proj_bias, F));
      XLSTM_RETURN_IF_ERROR(vector(w.down_bias, b.down_proj_bias, 0));
    }
  }
  XLSTM_RETURN_IF_ERROR(vector(weights.out_norm_weight, dw->out_norm_weight_, 0));
  XLSTM_RETURN_IF_ERROR(matrix(weights.lm_head, dw->lm_head_, 0));
  return dw;
}

absl::StatusOr<std::unique_ptr<DeviceWeights>> DeviceWeights::Random(const ModelConfig& config,
                                                                     uint64_t seed, ActType type,
                                                                     cudaStream_t stream) {
  std::unique_ptr<DeviceWeights> dw(new DeviceWeights(config, type));
  XLSTM_RETURN_IF_ERROR(dw->AllocateAndLayOut());
  const ModelConfig& c = config;
  const int64_t D = c.hidden_size, QK = c.qk_dim(), V = c.v_dim(), NH = c.num_heads,
                F = c.ffn_dim(), vocab = c.vocab_size;
  uint64_t tensor_index = 0;
  // Each tensor gets its own stream of numbers: seed mixed with a running tensor index.
  auto fill = [&](const void* dst, ActType t, int64_t count, float mean, float stddev) {
    return LaunchRandomNormal(const_cast<void*>(dst), t, count,
                              seed * 0x9e3779b97f4a7c15ull + (++tensor_index), mean, stddev,
                              stream);
  };
  auto rows_of = [&](const DeviceMatrix& m, int64_t first_row) {
    return static_cast<const char*>(m.data) + first_row * m.in_features * ActSize(type);
  };
  const float linear_d = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  XLSTM_RETURN_IF_ERROR(fill(dw->embeddings_, type, vocab * D, 0.0f, 1.0f));
  for (const DeviceBlockWeights& b : dw->blocks_) {
    XLSTM_RETURN_IF_ERROR(fill(b.norm_mlstm_weight, ActType::kF32, D, 1.0f, 0.2f));
    XLSTM_RETURN_IF_ERROR(fill(b.in_proj.data, type, (2 * QK + 2 * V) * D, 0.0f, linear_d));
    XLSTM_RETURN_IF_ERROR(
        fill(rows_of(b.in_proj, 2 * QK + 2 * V), type, 2 * NH * D, 0.0f, 3.0f * linear_d));
    XLSTM_RETURN_IF_ERROR(fill(b.igate_bias, ActType::kF32, NH, -1.0f, 2.0f));
    XLSTM_RETURN_IF_ERROR(fill(b.fgate_bias, ActType::kF32, NH, 2.0f, 2.0f));
    XLSTM_RETURN_IF_ERROR(fill(b.head_norm_weight, ActType::kF32, V, 1.0f, 0.2f));
    XLSTM_RETURN_IF_ERROR(fill(b.out_proj.data, type, D * V, 0.0f,
                               static_cast<float>(1.0 / std::sqrt(static_cast<double>(V)))));
    XLSTM_RETURN_IF_ERROR(fill(b.norm_ffn_weight, ActType::kF32, D, 1.0f, 0.2f));
    XLSTM_RETURN_IF_ERROR(fill(b.up_proj.data, type, 2 * F * D, 0.0f, linear_d));
    XLSTM_RETURN_IF_ERROR(fill(b.down_proj.data, type, D * F, 0.0f,
                               static_cast<float>(1.0 / std::sqrt(static_cast<double>(F)))));
    if (c.use_bias) {
      for (auto [ptr, n] : {std::pair<const float*, int64_t>{b.norm_mlstm_bias, D},
                            {b.qkvo_bias, 2 * QK + 2 * V},
                            {b.head_norm_bias, V},
                            {b.out_proj_bias, D},
                            {b.norm_ffn_bias, D},
                            {b.up_proj_bias, 2 * F},
                            {b.down_proj_bias, D}}) {
        XLSTM_RETURN_IF_ERROR(fill(ptr, ActType::kF32, n, 0.0f, 0.1f));
      }
    }
  }
  XLSTM_RETURN_IF_ERROR(fill(dw->out_norm_weight_, ActType::kF32, D, 1.0f, 0.2f));
  XLSTM_RETURN_IF_ERROR(fill(dw->lm_head_.data, type, vocab * D, 0.0f, 6.0f * linear_d));
  XLSTM_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  return dw;
}

}  // namespace xlstm::engine::cuda
