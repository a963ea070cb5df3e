#include "engine/cuda/cuda_backend.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "engine/cuda/cuda_status.h"
#include "engine/weights/dtype.h"

namespace xlstm::engine::cuda {
namespace {

float CapOrZero(const std::optional<double>& cap) { return cap ? static_cast<float>(*cap) : 0.0f; }

// A contiguous piece of one row's tokens, processed in one pass of the layers.
struct Piece {
  int32_t slot;
  absl::Span<const int32_t> tokens;
  LogitsMode logits;  // of this piece (kLast only on a row's last piece)
  size_t row;         // index of the ForwardRow
  int64_t begin;      // of the piece within the row's tokens
  LogitsMode hidden;  // as `logits`, for the row's final-normed hidden states
};

// What a row's piece gets of `wanted` (for the whole row): every position for kAll, the last
// position only on the row's last piece for kLast.
LogitsMode PieceMode(LogitsMode wanted, bool last_piece) {
  if (wanted == LogitsMode::kAll) return LogitsMode::kAll;
  return last_piece ? wanted : LogitsMode::kNone;
}

}  // namespace

int CudaDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: not an error for callers
    return 0;
  }
  return count;
}

absl::StatusOr<CudaDeviceInfo> GetCudaDeviceInfo(int device) {
  const int count = CudaDeviceCount();
  if (device < 0 || device >= count) {
    // Checked here rather than by the runtime, whose error would linger in cudaGetLastError and
    // be blamed on the next kernel launch.
    return absl::InvalidArgumentError(
        absl::StrCat("CUDA device ", device, " does not exist (", count, " visible)"));
  }
  cudaDeviceProp prop;
  XLSTM_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, device));
  XLSTM_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  size_t free_bytes = 0, total_bytes = 0;
  XLSTM_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_bytes, &total_bytes));
  CudaDeviceInfo info;
  info.name = prop.name;
  info.sm_count = prop.multiProcessorCount;
  info.total_bytes = static_cast<int64_t>(total_bytes);
  info.free_bytes = static_cast<int64_t>(free_bytes);
  info.compute_capability = prop.major * 10 + prop.minor;
  return info;
}

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Start(const CudaBackendOptions& options) {
  if (CudaDeviceCount() <= options.device || options.device < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "CUDA device ", options.device, " is not available (", CudaDeviceCount(), " found)"));
  }
  std::unique_ptr<CudaBackend> backend(new CudaBackend());
  XLSTM_CUDA_RETURN_IF_ERROR(cudaSetDevice(options.device));
  XLSTM_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&backend->stream_, cudaStreamNonBlocking));
  return backend;
}

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Create(
    const ModelWeights& weights, const CudaBackendOptions& options) {
  XLSTM_ASSIGN_OR_RETURN(std::unique_ptr<CudaBackend> backend, Start(options));
  XLSTM_ASSIGN_OR_RETURN(
      backend->weights_,
      DeviceWeights::Upload(weights, options.fp32_weights ? ActType::kF32 : ActType::kBF16,
                            backend->stream_));
  return Finish(std::move(backend), options);
}

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Load(const std::string& model_dir,
                                                               const CudaBackendOptions& options) {
  XLSTM_ASSIGN_OR_RETURN(std::shared_ptr<const ModelWeights> weights,
                         ModelWeights::Load(model_dir));
  return Create(*weights, options);  // the host copy is released on return
}

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::CreateRandom(
    const ModelConfig& config, uint64_t seed, const CudaBackendOptions& options) {
  XLSTM_ASSIGN_OR_RETURN(std::unique_ptr<CudaBackend> backend, Start(options));
  XLSTM_ASSIGN_OR_RETURN(
      backend->weights_,
      DeviceWeights::Random(config, seed, options.fp32_weights ? ActType::kF32 : ActType::kBF16,
                            backend->stream_));
  return Finish(std::move(backend), options);
}

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Finish(
    std::unique_ptr<CudaBackend> b, const CudaBackendOptions& options) {
  if (options.max_slots < 1 || options.max_step_tokens < 1 || options.max_logit_rows < 1 ||
      options.reserve_bytes < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("CUDA backend options: max_slots (", options.max_slots, "), max_step_tokens (",
                     options.max_step_tokens, ") and max_logit_rows (", options.max_logit_rows,
                     ") must be >= 1 and reserve_bytes (", options.reserve_bytes, ") >= 0"));
  }
  b->options_ = options;
  const ModelConfig& c = b->weights_->config();
  XLSTM_ASSIGN_OR_RETURN(b->device_info_, GetCudaDeviceInfo(options.device));
  b->layout_ = StateLayout::For(c.num_blocks, c.num_heads, c.qk_head_dim(), c.v_head_dim(),
                                options.state_type);
  b->plan_ = ScanPlan::For(c.qk_head_dim(), c.v_head_dim());
  XLSTM_ASSIGN_OR_RETURN(b->gemm_, Gemm::Create(b->stream_));
  if (options.small_batch_gemv) b->gemm_->EnableSmallBatchGemv();
  if (options.bf16x2_activations && b->weights_->type() == ActType::kBF16) {
    const ModelConfig& m = b->weights_->config();
    XLSTM_RETURN_IF_ERROR(b->gemm_->EnableBf16x2(
        std::max({m.hidden_size, m.v_dim(), m.ffn_dim()}),
        std::max({b->weights_->in_proj_width(), m.hidden_size, 2 * m.ffn_dim(), m.vocab_size})));
    b->workspace_bytes_ += b->gemm_->bf16x2_bytes();
  }

  const int64_t T = options.max_step_tokens, R = options.max_logit_rows;
  const int64_t D = c.hidden_size, V = c.v_dim(), F = c.ffn_dim(), NH = c.num_heads,
                vocab = c.vocab_size;
  // GEMM activations: the weights' type, or fp32 split into bf16 pairs (bf16x2).
  b->act_type_ = options.bf16x2_activations ? ActType::kF32 : b->weights_->type();
  const int64_t act = static_cast<int64_t>(ActSize(b->act_type_));
  const int64_t widest = std::max({D, V, F});
  auto allocate = [&](DeviceBuffer& buffer, int64_t bytes, const char* what) -> absl::Status {
    XLSTM_ASSIGN_OR_RETURN(buffer, DeviceBuffer::Allocate(static_cast<size_t>(bytes), what));
    b->workspace_bytes_ += bytes;
    return absl::OkStatus();
  };
  XLSTM_RETURN_IF_ERROR(allocate(b->x_, T * D * 4, "the residual stream"));
  XLSTM_RETURN_IF_ERROR(allocate(b->act_, T * widest * act, "GEMM operands"));
  XLSTM_RETURN_IF_ERROR(allocate(b->proj_, T * b->weights_->in_proj_width() * 4, "projections"));
  XLSTM_RETURN_IF_ERROR(allocate(b->up_, T * 2 * F * 4, "the FFN up projection"));
  XLSTM_RETURN_IF_ERROR(allocate(b->gates_, T * NH * 3 * 4, "gates"));
  XLSTM_RETURN_IF_ERROR(
      allocate(b->partial_, b->plan_.splits * T * NH * b->plan_.partial_width * 4, "read-outs"));
  XLSTM_RETURN_IF_ERROR(allocate(b->head_rows_, R * D * 4, "head rows"));
  XLSTM_RETURN_IF_ERROR(allocate(b->head_act_, R * D * act, "head operands"));
  XLSTM_RETURN_IF_ERROR(allocate(b->hidden_, R * D * 4, "hidden-state rows"));
  XLSTM_RETURN_IF_ERROR(allocate(b->logits_, R * vocab * 4, "logits"));
  XLSTM_RETURN_IF_ERROR(allocate(b->argmax_, R * 4, "argmax ids"));
  // Step metadata: tokens [T], slot/begin/count per row [3T at most], logit row indices [T].
  b->meta_capacity_ = 5 * T;
  XLSTM_RETURN_IF_ERROR(allocate(b->step_meta_, b->meta_capacity_ * 4, "step metadata"));
  XLSTM_ASSIGN_OR_RETURN(b->host_meta_,
                         PinnedBuffer::Allocate(b->meta_capacity_ * 4, "step metadata"));
  XLSTM_ASSIGN_OR_RETURN(b->host_logits_, PinnedBuffer::Allocate(R * vocab * 4, "logits"));
  XLSTM_ASSIGN_OR_RETURN(b->sampler_, DeviceSampler::Create(vocab, R, b->stream_));
  b->workspace_bytes_ += b->sampler_->workspace_bytes();
  // Padding rows of a decode bucket read gates and read-outs that no kernel wrote for them
  // (their results are discarded): start from defined values.
  XLSTM_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(b->gates_.data(), 0, b->gates_.bytes(), b->stream_));
  XLSTM_CUDA_RETURN_IF_ERROR(
      cudaMemsetAsync(b->partial_.data(), 0, b->partial_.bytes(), b->stream_));

  // The largest decode bucket, before the pool is sized: its metadata is allocated now.
  const int64_t max_bucket = options.decode_path == DecodePath::kGeneral
                                 ? 0
                                 : std::min<int64_t>({options.max_slots, R, T});
  if (max_bucket > 0) {
    XLSTM_RETURN_IF_ERROR(allocate(b->decode_meta_, 4 * max_bucket * 4, "decode metadata"));
    XLSTM_ASSIGN_OR_RETURN(b->decode_host_,
                           PinnedBuffer::Allocate(4 * max_bucket * 4, "decode metadata"));
  }

  // The slot pool takes what is left, minus the reserve: num_slots slots and the scratch slot.
  size_t free_bytes = 0, total_bytes = 0;
  XLSTM_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_bytes, &total_bytes));
  const int64_t slot_bytes = b->slot_bytes();
  const int64_t usable = static_cast<int64_t>(free_bytes) - options.reserve_bytes;
  const int64_t fit = usable > 0 ? usable / slot_bytes - 1 : 0;
  b->num_slots_ = static_cast<int32_t>(std::min<int64_t>(options.max_slots, fit));
  if (b->num_slots_ < 1) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "no room for one recurrent-state slot and the scratch slot (%.1f MiB each): %.1f MiB "
        "free after weights (%.1f MiB) and workspace (%.1f MiB), %.1f MiB reserved",
        slot_bytes / 1048576.0, free_bytes / 1048576.0, b->weights_->device_bytes() / 1048576.0,
        b->workspace_bytes_ / 1048576.0, options.reserve_bytes / 1048576.0));
  }
  XLSTM_ASSIGN_OR_RETURN(b->states_,
                         DeviceBuffer::Allocate(static_cast<size_t>(b->num_slots_ + 1) * slot_bytes,
                                                "the recurrent-state slot pool"));
  XLSTM_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(b->states_.data(), 0, b->states_.bytes(), b->stream_));
  XLSTM_RETURN_IF_ERROR(b->PrepareDecode());
  XLSTM_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(b->stream_));
  return b;
}

