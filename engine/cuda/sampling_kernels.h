// Kernels of the device-side token choice (engine/cuda/device_sampler.h): the rules of
// engine/sampling/token_choice.h run on fp32 logits that are already on the device, so that only
// a few bytes per job come back to the host instead of full-vocabulary rows.
//
// The host (DeviceSampler) packs one SamplingJob per job plus the jobs' logit adjustments into
// one staging area, copies it to the device once, runs these launchers, and copies the
// SamplingResults back. The structs below are plain data shared by host and device code, so
// their layout is the same on both sides.
//
// Pipeline for a group of Generate jobs (the key buffers hold one "slot" per job that needs an
// adjusted copy of its row; sampled jobs take slots 0..n-1 so that their rows form one
// contiguous set of segments for the sort):
//   1. LaunchPrepareRows: greedy jobs without adjustments take the argmax of the raw row; every
//      other job gets its row copied into its key slot (-0 made +0), the adjustments applied
//      (rule 1, float), and greedy ones then take the argmax of that.
//   2. LaunchSortRowsDescending: the sampled slots sorted by (key desc, id asc) (stable radix
//      sort with ids in ascending order as values).
//   3. LaunchDrawSampled: per sampled job, top-k / top-p / min-p / zero cut and the draw on the
//      sorted prefix, with block scans in double (rule 3).
// Then, for all jobs of a batch that report log-probs (and every Score job), LaunchRawStats:
// log-sum-exp of the raw row in double, the log-prob of the chosen token or target, whether it is
// the argmax, and the top alternatives by rounds of block argmax (rule 4).
//
// All pointers are device pointers. Launchers only enqueue on `stream` and return the launch
// status. Threading: stateless; callers serialize work on a stream.
#ifndef XLSTM_ENGINE_CUDA_SAMPLING_KERNELS_H_
#define XLSTM_ENGINE_CUDA_SAMPLING_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"

namespace xlstm::engine::cuda {

// Most alternatives a result can carry (kMaxTopLogprobsPerToken of token_choice.h; the
// DeviceSampler checks that they agree).
inline constexpr int kSamplingMaxTop = 20;

// SamplingJob::flags.
inline constexpr int32_t kJobGreedy = 1;  // temperature 0: first index of the adjusted maximum
inline constexpr int32_t kJobScore = 2;   // a Score job: only LaunchRawStats looks at it
inline constexpr int32_t kJobStats = 4;   // LaunchRawStats fills logprob / is_argmax / top

// DeviceAdjustment::flags.
inline constexpr int32_t kAdjustRepeated = 1;
inline constexpr int32_t kAdjustBanned = 2;

// One job, as the kernels read it.
struct SamplingJob {
  int64_t row = 0;               // logits row
  double inv_temperature = 0;    // 1 / temperature, computed on the host exactly as the host
                                 // reference does (sampled jobs only)
  double top_p = 1;
  double min_p = 0;
  double uniform = 0;            // CounterUniform(seed, step), computed on the host
  int32_t flags = 0;
  int32_t top_k = 0;             // effective k in [1, vocab]
  int32_t adjust_begin = 0;      // first adjustment of this job in the batch's array
  int32_t adjust_count = 0;
  int32_t slot = -1;             // key-buffer slot within its group; -1: none
  int32_t target = 0;            // Score target
  int32_t top_logprobs = 0;      // alternatives to report, already min(n, vocab)
  float repetition_penalty = 1;  // as float, as rule 1 applies it
};

// LogitAdjustment in a layout that both compilers agree on.
struct DeviceAdjustment {
  int32_t token = 0;
  float subtract = 0;
  int32_t flags = 0;  // kAdjust*
};

// What comes back per job.
struct SamplingResult {
  double logprob;  // log softmax(raw)[token or target] (kJobStats)
  int32_t token;   // the chosen token (Generate jobs)
  int32_t is_argmax;  // target is the first index of the raw maximum (kJobStats)
  int32_t top_token[kSamplingMaxTop];
  double top_logprob[kSamplingMaxTop];
};

// Step 1 for jobs [group_begin, group_begin + group_count) of `jobs` (Score jobs are skipped).
// keys / ids: [slots, vocab] key buffers (ids written for sampled jobs only). Greedy jobs get
// results[job].token.
absl::Status LaunchPrepareRows(const float* logits, int64_t vocab, const SamplingJob* jobs,
                               const DeviceAdjustment* adjustments, int32_t group_begin,
                               int32_t group_count, float* keys, int32_t* ids,
                               SamplingResult* results, cudaStream_t stream);

// The device scratch bytes LaunchSortRowsDescending needs for `segments` rows of `vocab`.
absl::Status SortRowsTempBytes(int64_t vocab, int32_t segments, size_t* bytes);

// Step 2: sorts rows [0, segments) of the key buffers by (key desc, id asc), keys[0]/ids[0] as
// input (they are overwritten). segment_offsets holds s * vocab for s in [0, segments]. On return
// *sorted says which of the two buffer pairs holds the result (0 or 1; keys and ids alike).
absl::Status LaunchSortRowsDescending(float* keys[2], int32_t* ids[2],
                                      const int32_t* segment_offsets, int32_t segments,
                                      int64_t vocab, void* temp, size_t temp_bytes, int* sorted,
                                      cudaStream_t stream);

// Step 3 for the sampled jobs of [group_begin, group_begin + group_count): results[job].token
// from the sorted rows (slot s at sorted_keys + s * vocab).
absl::Status LaunchDrawSampled(const SamplingJob* jobs, int32_t group_begin, int32_t group_count,
                               int64_t vocab, const float* sorted_keys, const int32_t* sorted_ids,
                               SamplingResult* results, cudaStream_t stream);

// Rule 4 for the kJobStats jobs of [0, count): Generate jobs use results[job].token (so this
// runs after their token is chosen), Score jobs their target.
absl::Status LaunchRawStats(const float* logits, int64_t vocab, const SamplingJob* jobs,
                            int32_t count, SamplingResult* results, cudaStream_t stream);

}  // namespace xlstm::engine::cuda

#endif  // XLSTM_ENGINE_CUDA_SAMPLING_KERNELS_H_
