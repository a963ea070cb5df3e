#include "engine/cuda/device_sampler.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/sampling_kernels.h"
#include "engine/sampling/sampler.h"
#include "common/status_macros.h"

namespace xlstm::engine::cuda {
namespace {

// Rows sorted per sort launch: 64 rows of the 50304-token vocabulary take 2 x 26 MB of key
// buffers; a sort of 64 rows (3.2M keys) already keeps every SM busy.
constexpr int64_t kMaxSortRows = 64;
// Jobs per batch (a Score of a long continuation has one job per token) and logit adjustments
// per batch (long prompts with a repetition penalty have one per distinct token). A call with
// more is run in several batches; one job never has more adjustments than the vocabulary
// (distinct tokens), so every job fits in a batch of its own.
constexpr int32_t kJobCapacity = 512;
constexpr int64_t kMinAdjustmentCapacity = 65536;

static_assert(kSamplingMaxTop == kMaxTopLogprobsPerToken,
              "SamplingResult must hold every alternative a spec can ask for");
static_assert(sizeof(SamplingJob) % alignof(DeviceAdjustment) == 0,
              "adjustments follow the jobs in the staging area");

}  // namespace

DeviceSampler::~DeviceSampler() = default;

absl::StatusOr<std::unique_ptr<DeviceSampler>> DeviceSampler::Create(int64_t vocab,
                                                                     int64_t max_rows,
                                                                     cudaStream_t stream) {
  if (vocab < 1 || vocab > std::numeric_limits<int32_t>::max() || max_rows < 1) {
    return absl::InvalidArgumentError(absl::StrCat("DeviceSampler: vocab (", vocab,
                                                   ") must be in [1, 2^31) and max_rows (",
                                                   max_rows, ") >= 1"));
  }
  std::unique_ptr<DeviceSampler> s(new DeviceSampler());
  s->vocab_ = vocab;
  s->stream_ = stream;
  // A slot's index must fit in the bits of a sort key above the logit and the id.
  s->sort_rows_ = static_cast<int32_t>(std::min({kMaxSortRows, max_rows, MaxSortSlots(vocab)}));
  s->job_capacity_ = kJobCapacity;
  s->adjustment_capacity_ = static_cast<int32_t>(std::max(kMinAdjustmentCapacity, vocab));

  auto allocate = [&](DeviceBuffer& buffer, size_t bytes, const char* what) -> absl::Status {
    XLSTM_ASSIGN_OR_RETURN(buffer, DeviceBuffer::Allocate(bytes, what));
    s->workspace_bytes_ += static_cast<int64_t>(bytes);
    return absl::OkStatus();
  };
  const size_t key_bytes = static_cast<size_t>(s->sort_rows_) * static_cast<size_t>(vocab) * 8;
  XLSTM_RETURN_IF_ERROR(allocate(s->keys_[0], key_bytes, "sampling sort keys"));
  XLSTM_RETURN_IF_ERROR(allocate(s->keys_[1], key_bytes, "sampling sort keys"));

  XLSTM_RETURN_IF_ERROR(SortRowsTempBytes(vocab, s->sort_rows_, &s->sort_temp_bytes_));
  // Never zero bytes: CUB takes a null scratch pointer as a size query and would sort nothing.
  s->sort_temp_bytes_ = std::max<size_t>(s->sort_temp_bytes_, 256);
  XLSTM_RETURN_IF_ERROR(allocate(s->sort_temp_, s->sort_temp_bytes_, "sort scratch"));

  const size_t staging_bytes =
      static_cast<size_t>(s->job_capacity_) * sizeof(SamplingJob) +
      static_cast<size_t>(s->adjustment_capacity_) * sizeof(DeviceAdjustment);
  XLSTM_RETURN_IF_ERROR(allocate(s->staging_, staging_bytes, "sampling jobs"));
  XLSTM_ASSIGN_OR_RETURN(s->host_staging_, PinnedBuffer::Allocate(staging_bytes, "sampling jobs"));
  const size_t result_bytes = static_cast<size_t>(s->job_capacity_) * sizeof(SamplingResult);
  XLSTM_RETURN_IF_ERROR(allocate(s->results_, result_bytes, "sampling results"));
  XLSTM_ASSIGN_OR_RETURN(s->host_results_,
                         PinnedBuffer::Allocate(result_bytes, "sampling results"));
  return s;
}

absl::Status DeviceSampler::Sample(const float* logits, int64_t rows,
                                   absl::Span<const SampleJob> jobs,
                                   std::vector<TokenChoice>& out) {
  // Everything that could make a kernel read or write outside its arrays is refused before any
  // work, so that a bad job never becomes a device fault.
  for (size_t i = 0; i < jobs.size(); ++i) {
    const SampleJob& job = jobs[i];
    if (job.logits_row < 0 || job.logits_row >= rows) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sample job ", i, ": logits row ", job.logits_row, " is outside [0, ", rows, ")"));
    }
    if (job.spec == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("sample job ", i, " has no spec"));
    }
    const SampleSpec& spec = *job.spec;
    if (spec.top_logprobs < 0 || spec.top_logprobs > kMaxTopLogprobsPerToken) {
      return absl::InvalidArgumentError(absl::StrCat("sample job ", i, ": top_logprobs ",
                                                     spec.top_logprobs, " is outside [0, ",
                                                     kMaxTopLogprobsPerToken, "]"));
    }
    if (static_cast<int64_t>(spec.adjustments.size()) > vocab_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sample job ", i, ": ", spec.adjustments.size(),
          " logit adjustments for a vocabulary of ", vocab_, " (tokens must be distinct)"));
    }
    for (const LogitAdjustment& a : spec.adjustments) {
      if (a.token < 0 || a.token >= vocab_) {
        return absl::InvalidArgumentError(absl::StrCat("sample job ", i, ": adjusted token ",
                                                       a.token, " is outside [0, ", vocab_, ")"));
      }
    }
  }

  const size_t first = out.size();
  out.reserve(first + jobs.size());
  size_t next = 0;
  while (next < jobs.size()) {
    // The batch: as many jobs as the staging holds, with their adjustments.
    int32_t count = 0;
    int64_t adjustments = 0;
    while (next + count < jobs.size() && count < job_capacity_) {
      const int64_t a = static_cast<int64_t>(jobs[next + count].spec->adjustments.size());
      if (adjustments + a > adjustment_capacity_) break;
      adjustments += a;
      ++count;
    }
    auto* host_jobs = host_staging_.as<SamplingJob>();
    auto* host_adjustments = reinterpret_cast<DeviceAdjustment*>(
        host_staging_.as<char>() + static_cast<size_t>(count) * sizeof(SamplingJob));
    int32_t packed = 0;
    for (int32_t i = 0; i < count; ++i) {
      const SampleSpec& spec = *jobs[next + i].spec;
      const SamplingParams& p = spec.params;
      SamplingJob job;
      job.row = jobs[next + i].logits_row;
      const bool greedy = p.greedy();
      job.flags =
          (greedy ? kJobGreedy : 0) | (spec.logprob || spec.top_logprobs > 0 ? kJobStats : 0);
      if (!greedy) {
        job.inv_temperature = 1.0 / p.temperature;  // as DrawToken computes it
        job.uniform = CounterUniform(p.seed, spec.step);
      }
      job.top_p = p.top_p;
      job.min_p = p.min_p;
      job.top_k = static_cast<int32_t>(p.top_k > 0 ? std::min<int64_t>(p.top_k, vocab_) : vocab_);
      job.adjust_begin = packed;
      job.adjust_count = static_cast<int32_t>(spec.adjustments.size());
      job.top_logprobs = static_cast<int32_t>(std::min<int64_t>(spec.top_logprobs, vocab_));
      job.repetition_penalty = static_cast<float>(p.repetition_penalty);
      host_jobs[i] = job;
      for (const LogitAdjustment& a : spec.adjustments) {
        host_adjustments[packed++] =
            DeviceAdjustment{a.token, a.subtract,
                             (a.repeated ? kAdjustRepeated : 0) | (a.banned ? kAdjustBanned : 0)};
      }
    }
    if (absl::Status status = RunSampleBatch(logits, count, packed); !status.ok()) {
      out.resize(first);
      return status;
    }
    const auto* results = host_results_.as<const SamplingResult>();
    for (int32_t i = 0; i < count; ++i) {
      const SampleSpec& spec = *jobs[next + i].spec;
      const SamplingResult& r = results[i];
      TokenChoice choice;
      choice.token = r.token;
      if (spec.logprob || spec.top_logprobs > 0) choice.logprob = r.logprob;
      for (int32_t t = 0; t < host_jobs[i].top_logprobs; ++t) {
        choice.top.push_back(TokenLogProbEntry{r.top_token[t], r.top_logprob[t]});
      }
      out.push_back(std::move(choice));
    }
    next += static_cast<size_t>(count);
  }
  return absl::OkStatus();
}

