// Candidate pre-filter of the device token choice (device_sampler.h, sampling_kernels.h): before
// the sort, each sampled job finds the tokens that can matter to rule 3 of
// engine/sampling/token_choice.h, and only those keys are sorted.
//
// The candidates of a job are {tokens whose adjusted logit >= a threshold}, the threshold found
// on the device from the row's SortKeys (no sort). A set defined by "logit >= x" is a prefix of
// the (logit desc, id asc) order with every tie at x included, so the first `count` positions of
// the sorted candidates are exactly the first `count` positions of the full sorted row: the walk
// reads the same keys it read before, only fewer of them. The threshold is the tightest of these
// bounds (each enabled rule cuts the kept prefix on its own, so the kept prefix lies inside each
// rule's bound, hence inside the smallest):
//   top-k (k < vocab): the k-th largest logit (radix select on the key's logit bits; ties at it
//     all included, so the count may exceed k).
//   top-p (< 1): the largest logit x such that the mass of {logit >= x} (within the top k)
//     reaches top_p * (1 + 1e-6) of the normaliser (mass radix select; see the margin below).
//   min-p (> 0): the smallest logit whose exponent l/T - l_0/T is >= log(min_p) - 1e-6.
// With no rule enabled (top_k 0, top_p 1, min_p 0), or a non-finite maximum (the walk returns the
// first sorted token then), nothing is cut that the walk would read: count is the whole row, or
// the ties of the maximum.
//
// The normaliser. Rule 3 divides by the sum of e over the top k, also over tokens that are no
// candidates (with top_k 0: the whole row). The filter therefore reports `tail`, the sum of e
// over sorted positions [count, k) (the non-candidates within the top k, ties at the k-th
// logit counted as many times as the top k holds them), which the walk adds to its own sum over
// positions [0, min(k, count)). When nothing is cut the tail is +0 and the walk's total is
// bit-identical to the unfiltered one.
//
// Margin. The filter's sums run in another order (histogram bins, atomics) than both the host's
// sequential loop and the walk's block scans. Every sum involved is of at most vocab (< 2^31, in
// practice 50304) non-negative doubles, so each has a relative error below vocab * 2^-53 (about
// 5.6e-12 at 50304), and each e_i is the same device value or within a couple of ulps of the
// host's std::exp. The filter's mass reaching (1 + 1e-6) * top_p of its normaliser therefore
// implies that the walk's and the host's cumulative p at the last candidate are above
// top_p * (1 + 1e-6 - 4 * 5.6e-12) > top_p: both cut inside the candidates. Likewise a token
// whose exponent is below log(min_p) - 1e-6 has e < min_p * (1 - 1e-6 + 1e-15), so both the
// host and the walk see p < min_p * p_0 there. A margin of 1e-6 keeps at most a few tokens more
// than the exact bound (those within 1e-6 of the cut in probability or log-probability).
//
// All pointers are device pointers; launchers only enqueue on `stream`. Threading: stateless.
#ifndef XLSTM_ENGINE_CUDA_CANDIDATE_FILTER_H_
#define XLSTM_ENGINE_CUDA_CANDIDATE_FILTER_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "engine/cuda/sampling_kernels.h"

namespace xlstm::engine::cuda {

// For the sampled jobs of [group_begin, group_begin + group_count): rows[job.slot] from the
// SortKeys of the job's slot (keys + slot * vocab, as LaunchPrepareRows leaves them).
absl::Status LaunchFilterCandidates(const SamplingJob* jobs, int32_t group_begin,
                                    int32_t group_count, int64_t vocab, const uint64_t* keys,
                                    CandidateRow* rows, cudaStream_t stream);

// Then copies each sampled slot's candidate keys (any order) to compacted + rows[slot].offset,
// slot after slot (offset = the counts of the slots before), so that one sort of the first
// sum(count) keys of `compacted` leaves every slot's candidates sorted at its offset.
absl::Status LaunchCompactCandidates(const SamplingJob* jobs, int32_t group_begin,
                                     int32_t group_count, int64_t vocab, const uint64_t* keys,
                                     CandidateRow* rows, uint64_t* compacted, cudaStream_t stream);

}  // namespace xlstm::engine::cuda

#endif  // XLSTM_ENGINE_CUDA_CANDIDATE_FILTER_H_
