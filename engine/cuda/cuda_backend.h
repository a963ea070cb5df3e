// The CUDA backend: the xLSTM forward pass on one NVIDIA GPU behind the Backend seam
// (engine/backend.h), with every sequence's recurrent state in a slot pool in device memory.
//
// A Forward() packs its rows' tokens into one [T, D] activation matrix, so a step mixing decode
// rows (1 token) and prefill chunks runs one GEMM per projection; the mLSTM cell runs a scan
// kernel that keeps each row's C and n on chip across its tokens and reads and writes them in
// the pool in place (one read and one write of C per layer per step).
//
// Decode-only steps (every row feeds one token and wants its last logits or samples) are padded
// to a batch-size bucket (1, 2, 4, ... up to the largest decode batch) and replayed from a CUDA
// graph captured at Create for that bucket: embedding, every layer and the head (out_norm,
// lm_head, soft-cap) in one launch. The graph reads the rows' tokens and slots from fixed device
// arrays, so one graph serves any set of slots. Padding rows have no tokens to scan (the gates
// and the scan skip them: no state traffic) and point at a private scratch slot past
// num_slots(). Steps with prefill chunks or scores run the general path, kernel by kernel.
// Sampling (DeviceSampler) runs after the graph. A step synchronizes with the host once, when
// its outputs (sampled tokens, argmaxes or logits) are copied back.
//
// Memory: weights, a workspace sized for `max_step_tokens` tokens and `max_logit_rows` logit
// rows, the slot pool and the decode graphs are made in Create(); nothing is allocated per
// step. The pool takes what is left of free device memory after a reserve, capped by
// `max_slots` (plus the scratch slot).
//
// Errors: a bad row (slot out of range or repeated, empty, token outside the vocabulary) is
// rejected before any work, leaving every slot as it was. A CUDA or cuBLAS failure during a
// step is a device fault: the backend is then failed for good and every later call returns
// that first error (the server reports NOT_SERVING and exits so that it is restarted).
//
// Threading: like every Backend, owned and called by one thread.
#ifndef XLSTM_ENGINE_CUDA_CUDA_BACKEND_H_
#define XLSTM_ENGINE_CUDA_CUDA_BACKEND_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/backend.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/device_sampler.h"
#include "engine/cuda/device_weights.h"
#include "engine/cuda/gemm.h"
#include "engine/cuda/kernels.h"

namespace xlstm::engine::cuda {

// How decode-only steps run (see the file comment).
enum class DecodePath {
  kGraphs,   // padded to a bucket and replayed from CUDA graphs captured at Create (default)
  kBuckets,  // the same padded work launched kernel by kernel: bit-identical to kGraphs (tests)
  kGeneral,  // unpadded, through the general path of steps with prefill chunks
};

struct CudaBackendOptions {
  int device = 0;
  // fp32 weights and GEMM operands (exact comparisons with the CPU reference); default bf16.
  bool fp32_weights = false;
  // With bf16 weights: GEMM activations as bf16 pairs (~16 bits, Gemm::EnableBf16x2) instead of
  // bf16. Decode costs about the same (weights are read once); prefill GEMMs do twice the work.
  bool bf16x2_activations = false;
  // Upper bound on the slot pool; the pool is min(max_slots, what fits). >= 1.
  int32_t max_slots = 256;
  // Device memory left free after everything is allocated (cuBLAS, fragmentation, others).
  int64_t reserve_bytes = int64_t{1} << 30;
  // Tokens processed by one pass of the layers; a Forward() with more is run in several passes
  // (rows are never split unless one row alone is longer). Sizes the activation workspace.
  int64_t max_step_tokens = 4096;
  // Logit rows computed per lm_head pass (kAll rows of long Score inputs are done in pieces).
  int64_t max_logit_rows = 256;
  // Decode-only steps of up to min(num_slots, max_logit_rows, max_step_tokens) rows.
  DecodePath decode_path = DecodePath::kGraphs;
  // Storage of the recurrent state's C and n (m stays fp32). kBF16 halves the slot bytes and the
  // state traffic of decode (the arithmetic stays fp32, rounded to bf16 when stored) at an
  // accuracy cost measured in tests/cuda/cuda_backend_test.cc and tests/bench/NOTES.md.
  ActType state_type = ActType::kF32;
  // bf16 products of one row (decode at batch 1) run a GEMV kernel, faster than cuBLAS there
  // (gemv_bf16.h); off: cuBLAS for every product.
  bool small_batch_gemv = true;
};

// Number of usable CUDA devices; 0 (not an error) without a driver or a GPU.
int CudaDeviceCount();

// Name, SM count and memory of a device, for logs and benchmark reports.
struct CudaDeviceInfo {
  std::string name;
  int sm_count = 0;
  int64_t total_bytes = 0;
  int64_t free_bytes = 0;
  int compute_capability = 0;  // e.g. 90
};
absl::StatusOr<CudaDeviceInfo> GetCudaDeviceInfo(int device);

class CudaBackend : public Backend {
 public:
  // Uploads `weights` (which may be released afterwards).
  static absl::StatusOr<std::unique_ptr<CudaBackend>> Create(const ModelWeights& weights,
                                                             const CudaBackendOptions& options);
  // Loads the model directory and uploads it, holding one host copy at most (F32 tensors are
  // mmapped) for the duration of the upload.
  static absl::StatusOr<std::unique_ptr<CudaBackend>> Load(const std::string& model_dir,
                                                           const CudaBackendOptions& options);
  // Random weights made on the device (benchmarks; no files).
  static absl::StatusOr<std::unique_ptr<CudaBackend>> CreateRandom(
      const ModelConfig& config, uint64_t seed, const CudaBackendOptions& options);
  ~CudaBackend() override;