absl::Status CudaBackend::PrepareDecode() {
  if (decode_meta_.data() == nullptr) return absl::OkStatus();
  const int64_t limit =
      std::min<int64_t>({num_slots_, options_.max_logit_rows, options_.max_step_tokens});
  max_bucket_ = static_cast<int32_t>(limit);
  // Powers of two: a padded step does at most twice the row-wise work of the unpadded one,
  // which at decode is small next to reading the weights (padding rows skip the scan).
  for (int64_t bucket = 1; bucket < limit; bucket *= 2) {
    decode_buckets_.push_back(static_cast<int32_t>(bucket));
  }
  decode_buckets_.push_back(max_bucket_);

  // Every row padding: token 0, the scratch slot, no tokens to scan; begins[i] = i for good.
  const int32_t B = max_bucket_;
  int32_t* h = decode_host_.as<int32_t>();
  for (int32_t i = 0; i < B; ++i) {
    h[i] = 0;
    h[B + i] = num_slots_;
    h[2 * B + i] = 0;
    h[3 * B + i] = i;
  }
  XLSTM_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(decode_meta_.data(), h, 4 * B * sizeof(int32_t),
                                             cudaMemcpyHostToDevice, stream_));
  // One eager pass per bucket first, so that module loading and cuBLAS's first-call work happen
  // outside the capture (and the kBuckets path is warm too).
  for (int32_t bucket : decode_buckets_) XLSTM_RETURN_IF_ERROR(EnqueueDecode(bucket));
  XLSTM_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  if (options_.decode_path != DecodePath::kGraphs) return absl::OkStatus();

  for (int32_t bucket : decode_buckets_) {
    // Thread-local capture: other threads' CUDA calls (another backend, a test) are not
    // affected and do not invalidate this capture.
    XLSTM_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    absl::Status status = EnqueueDecode(bucket);
    cudaGraph_t graph = nullptr;
    const cudaError_t end = cudaStreamEndCapture(stream_, &graph);  // ends it on every path
    if (status.ok() && end != cudaSuccess) {
      status = CudaStatus(end, "cudaStreamEndCapture", __FILE__, __LINE__);
    }
    cudaGraphExec_t exec = nullptr;
    if (status.ok()) {
      const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
      if (e != cudaSuccess) status = CudaStatus(e, "cudaGraphInstantiate", __FILE__, __LINE__);
    }
    if (graph != nullptr) cudaGraphDestroy(graph);
    if (!status.ok()) {
      return absl::Status(status.code(), absl::StrCat("capturing the decode graph of bucket ",
                                                      bucket, ": ", status.message()));
    }
    decode_graphs_.push_back(exec);
    // Uploads the graph's work descriptors now rather than at its first launch.
    XLSTM_CUDA_RETURN_IF_ERROR(cudaGraphUpload(exec, stream_));
  }
  return absl::OkStatus();
}

