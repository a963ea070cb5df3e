// Kernels of the device-side token choice (engine/cuda/device_sampler.h): the rules of
// engine/sampling/token_choice.h run on fp32 logits that are already on the device, so that only
// a few bytes per job come back to the host instead of full-vocabulary rows.
//
// The host (DeviceSampler) packs one SamplingJob per job plus the jobs' logit adjustments into
// one staging area, copies it to the device once, runs these launchers, and copies the
// SamplingResults back. The structs below are plain data shared by host and device code, so
// their layout is the same on both sides.
//
// Pipeline for a group of Generate jobs (the key buffer holds one "slot" of `vocab` 64-bit words
// per job that needs an adjusted copy of its row; sampled jobs take slots 0..n-1 so that their
// rows are one contiguous range for the sort):
//   1. LaunchPrepareRows: greedy jobs without adjustments take the argmax of the raw row; every
//      other job gets its row copied into its slot (-0 made +0), the adjustments applied (rule 1,
//      float). Greedy ones then take the argmax of that (as floats in the slot's first half);
//      sampled ones store each token as one sort key (see SortKey below).
//   2. LaunchSortRows: one device-wide radix sort (CUB onesweep) of the sampled slots' keys.
//      A single sort over all rows runs on every SM at once; a segmented sort would sort each row
//      with one thread block, which took ~300 us for one 50304-token row on an H100.
//   3. LaunchDrawSampled: per sampled job, top-k / top-p / min-p / zero cut and the draw on the
//      sorted prefix, with block scans in double (rule 3).
//
// SortKey: bits [0, id_bits) hold the token id, the next 32 bits the adjusted logit mapped to an
// unsigned number that decreases as the logit increases, the bits above that the slot. Sorted
// ascending, the keys come out row by row, each row by (logit desc, id asc): exactly rule 3's
// order, ties included, without relying on the sort's stability.
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
  int64_t row = 0;             // logits row
  double inv_temperature = 0;  // 1 / temperature, computed on the host exactly as the host
                               // reference does (sampled jobs only)
  double top_p = 1;
  double min_p = 0;
  double uniform = 0;  // CounterUniform(seed, step), computed on the host
  int32_t flags = 0;
  int32_t top_k = 0;         // effective k in [1, vocab]
  int32_t adjust_begin = 0;  // first adjustment of this job in the batch's array
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
  double logprob;     // log softmax(raw)[token or target] (kJobStats)
  int32_t token;      // the chosen token (Generate jobs)
  int32_t is_argmax;  // target is the first index of the raw maximum (kJobStats)
  int32_t top_token[kSamplingMaxTop];
  double top_logprob[kSamplingMaxTop];
};

// Bits of a SortKey that hold the token id: the bit width of vocab - 1.
inline int SortIdBits(int64_t vocab) {
  int bits = 0;
  while (bits < 63 && (int64_t{1} << bits) < vocab) ++bits;
  return bits;
}

// The most slots whose SortKeys fit in 64 bits at this vocabulary.
inline int64_t MaxSortSlots(int64_t vocab) {
  const int slot_bits = 64 - 32 - SortIdBits(vocab);
  return slot_bits <= 0 ? 0 : slot_bits >= 31 ? (int64_t{1} << 31) - 1 : int64_t{1} << slot_bits;
}

// Step 1 for jobs [group_begin, group_begin + group_count) of `jobs` (Score jobs are skipped).
// keys: [slots, vocab] 64-bit words. Greedy jobs get results[job].token.
absl::Status LaunchPrepareRows(const float* logits, int64_t vocab, const SamplingJob* jobs,
                               const DeviceAdjustment* adjustments, int32_t group_begin,
                               int32_t group_count, uint64_t* keys, SamplingResult* results,
                               cudaStream_t stream);

// The device scratch bytes LaunchSortRows needs for `slots` rows of `vocab`.
absl::Status SortRowsTempBytes(int64_t vocab, int32_t slots, size_t* bytes);

// Step 2: sorts the SortKeys of slots [0, slots) ascending, keys[0] as input (overwritten).
// On return *sorted says which of the two buffers holds the result (0 or 1).
absl::Status LaunchSortRows(uint64_t* keys[2], int32_t slots, int64_t vocab, void* temp,
                            size_t temp_bytes, int* sorted, cudaStream_t stream);

// Step 3 for the sampled jobs of [group_begin, group_begin + group_count): results[job].token
// from the sorted keys (slot s at sorted + s * vocab).
absl::Status LaunchDrawSampled(const SamplingJob* jobs, int32_t group_begin, int32_t group_count,
                               int64_t vocab, const uint64_t* sorted, SamplingResult* results,
                               cudaStream_t stream);

// Rule 4 for the kJobStats jobs of [0, count): Generate jobs use results[job].token (so this
// runs after their token is chosen), Score jobs their target.
absl::Status LaunchRawStats(const float* logits, int64_t vocab, const SamplingJob* jobs,
                            int32_t count, SamplingResult* results, cudaStream_t stream);

}  // namespace xlstm::engine::cuda

#endif  // XLSTM_ENGINE_CUDA_SAMPLING_KERNELS_H_