  const ModelConfig& config() const override { return weights_->config(); }
  absl::string_view name() const override { return "cuda"; }
  int32_t num_slots() const override { return num_slots_; }
  absl::Status ResetSlot(int32_t slot) override;
  absl::Status CopySlot(int32_t from, int32_t to) override;
  absl::Status Forward(absl::Span<const ForwardRow> rows, ForwardOutput& out) override;

  // Forward() returning, for each kLast row in order, its argmax token instead of logits
  // (greedy decoding without copying logits to the host; benchmarks). kNone rows are allowed,
  // kAll rows are rejected.
  absl::Status ForwardGreedy(absl::Span<const ForwardRow> rows, std::vector<int32_t>& ids);

  // Switches how decode-only steps run, so that a benchmark can compare the paths on one
  // backend: kGeneral always, kBuckets on a backend created with kBuckets or kGraphs, kGraphs on
  // one created with kGraphs (FailedPrecondition otherwise).
  absl::Status SetDecodePath(DecodePath path);
  DecodePath decode_path() const { return options_.decode_path; }
  // Batch sizes of the decode buckets (empty when created with kGeneral).
  const std::vector<int32_t>& decode_buckets() const { return decode_buckets_; }

  // A slot's state in RecurrentState's layout ([blocks, heads, DHQK*DHV + DHQK + 1]), for tests.
  absl::StatusOr<std::vector<float>> ReadSlot(int32_t slot);

  // Waits for all queued work; returns the first device fault, if any.
  absl::Status Synchronize();

  const CudaDeviceInfo& device_info() const { return device_info_; }
  const StateLayout& state_layout() const { return layout_; }
  ActType weight_type() const { return weights_->type(); }
  // Type the GEMM activations are written in (fp32 for fp32 weights and for bf16x2).
  ActType activation_type() const { return act_type_; }
  int64_t weight_bytes() const { return static_cast<int64_t>(weights_->device_bytes()); }
  int64_t workspace_bytes() const { return workspace_bytes_; }
  int64_t slot_bytes() const { return layout_.slot_bytes(); }
  ActType state_type() const { return layout_.type; }