absl::Status DeviceSampler::RunSampleBatch(const float* logits, int32_t count,
                                           int32_t adjustments) {
  auto* jobs = host_staging_.as<SamplingJob>();
  // Groups of consecutive jobs with at most sort_rows_ of them needing a key-buffer slot (greedy
  // jobs without adjustments read the raw row). Within a group the sampled jobs take slots
  // 0..sampled-1, so one sort of the first `sampled` rows covers them, and greedy jobs with
  // adjustments the next.
  groups_.clear();
  for (int32_t begin = 0; begin < count;) {
    int32_t end = begin, slotted = 0;
    while (end < count) {
      const bool needs_slot = (jobs[end].flags & kJobGreedy) == 0 || jobs[end].adjust_count > 0;
      if (needs_slot && slotted == sort_rows_) break;
      slotted += needs_slot ? 1 : 0;
      ++end;
    }
    int32_t slot = 0;
    for (int32_t i = begin; i < end; ++i) {
      if ((jobs[i].flags & kJobGreedy) == 0) jobs[i].slot = slot++;
    }
    const int32_t sampled = slot;
    for (int32_t i = begin; i < end; ++i) {
      if ((jobs[i].flags & kJobGreedy) != 0 && jobs[i].adjust_count > 0) jobs[i].slot = slot++;
    }
    groups_.push_back(Group{begin, end - begin, sampled});
    begin = end;
  }

  const size_t job_bytes = static_cast<size_t>(count) * sizeof(SamplingJob);
  const size_t bytes = job_bytes + static_cast<size_t>(adjustments) * sizeof(DeviceAdjustment);
  XLSTM_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(staging_.data(), host_staging_.data(), bytes,
                                             cudaMemcpyHostToDevice, stream_));
  const auto* device_jobs = staging_.as<const SamplingJob>();
  const auto* device_adjustments =
      reinterpret_cast<const DeviceAdjustment*>(staging_.as<const char>() + job_bytes);
  auto* results = results_.as<SamplingResult>();
  uint64_t* keys[2] = {keys_[0].as<uint64_t>(), keys_[1].as<uint64_t>()};
  bool any_stats = false;
  for (int32_t i = 0; i < count; ++i) any_stats |= (jobs[i].flags & kJobStats) != 0;

  for (const Group& g : groups_) {
    XLSTM_RETURN_IF_ERROR(LaunchPrepareRows(logits, vocab_, device_jobs, device_adjustments,
                                            g.begin, g.count, keys[0], results, stream_));
    if (g.sampled == 0) continue;
    int sorted = 0;
    XLSTM_RETURN_IF_ERROR(LaunchSortRows(keys, g.sampled, vocab_, sort_temp_.data(),
                                         sort_temp_bytes_, &sorted, stream_));
    XLSTM_RETURN_IF_ERROR(
        LaunchDrawSampled(device_jobs, g.begin, g.count, vocab_, keys[sorted], results, stream_));
  }
  if (any_stats) {
    XLSTM_RETURN_IF_ERROR(LaunchRawStats(logits, vocab_, device_jobs, count, results, stream_));
  }
  XLSTM_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host_results_.data(), results_.data(),
                                             static_cast<size_t>(count) * sizeof(SamplingResult),
                                             cudaMemcpyDeviceToHost, stream_));
  XLSTM_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  return absl::OkStatus();
}

