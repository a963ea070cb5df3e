// Token choice and Score log-probs on the device: the rules of engine/sampling/token_choice.h
// (penalties and masks, temperature, top-k, top-p, min-p, the counter-based draw; log softmax of
// the raw logits, the argmax check, top alternatives) applied to fp32 logits that are already in
// device memory. Only a few hundred bytes per job come back to the host, never a full-vocabulary
// row.
//
// Results are those of ChooseToken / ScoreTarget on the same logits: the same token ids (the
// double-precision sums run in another order than the host's sequential loops, which can change
// a draw or a top-p cut only where a cumulative probability lands within ~1e-15 of u or of top_p)
// and log-probs within ~1e-12 (the tests allow 1e-6).
//
// Cost: one host-to-device copy of the jobs' parameters and adjustments, a few kernels, one copy
// back and one stream synchronization per call (per batch when a call exceeds the staging
// capacity: more than job_capacity() jobs, or more logit adjustments than
// adjustment_capacity()). Sampled jobs (temperature > 0) sort their adjusted row (one CUB radix
// sort over up to sort_rows() rows at a time); greedy jobs and log-probs need no sort.
//
// Memory: everything is allocated in Create(); Sample() and Score() allocate no device or pinned
// memory.
//
// Threading: one owner; calls are serialized on the stream given to Create().
#ifndef XLSTM_ENGINE_CUDA_DEVICE_SAMPLER_H_
#define XLSTM_ENGINE_CUDA_DEVICE_SAMPLER_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/cuda/device_buffer.h"
#include "engine/sampling/token_choice.h"

namespace xlstm::engine::cuda {

// One Generate draw from logits row `logits_row`. Several jobs may share a row (n > 1 samples).
struct SampleJob {
  int32_t logits_row = 0;
  const SampleSpec* spec = nullptr;  // validated by the caller with ValidateSampleSpec
};

// One Score target: log softmax(row)[target], is_argmax and `top_logprobs` alternatives.
struct ScoreJob {
  int32_t logits_row = 0;
  int32_t target = 0;
  int32_t top_logprobs = 0;
};

class DeviceSampler {
 public:
  // Allocates every workspace now for logits matrices of `vocab` floats per row; `max_rows`
  // (the largest logits matrix the caller will pass) bounds the number of rows sorted per
  // launch, so that a small batch does not pay for a large workspace. Work is queued on `stream`.
  static absl::StatusOr<std::unique_ptr<DeviceSampler>> Create(int64_t vocab, int64_t max_rows,
                                                               cudaStream_t stream);
  ~DeviceSampler();
  DeviceSampler(const DeviceSampler&) = delete;
  DeviceSampler& operator=(const DeviceSampler&) = delete;

  // Appends one TokenChoice per job, in job order, from device logits [rows, vocab] (row-major);
  // never modifies the logits. Returns when the results are on the host. InvalidArgument, with
  // nothing appended, for a job whose row is outside [0, rows) or whose spec is missing or would
  // index outside the row (adjustment tokens, top_logprobs > kMaxTopLogprobsPerToken); the rest
  // of the spec is the caller's to validate (ValidateSampleSpec). A CUDA error is returned as is
  // (the backend treats it as a device fault); `out` is then left as it was.
  absl::Status Sample(const float* logits, int64_t rows, absl::Span<const SampleJob> jobs,
                      std::vector<TokenChoice>& out);

  // Appends one TargetScore per job (log softmax at target, is_argmax, top alternatives), in job
  // order. InvalidArgument, with nothing appended, for a row outside [0, rows), a target outside
  // [0, vocab) or top_logprobs outside [0, kMaxTopLogprobsPerToken].
  absl::Status Score(const float* logits, int64_t rows, absl::Span<const ScoreJob> jobs,
                     std::vector<TargetScore>& out);

  // Device bytes allocated (key buffers, sort scratch, staging, results).
  int64_t workspace_bytes() const { return workspace_bytes_; }

  int64_t vocab() const { return vocab_; }
  // Jobs per batch, logit adjustments per batch, and rows sorted per sort launch.
  int32_t job_capacity() const { return job_capacity_; }
  int32_t adjustment_capacity() const { return adjustment_capacity_; }
  int32_t sort_rows() const { return sort_rows_; }

 private:
  DeviceSampler() = default;

  // A run of consecutive jobs of a batch whose key-buffer slots fit in one sort launch.
  struct Group {
    int32_t begin = 0;
    int32_t count = 0;
    int32_t sampled = 0;  // sampled jobs, which hold slots [0, sampled)
  };

  // The `count` Generate jobs packed in the host staging, followed by `adjustments` adjustments:
  // assigns key-buffer slots, copies the staging to the device, runs the kernels and copies the
  // results back into host_results_ (synchronized on return).
  absl::Status RunSampleBatch(const float* logits, int32_t count, int32_t adjustments);
  // The same for `count` Score jobs (no adjustments, no slots).
  absl::Status RunScoreBatch(const float* logits, int32_t count);

  int64_t vocab_ = 0;
  cudaStream_t stream_ = nullptr;
  int32_t job_capacity_ = 0;
  int32_t adjustment_capacity_ = 0;
  int32_t sort_rows_ = 0;
  int64_t workspace_bytes_ = 0;
  size_t sort_temp_bytes_ = 0;

  // Sort keys [sort_rows, vocab] (64-bit, see sampling_kernels.h), two for the radix sort's
  // ping-pong.
  DeviceBuffer keys_[2];
  DeviceBuffer sort_temp_;
  // Staging: [jobs][adjustments] packed back to back, the same layout on both sides.
  DeviceBuffer staging_;
  PinnedBuffer host_staging_;
  DeviceBuffer results_;
  PinnedBuffer host_results_;
  std::vector<Group> groups_;  // reused by every call
};

}  // namespace xlstm::engine::cuda

#endif  // XLSTM_ENGINE_CUDA_DEVICE_SAMPLER_H_