 private:
  CudaBackend() = default;
  // Checks the device, makes it current and creates the stream (weights come next).
  static absl::StatusOr<std::unique_ptr<CudaBackend>> Start(const CudaBackendOptions& options);
  // Allocates the workspace and the slot pool once the weights are on the device.
  static absl::StatusOr<std::unique_ptr<CudaBackend>> Finish(std::unique_ptr<CudaBackend> backend,
                                                             const CudaBackendOptions& options);
  // OK unless a device fault happened; makes the backend's device current.
  absl::Status CheckUsable();
  absl::Status CheckSlot(int32_t slot, const char* what) const;
  // Records the first device fault and returns it.
  absl::Status Fail(absl::Status status);
  // Validates rows, runs the layers in passes and, per lm_head piece of the wanted positions,
  // either takes the argmax (greedy: ids) or hands the piece to EmitLogits (out); rows asking
  // for hidden states get them through EmitHidden, after the pass's logits.
  absl::Status RunRows(absl::Span<const ForwardRow> rows, bool greedy, ForwardOutput* out,
                       std::vector<int32_t>* ids);
  // Which row and token a computed logits row belongs to.
  struct LogitOwner {
    size_t row;
    int64_t token;
  };
  // Turns one lm_head piece (device logits_ [owners.size(), vocab]) into what the rows asked
  // for, appended to `out` in row order: draws and scores run on the device (DeviceSampler),
  // raw logits are copied to the host.
  absl::Status EmitLogits(absl::Span<const ForwardRow> rows, absl::Span<const LogitOwner> owners,
                          ForwardOutput& out);
  // One pass of all layers over packed tokens already staged on the device.
  absl::Status RunLayers(int64_t num_tokens, const StepRows& step_rows);
  // out_norm + lm_head + soft-cap for `count` hidden rows (indices already on the device).
  absl::Status RunHead(const int32_t* device_row_indices, int64_t count);
  // out_norm alone, in fp32 whatever the GEMM activations' type, for `count` rows that asked for
  // their hidden states (indices on the device); appends them to `hidden` (synchronizes).
  absl::Status EmitHidden(const int32_t* device_row_indices, int64_t count,
                          std::vector<float>& hidden);
  // Checks every row before any device work (slots, tokens, outputs asked for).
  absl::Status ValidateRows(absl::Span<const ForwardRow> rows) const;
  // Whether validated `rows` form a decode-only step that a decode bucket serves.
  bool IsDecodeStep(absl::Span<const ForwardRow> rows) const;
  // Picks the buckets, stages the constant metadata, warms each bucket eagerly (module loading,
  // cuBLAS heuristics; padding rows only, so no slot changes) and, for kGraphs, captures and
  // instantiates one graph per bucket.
  absl::Status PrepareDecode();
  // Enqueues embedding + layers + head for `bucket` rows staged in decode_meta_ (what a decode
  // graph holds).
  absl::Status EnqueueDecode(int32_t bucket);
  // A validated decode-only step: stage tokens and slots, replay (or enqueue) its bucket, then
  // hand out the outputs like RunRows.
  absl::Status RunDecode(absl::Span<const ForwardRow> rows, bool greedy, ForwardOutput* out,
                         std::vector<int32_t>* ids);

  CudaBackendOptions options_;
  CudaDeviceInfo device_info_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<Gemm> gemm_;
  std::unique_ptr<DeviceWeights> weights_;
  StateLayout layout_;
  ScanPlan plan_;
  ActType act_type_ = ActType::kBF16;
  int32_t num_slots_ = 0;
  // [num_slots + 1, slot_stride] elements of layout_.type; slot num_slots is the scratch slot.
  DeviceBuffer states_;

  // Workspace, sized in Finish() for options_.max_step_tokens / max_logit_rows.
  int64_t workspace_bytes_ = 0;
  DeviceBuffer x_;                          // [T, D] fp32 residual stream
  DeviceBuffer act_;                        // [T, max(D, V, F)] GEMM operand
  DeviceBuffer proj_;                       // [T, in_proj_width] fp32
  DeviceBuffer up_;                         // [T, 2F] fp32
  DeviceBuffer gates_;                      // [T, NH, 3] fp32
  DeviceBuffer partial_;                    // [splits, T, NH, plan_.partial_width] fp32
  DeviceBuffer head_rows_;                  // [max_logit_rows, D] fp32 (gathered hidden rows)
  DeviceBuffer head_act_;                   // [max_logit_rows, D] GEMM operand
  DeviceBuffer hidden_;                     // [max_logit_rows, D] fp32 normed rows (embeddings)
  DeviceBuffer logits_;                     // [max_logit_rows, vocab] fp32
  DeviceBuffer argmax_;                     // [max_logit_rows] int32
  DeviceBuffer step_meta_;                  // int32 tokens + rows + logit row indices
  PinnedBuffer host_meta_;                  // staging for step_meta_
  PinnedBuffer host_logits_;                // [max_logit_rows, vocab] fp32
  int64_t meta_capacity_ = 0;               // int32 entries
  std::vector<LogitOwner> owners_;          // per logits row of the current pass (reused)
  std::vector<int32_t> hidden_rows_;        // hidden-state rows of the current pass (reused)
  std::unique_ptr<DeviceSampler> sampler_;  // draws and scores from logits_
  std::vector<SampleJob> sample_jobs_;      // per lm_head piece (reused)
  std::vector<ScoreJob> score_jobs_;

  // Decode buckets (DecodePath kGraphs / kBuckets; empty for kGeneral).
  std::vector<int32_t> decode_buckets_;  // ascending batch sizes; the last is max_bucket_
  int32_t max_bucket_ = 0;
  std::vector<cudaGraphExec_t> decode_graphs_;  // one per bucket (kGraphs)
  // int32 [4, max_bucket_]: tokens | slots | token counts | token begins. Begins (i) are set
  // once; the rest is rewritten per step from decode_host_ (padding: token 0, the scratch slot,
  // count 0).
  DeviceBuffer decode_meta_;
  PinnedBuffer decode_host_;  // int32 [4, max_bucket_], the same layout

  absl::Status fault_;  // first device fault; OK while healthy
};

}  // namespace xlstm::engine::cuda

#endif  // XLSTM_ENGINE_CUDA_CUDA_BACKEND_H_