CudaBackend::~CudaBackend() {
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  for (cudaGraphExec_t exec : decode_graphs_) cudaGraphExecDestroy(exec);
  if (stream_ != nullptr) {
    // Buffers and the cuBLAS handle are released by their owners before the stream.
    gemm_.reset();
    cudaStreamDestroy(stream_);
  }
}

absl::Status CudaBackend::CheckUsable() {
  if (!fault_.ok()) {
    return absl::InternalError(
        absl::StrCat("the CUDA backend failed earlier and is unusable: ", fault_.message()));
  }
  // The calling thread (the engine thread) may not be the one that created the backend.
  const cudaError_t e = cudaSetDevice(options_.device);
  if (e != cudaSuccess) return Fail(CudaStatus(e, "cudaSetDevice", __FILE__, __LINE__));
  return absl::OkStatus();
}

absl::Status CudaBackend::Fail(absl::Status status) {
  if (fault_.ok()) fault_ = status;
  return status;
}

absl::Status CudaBackend::CheckSlot(int32_t slot, const char* what) const {
  if (slot < 0 || slot >= num_slots_) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " slot ", slot, " is outside [0, ", num_slots_, ")"));
  }
  return absl::OkStatus();
}

absl::Status CudaBackend::ResetSlot(int32_t slot) {
  XLSTM_RETURN_IF_ERROR(CheckUsable());
  XLSTM_RETURN_IF_ERROR(CheckSlot(slot, "ResetSlot:"));
  const cudaError_t e =
      cudaMemsetAsync(states_.as<char>() + slot * slot_bytes(), 0, slot_bytes(), stream_);
  if (e != cudaSuccess) return Fail(CudaStatus(e, "cudaMemsetAsync(slot)", __FILE__, __LINE__));
  return absl::OkStatus();
}