absl::Status DeviceSampler::Score(const float* logits, int64_t rows,
                                  absl::Span<const ScoreJob> jobs, std::vector<TargetScore>& out) {
  for (size_t i = 0; i < jobs.size(); ++i) {
    const ScoreJob& job = jobs[i];
    if (job.logits_row < 0 || job.logits_row >= rows) {
      return absl::InvalidArgumentError(absl::StrCat(
          "score job ", i, ": logits row ", job.logits_row, " is outside [0, ", rows, ")"));
    }
    if (job.target < 0 || job.target >= vocab_) {
      return absl::InvalidArgumentError(
          absl::StrCat("score job ", i, ": target ", job.target, " is outside [0, ", vocab_, ")"));
    }
    if (job.top_logprobs < 0 || job.top_logprobs > kMaxTopLogprobsPerToken) {
      return absl::InvalidArgumentError(absl::StrCat("score job ", i, ": top_logprobs ",
                                                     job.top_logprobs, " is outside [0, ",
                                                     kMaxTopLogprobsPerToken, "]"));
    }
  }

  const size_t first = out.size();
  out.reserve(first + jobs.size());
  for (size_t next = 0; next < jobs.size();) {
    const int32_t count = static_cast<int32_t>(
        std::min<size_t>(jobs.size() - next, static_cast<size_t>(job_capacity_)));
    auto* host_jobs = host_staging_.as<SamplingJob>();
    for (int32_t i = 0; i < count; ++i) {
      const ScoreJob& job = jobs[next + i];
      SamplingJob packed;
      packed.row = job.logits_row;
      packed.flags = kJobScore | kJobStats;
      packed.target = job.target;
      packed.top_logprobs = static_cast<int32_t>(std::min<int64_t>(job.top_logprobs, vocab_));
      host_jobs[i] = packed;
    }
    if (absl::Status status = RunScoreBatch(logits, count); !status.ok()) {
      out.resize(first);
      return status;
    }
    const auto* results = host_results_.as<const SamplingResult>();
    for (int32_t i = 0; i < count; ++i) {
      const SamplingResult& r = results[i];
      TargetScore score;
      score.logprob = r.logprob;
      score.is_argmax = r.is_argmax != 0;
      for (int32_t t = 0; t < host_jobs[i].top_logprobs; ++t) {
        score.top.push_back(TokenLogProbEntry{r.top_token[t], r.top_logprob[t]});
      }
      out.push_back(std::move(score));
    }
    next += static_cast<size_t>(count);
  }
  return absl::OkStatus();
}

absl::Status DeviceSampler::RunScoreBatch(const float* logits, int32_t count) {
  XLSTM_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(staging_.data(), host_staging_.data(),
                                             static_cast<size_t>(count) * sizeof(SamplingJob),
                                             cudaMemcpyHostToDevice, stream_));
  XLSTM_RETURN_IF_ERROR(LaunchRawStats(logits, vocab_, staging_.as<const SamplingJob>(), count,
                                       results_.as<SamplingResult>(), stream_));
  XLSTM_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host_results_.data(), results_.data(),
                                             static_cast<size_t>(count) * sizeof(SamplingResult),
                                             cudaMemcpyDeviceToHost, stream_));
  XLSTM_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  return absl::OkStatus();
}

}  // namespace xlstm::engine::cuda