absl::Status CudaBackend::CopySlot(int32_t from, int32_t to) {
  XLSTM_RETURN_IF_ERROR(CheckUsable());
  XLSTM_RETURN_IF_ERROR(CheckSlot(from, "CopySlot: source"));
  XLSTM_RETURN_IF_ERROR(CheckSlot(to, "CopySlot: destination"));
  if (from == to) return absl::OkStatus();
  char* base = states_.as<char>();
  const cudaError_t e = cudaMemcpyAsync(base + to * slot_bytes(), base + from * slot_bytes(),
                                        slot_bytes(), cudaMemcpyDeviceToDevice, stream_);
  if (e != cudaSuccess) return Fail(CudaStatus(e, "cudaMemcpyAsync(slot)", __FILE__, __LINE__));
  return absl::OkStatus();
}

absl::Status CudaBackend::Synchronize() {
  XLSTM_RETURN_IF_ERROR(CheckUsable());
  const cudaError_t e = cudaStreamSynchronize(stream_);
  if (e != cudaSuccess) return Fail(CudaStatus(e, "cudaStreamSynchronize", __FILE__, __LINE__));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> CudaBackend::ReadSlot(int32_t slot) {
  XLSTM_RETURN_IF_ERROR(CheckUsable());
  XLSTM_RETURN_IF_ERROR(CheckSlot(slot, "ReadSlot:"));
  std::vector<char> padded(slot_bytes());
  cudaError_t e = cudaMemcpyAsync(padded.data(), states_.as<char>() + slot * slot_bytes(),
                                  slot_bytes(), cudaMemcpyDeviceToHost, stream_);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
  if (e != cudaSuccess) return Fail(CudaStatus(e, "ReadSlot copy", __FILE__, __LINE__));
  const int64_t cn = layout_.dqk * layout_.dv + layout_.dqk;  // C and n, then m
  const int64_t elt = layout_.element_bytes();
  std::vector<float> out;
  out.reserve(layout_.num_blocks * layout_.num_heads * (cn + 1));
  for (int64_t i = 0; i < layout_.num_blocks * layout_.num_heads; ++i) {
    const char* head = padded.data() + i * layout_.head_stride * elt;
    for (int64_t j = 0; j < cn; ++j) {
      if (layout_.type == ActType::kBF16) {
        uint16_t bits;
        std::memcpy(&bits, head + j * 2, 2);
        out.push_back(BF16ToFloat(bits));
      } else {
        float value;
        std::memcpy(&value, head + j * 4, 4);
        out.push_back(value);
      }
    }
    float m;
    std::memcpy(&m, head + layout_.m_offset() * elt, 4);
    out.push_back(m);
  }
  return out;
}

absl::Status CudaBackend::Forward(absl::Span<const ForwardRow> rows, ForwardOutput& out) {
  return RunRows(rows, /*greedy=*/false, &out, nullptr);
}

absl::Status CudaBackend::ForwardGreedy(absl::Span<const ForwardRow> rows,
                                        std::vector<int32_t>& ids) {
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].logits == LogitsMode::kAll || !rows[r].samples.empty() ||
        rows[r].score != nullptr || rows[r].hidden != LogitsMode::kNone) {
      return absl::InvalidArgumentError(
          absl::StrCat("ForwardGreedy: row ", r,
                       " asks for kAll logits, samples, a score or hidden states (kLast or kNone "
                       "only)"));
    }
  }
  return RunRows(rows, /*greedy=*/true, nullptr, &ids);
}

absl::Status CudaBackend::ValidateRows(absl::Span<const ForwardRow> rows) const {
  const ModelConfig& c = config();
  std::vector<bool> seen(num_slots_, false);
  for (size_t r = 0; r < rows.size(); ++r) {
    const ForwardRow& row = rows[r];
    if (row.slot < 0 || row.slot >= num_slots_) {
      return CheckSlot(row.slot, absl::StrCat("row ", r, ":").c_str());
    }
    if (seen[row.slot]) {
      return absl::InvalidArgumentError(
          absl::StrCat("row ", r, ": slot ", row.slot, " appears twice in one step"));
    }
    seen[row.slot] = true;
    XLSTM_RETURN_IF_ERROR(ValidateRowOutputs(row, r, c.vocab_size));
    if (row.tokens.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("row ", r, " has no tokens"));
    }
    for (size_t t = 0; t < row.tokens.size(); ++t) {
      const int32_t id = row.tokens[t];
      if (id < 0 || id >= c.vocab_size) {
        return absl::InvalidArgumentError(
            absl::StrCat("row ", r, ": token id ", id, " at position ", t,
                         " is outside the vocabulary [0, ", c.vocab_size, ")"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CudaBackend::SetDecodePath(DecodePath path) {
  if ((path == DecodePath::kGraphs && decode_graphs_.empty()) ||
      (path == DecodePath::kBuckets && decode_buckets_.empty())) {
    return absl::FailedPreconditionError(
        "SetDecodePath: this backend was created without that decode path's buckets or graphs");
  }
  options_.decode_path = path;
  return absl::OkStatus();
}

bool CudaBackend::IsDecodeStep(absl::Span<const ForwardRow> rows) const {
  if (options_.decode_path == DecodePath::kGeneral) return false;
  if (rows.empty() || static_cast<int64_t>(rows.size()) > max_bucket_) return false;
  for (const ForwardRow& row : rows) {
    // One token wanting its last logits or samples: the bucket's head computes exactly one
    // logits row per row, in row order.
    if (row.tokens.size() != 1 || row.score != nullptr) return false;
    if (row.samples.empty() && row.logits != LogitsMode::kLast) return false;
  }
  return true;
}

absl::Status CudaBackend::RunRows(absl::Span<const ForwardRow> rows, bool greedy,
                                  ForwardOutput* out, std::vector<int32_t>* ids) {
  XLSTM_RETURN_IF_ERROR(CheckUsable());
  const ModelConfig& c = config();
  // Validate everything before any device work, so a bad row changes no slot.
  XLSTM_RETURN_IF_ERROR(ValidateRows(rows));
  if (out != nullptr) out->Clear();
  if (ids != nullptr) ids->clear();
  if (IsDecodeStep(rows)) return RunDecode(rows, greedy, out, ids);

  // Cut rows longer than a pass into pieces; group pieces into passes of <= T tokens.
  const int64_t T = options_.max_step_tokens;
  std::vector<Piece> pieces;
  for (size_t r = 0; r < rows.size(); ++r) {
    const ForwardRow& row = rows[r];
    // Samples are drawn from the last position's logits, scores need every position's.
    const LogitsMode wanted = !row.samples.empty()   ? LogitsMode::kLast
                              : row.score != nullptr ? LogitsMode::kAll
                                                     : row.logits;
    const int64_t n = static_cast<int64_t>(row.tokens.size());
    for (int64_t begin = 0; begin < n; begin += T) {
      const int64_t len = std::min(T, n - begin);
      const bool last = begin + len == n;
      pieces.push_back({row.slot, row.tokens.subspan(begin, len), PieceMode(wanted, last), r, begin,
                        PieceMode(row.hidden, last)});
    }
  }
  const int64_t vocab = c.vocab_size;
  size_t next = 0;
  while (next < pieces.size()) {
    // One pass: pieces [next, end).
    size_t end = next;
    int64_t tokens = 0;
    while (end < pieces.size() && tokens + static_cast<int64_t>(pieces[end].tokens.size()) <= T) {
      tokens += static_cast<int64_t>(pieces[end].tokens.size());
      ++end;
    }
    const int32_t num_rows = static_cast<int32_t>(end - next);
    // Host metadata: [tokens | slot | begin | count | logit row indices | hidden row indices]
    // (a position is at most one of the two, so both fit in the T entries after the counts).
    int32_t* meta = host_meta_.as<int32_t>();
    int32_t* h_tokens = meta;
    int32_t* h_slot = meta + T;
    int32_t* h_begin = h_slot + num_rows;
    int32_t* h_count = h_begin + num_rows;
    int32_t* h_logit_rows = h_count + num_rows;
    int64_t offset = 0, logit_rows = 0;
    int32_t max_count = 0;
    owners_.clear();
    hidden_rows_.clear();
    for (size_t p = next; p < end; ++p) {
      const Piece& piece = pieces[p];
      const int32_t n = static_cast<int32_t>(piece.tokens.size());
      std::memcpy(h_tokens + offset, piece.tokens.data(), n * sizeof(int32_t));
      const size_t k = p - next;
      h_slot[k] = piece.slot;
      h_begin[k] = static_cast<int32_t>(offset);
      h_count[k] = n;
      max_count = std::max(max_count, n);
      if (piece.logits == LogitsMode::kAll) {
        for (int32_t t = 0; t < n; ++t) {
          h_logit_rows[logit_rows++] = static_cast<int32_t>(offset + t);
          owners_.push_back({piece.row, piece.begin + t});
        }
      } else if (piece.logits == LogitsMode::kLast) {
        h_logit_rows[logit_rows++] = static_cast<int32_t>(offset + n - 1);
        owners_.push_back({piece.row, piece.begin + n - 1});
      }
      if (piece.hidden == LogitsMode::kAll) {
        for (int32_t t = 0; t < n; ++t) hidden_rows_.push_back(static_cast<int32_t>(offset + t));
      } else if (piece.hidden == LogitsMode::kLast) {
        hidden_rows_.push_back(static_cast<int32_t>(offset + n - 1));
      }
      offset += n;
    }
    int32_t* h_hidden_rows = h_logit_rows + logit_rows;
    std::copy(hidden_rows_.begin(), hidden_rows_.end(), h_hidden_rows);
    const int64_t hidden_rows = static_cast<int64_t>(hidden_rows_.size());
    const int64_t meta_used = (h_hidden_rows + hidden_rows) - meta;
    int32_t* d_meta = step_meta_.as<int32_t>();
    cudaError_t e =
        cudaMemcpyAsync(d_meta, meta, meta_used * sizeof(int32_t), cudaMemcpyHostToDevice, stream_);
    if (e != cudaSuccess) return Fail(CudaStatus(e, "step metadata copy", __FILE__, __LINE__));
    StepRows step_rows;
    step_rows.slot = d_meta + (h_slot - meta);
    step_rows.token_begin = d_meta + (h_begin - meta);
    step_rows.token_count = d_meta + (h_count - meta);
    step_rows.num_rows = num_rows;
    step_rows.max_token_count = max_count;

    absl::Status s = LaunchEmbeddingGather(d_meta, tokens, weights_->embeddings(), weights_->type(),
                                           c.hidden_size, x_.as<float>(), stream_);
    if (s.ok()) s = RunLayers(tokens, step_rows);
    if (!s.ok()) return Fail(s);

    const int32_t* d_logit_rows = d_meta + (h_logit_rows - meta);
    for (int64_t done = 0; done < logit_rows; done += options_.max_logit_rows) {
      const int64_t count = std::min(options_.max_logit_rows, logit_rows - done);
      s = RunHead(d_logit_rows + done, count);
      if (!s.ok()) return Fail(s);
      // Each piece's outputs are copied back with one synchronization (here, in EmitLogits or
      // in the sampler), which also completes this pass's metadata upload.
      if (greedy) {
        s = LaunchArgmax(logits_.as<float>(), count, vocab, argmax_.as<int32_t>(), stream_);
        if (!s.ok()) return Fail(s);
        e = cudaMemcpyAsync(host_logits_.as<int32_t>(), argmax_.data(), count * 4,
                            cudaMemcpyDeviceToHost, stream_);
        if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
        if (e != cudaSuccess) return Fail(CudaStatus(e, "argmax copy", __FILE__, __LINE__));
        ids->insert(ids->end(), host_logits_.as<int32_t>(), host_logits_.as<int32_t>() + count);
      } else {
        s = EmitLogits(rows, absl::MakeConstSpan(owners_).subspan(done, count), *out);
        if (!s.ok()) return s;
      }
    }
    // Hidden rows are in pass order, which is row order: pieces keep their rows' order.
    const int32_t* d_hidden_rows = d_meta + (h_hidden_rows - meta);
    for (int64_t done = 0; done < hidden_rows; done += options_.max_logit_rows) {
      const int64_t count = std::min(options_.max_logit_rows, hidden_rows - done);
      s = EmitHidden(d_hidden_rows + done, count, out->hidden);
      if (!s.ok()) return Fail(s);
    }
    // host_meta_ is rewritten by the next pass: its upload must have completed. A pass with
    // outputs synchronized when copying them; one without waits here, which also reports a
    // device fault of a step that returns nothing.
    if (logit_rows == 0 && hidden_rows == 0) {
      e = cudaStreamSynchronize(stream_);
      if (e != cudaSuccess) return Fail(CudaStatus(e, "step", __FILE__, __LINE__));
    }
    next = end;
  }
  return absl::OkStatus();
}

absl::Status CudaBackend::RunDecode(absl::Span<const ForwardRow> rows, bool greedy,
                                    ForwardOutput* out, std::vector<int32_t>* ids) {
  const int32_t n = static_cast<int32_t>(rows.size());
  const size_t k =
      std::lower_bound(decode_buckets_.begin(), decode_buckets_.end(), n) - decode_buckets_.begin();
  const int32_t bucket = decode_buckets_[k];
  // Stage [tokens | slots | counts]; the rows past n pad the bucket. decode_host_ is free: every
  // step's outputs were synchronized before it returned.
  const int32_t B = max_bucket_;
  int32_t* h = decode_host_.as<int32_t>();
  for (int32_t i = 0; i < bucket; ++i) {
    const bool real = i < n;
    h[i] = real ? rows[i].tokens[0] : 0;
    h[B + i] = real ? rows[i].slot : num_slots_;
    h[2 * B + i] = real ? 1 : 0;
  }
  cudaError_t e = cudaMemcpyAsync(decode_meta_.data(), h, 3 * B * sizeof(int32_t),
                                  cudaMemcpyHostToDevice, stream_);
  if (e != cudaSuccess) return Fail(CudaStatus(e, "decode metadata copy", __FILE__, __LINE__));
  if (options_.decode_path == DecodePath::kGraphs) {
    e = cudaGraphLaunch(decode_graphs_[k], stream_);
    if (e != cudaSuccess) return Fail(CudaStatus(e, "cudaGraphLaunch(decode)", __FILE__, __LINE__));
  } else if (absl::Status s = EnqueueDecode(bucket); !s.ok()) {
    return Fail(s);
  }
  // Logits row i belongs to row i.
  if (greedy) {
    if (absl::Status s = LaunchArgmax(logits_.as<float>(), n, config().vocab_size,
                                      argmax_.as<int32_t>(), stream_);
        !s.ok()) {
      return Fail(s);
    }
    e = cudaMemcpyAsync(host_logits_.as<int32_t>(), argmax_.data(), n * sizeof(int32_t),
                        cudaMemcpyDeviceToHost, stream_);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
    if (e != cudaSuccess) return Fail(CudaStatus(e, "argmax copy", __FILE__, __LINE__));
    ids->assign(host_logits_.as<int32_t>(), host_logits_.as<int32_t>() + n);
    return absl::OkStatus();
  }
  owners_.clear();
  for (int32_t i = 0; i < n; ++i) owners_.push_back({static_cast<size_t>(i), 0});
  absl::Status s = EmitLogits(rows, owners_, *out);
  if (!s.ok()) {
    // A job refused before its copies ran: wait for the step, so that decode_host_ can be
    // rewritten by the next one.
    e = cudaStreamSynchronize(stream_);
    if (e != cudaSuccess) return Fail(CudaStatus(e, "step", __FILE__, __LINE__));
  }
  return s;
}

absl::Status CudaBackend::EnqueueDecode(int32_t bucket) {
  const ModelConfig& c = config();
  const int32_t B = max_bucket_;
  const int32_t* meta = decode_meta_.as<int32_t>();
  StepRows step_rows;
  step_rows.slot = meta + B;
  step_rows.token_count = meta + 2 * B;
  step_rows.token_begin = meta + 3 * B;
  step_rows.num_rows = bucket;
  step_rows.max_token_count = 1;
  XLSTM_RETURN_IF_ERROR(LaunchEmbeddingGather(meta, bucket, weights_->embeddings(),
                                              weights_->type(), c.hidden_size, x_.as<float>(),
                                              stream_));
  XLSTM_RETURN_IF_ERROR(RunLayers(bucket, step_rows));
  // The head of RunHead without its gather: the bucket's hidden rows are already rows 0..bucket-1
  // of x_ (the same values the gather would copy, so the same logits).
  XLSTM_RETURN_IF_ERROR(
      LaunchRmsNorm(x_.as<float>(), bucket, c.hidden_size, weights_->out_norm_weight(), nullptr,
                    static_cast<float>(c.norm_eps), head_act_.data(), act_type_, stream_));
  XLSTM_RETURN_IF_ERROR(gemm_->Linear(weights_->lm_head(), head_act_.data(), bucket,
                                      logits_.as<float>(), c.vocab_size, /*accumulate=*/false));
  return LaunchSoftCap(logits_.as<float>(), int64_t{bucket} * c.vocab_size,
                       CapOrZero(c.output_logit_soft_cap), stream_);
}

absl::Status CudaBackend::EmitLogits(absl::Span<const ForwardRow> rows,
                                     absl::Span<const LogitOwner> owners, ForwardOutput& out) {
  const int64_t vocab = config().vocab_size;
  const int64_t count = static_cast<int64_t>(owners.size());
  sample_jobs_.clear();
  score_jobs_.clear();
  bool any_raw = false;
  for (int64_t i = 0; i < count; ++i) {
    const ForwardRow& row = rows[owners[i].row];
    const int32_t logits_row = static_cast<int32_t>(i);
    if (!row.samples.empty()) {
      for (const SampleSpec& spec : row.samples) sample_jobs_.push_back({logits_row, &spec});
    } else if (row.score != nullptr) {
      score_jobs_.push_back(
          {logits_row, row.score->targets[owners[i].token], row.score->top_logprobs});
    } else {
      any_raw = true;
    }
  }
  // Draws and scores on the device: only their results cross to the host.
  if (!sample_jobs_.empty()) {
    absl::Status s = sampler_->Sample(logits_.as<float>(), count, sample_jobs_, out.samples);
    if (!s.ok()) return Fail(s);
  }
  if (!score_jobs_.empty()) {
    absl::Status s = sampler_->Score(logits_.as<float>(), count, score_jobs_, out.scores);
    if (!s.ok()) return Fail(s);
  }
  if (!any_raw) return absl::OkStatus();
  // Raw logits (tools and tests): the piece goes to the host, its raw rows are kept.
  cudaError_t e = cudaMemcpyAsync(host_logits_.data(), logits_.data(), count * vocab * 4,
                                  cudaMemcpyDeviceToHost, stream_);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
  if (e != cudaSuccess) return Fail(CudaStatus(e, "logits copy", __FILE__, __LINE__));
  for (int64_t i = 0; i < count; ++i) {
    const ForwardRow& row = rows[owners[i].row];
    if (!row.samples.empty() || row.score != nullptr) continue;
    const float* logits = host_logits_.as<float>() + i * vocab;
    out.logits.insert(out.logits.end(), logits, logits + vocab);
  }
  return absl::OkStatus();
}

absl::Status CudaBackend::RunLayers(int64_t T, const StepRows& rows) {
  const ModelConfig& c = config();
  const DeviceWeights& w = *weights_;
  const ActType type = act_type_;
  const int64_t D = c.hidden_size, QK = c.qk_dim(), V = c.v_dim(), F = c.ffn_dim(),
                NH = c.num_heads, P = w.in_proj_width();
  const float norm_eps = static_cast<float>(c.norm_eps), eps = static_cast<float>(c.eps);
  float* x = x_.as<float>();
  float* proj = proj_.as<float>();
  float* up = up_.as<float>();
  void* act = act_.data();
  void* states = states_.data();
  for (int64_t i = 0; i < c.num_blocks; ++i) {
    const DeviceBlockWeights& b = w.block(i);
    // mLSTM sub-layer: x += out_proj(sigmoid(o) * HeadNorm(mLSTM(q, k, v, i, f))).
    XLSTM_RETURN_IF_ERROR(LaunchRmsNorm(x, T, D, b.norm_mlstm_weight, b.norm_mlstm_bias, norm_eps,
                                        act, type, stream_));
    XLSTM_RETURN_IF_ERROR(gemm_->Linear(b.in_proj, act, T, proj, P, /*accumulate=*/false));
    if (b.qkvo_bias != nullptr) {
      XLSTM_RETURN_IF_ERROR(LaunchAddBias(proj, T, 2 * QK + 2 * V, P, b.qkvo_bias, stream_));
    }
    XLSTM_RETURN_IF_ERROR(LaunchMlstmGates(proj, P, w.i_column(), w.f_column(), b.igate_bias,
                                           b.fgate_bias, CapOrZero(c.gate_soft_cap), rows, layout_,
                                           i, states, gates_.as<float>(), stream_));
    XLSTM_RETURN_IF_ERROR(LaunchMlstmScan(proj, P, w.q_column(), w.k_column(), w.v_column(),
                                          gates_.as<float>(), rows, layout_, plan_, i, T, states,
                                          partial_.as<float>(), stream_));
    XLSTM_RETURN_IF_ERROR(LaunchHeadNormGate(
        partial_.as<float>(), plan_, gates_.as<float>(), proj, P, w.o_column(), b.head_norm_weight,
        b.head_norm_bias, T, NH, c.v_head_dim(), eps, norm_eps, act, type, stream_));
    XLSTM_RETURN_IF_ERROR(gemm_->Linear(b.out_proj, act, T, x, D, /*accumulate=*/true));
    if (b.out_proj_bias != nullptr) {
      XLSTM_RETURN_IF_ERROR(LaunchAddBias(x, T, D, D, b.out_proj_bias, stream_));
    }
    // SwiGLU feed-forward sub-layer: x += down(silu(up_gate(h)) * up(h)).
    XLSTM_RETURN_IF_ERROR(
        LaunchRmsNorm(x, T, D, b.norm_ffn_weight, b.norm_ffn_bias, norm_eps, act, type, stream_));
    XLSTM_RETURN_IF_ERROR(gemm_->Linear(b.up_proj, act, T, up, 2 * F, /*accumulate=*/false));
    XLSTM_RETURN_IF_ERROR(LaunchSwiGlu(up, T, F, b.up_proj_bias,
                                       b.up_proj_bias != nullptr ? b.up_proj_bias + F : nullptr,
                                       act, type, stream_));
    XLSTM_RETURN_IF_ERROR(gemm_->Linear(b.down_proj, act, T, x, D, /*accumulate=*/true));
    if (b.down_proj_bias != nullptr) {
      XLSTM_RETURN_IF_ERROR(LaunchAddBias(x, T, D, D, b.down_proj_bias, stream_));
    }
  }
  return absl::OkStatus();
}

absl::Status CudaBackend::RunHead(const int32_t* device_row_indices, int64_t count) {
  const ModelConfig& c = config();
  const int64_t D = c.hidden_size;
  XLSTM_RETURN_IF_ERROR(LaunchGatherRows(x_.as<float>(), device_row_indices, count, D,
                                         head_rows_.as<float>(), stream_));
  XLSTM_RETURN_IF_ERROR(LaunchRmsNorm(head_rows_.as<float>(), count, D, weights_->out_norm_weight(),
                                      nullptr, static_cast<float>(c.norm_eps), head_act_.data(),
                                      act_type_, stream_));
  XLSTM_RETURN_IF_ERROR(gemm_->Linear(weights_->lm_head(), head_act_.data(), count,
                                      logits_.as<float>(), c.vocab_size, /*accumulate=*/false));
  return LaunchSoftCap(logits_.as<float>(), count * c.vocab_size,
                       CapOrZero(c.output_logit_soft_cap), stream_);
}

absl::Status CudaBackend::EmitHidden(const int32_t* device_row_indices, int64_t count,
                                     std::vector<float>& hidden) {
  const ModelConfig& c = config();
  const int64_t D = c.hidden_size;
  XLSTM_RETURN_IF_ERROR(LaunchGatherRows(x_.as<float>(), device_row_indices, count, D,
                                         head_rows_.as<float>(), stream_));
  // The same norm as RunHead's, but into fp32: the head's operand may be bf16, and an embedding
  // is returned in float32.
  XLSTM_RETURN_IF_ERROR(LaunchRmsNorm(head_rows_.as<float>(), count, D, weights_->out_norm_weight(),
                                      nullptr, static_cast<float>(c.norm_eps), hidden_.data(),
                                      ActType::kF32, stream_));
  const size_t at = hidden.size();
  hidden.resize(at + static_cast<size_t>(count * D));
  cudaError_t e = cudaMemcpyAsync(hidden.data() + at, hidden_.data(), count * D * sizeof(float),
                                  cudaMemcpyDeviceToHost, stream_);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
  if (e != cudaSuccess) return CudaStatus(e, "hidden-state copy", __FILE__, __LINE__);
  return absl::OkStatus();
}

}  // namespace xlstm::engine::cuda
