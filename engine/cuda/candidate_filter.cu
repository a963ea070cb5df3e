// Candidate pre-filter; contract, bounds and margins in candidate_filter.h.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cub/block/block_reduce.cuh>

#include "engine/cuda/candidate_filter.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/sampling_device.cuh"

namespace xlstm::engine::cuda {
namespace {

constexpr int kWarp = 32;
// One block per job, as the other sampling kernels.
constexpr int kThreads = 512;
constexpr int kWarps = kThreads / kWarp;
// One 8-bit digit of the 32 logit bits per select pass: four passes find a value exactly.
constexpr int kDigitBits = 8;
constexpr int kBins = 1 << kDigitBits;
// Relative slack on the top-p mass and absolute slack on the min-p exponent (see the header).
constexpr double kTopPMargin = 1e-6;
constexpr double kMinPMargin = 1e-6;
// "Every token" for the exclusive bound on the logit bits of the top k.
constexpr uint64_t kNoLimit = uint64_t{1} << 32;

struct MinU32 {
  __device__ __forceinline__ uint32_t operator()(uint32_t a, uint32_t b) const {
    return a < b ? a : b;
  }
};
struct MaxU32 {
  __device__ __forceinline__ uint32_t operator()(uint32_t a, uint32_t b) const {
    return a > b ? a : b;
  }
};

using U32Reduce = cub::BlockReduce<uint32_t, kThreads>;
using IntReduce = cub::BlockReduce<int32_t, kThreads>;
using DoubleReduce = cub::BlockReduce<double, kThreads>;

// Histograms are per warp (contention stays within 32 lanes even when most of a row falls into
// one bin, as the bulk of a peaked row does), then summed per bin in warp order.
struct FilterShared {
  union {
    U32Reduce::TempStorage u32;
    IntReduce::TempStorage i32;
    DoubleReduce::TempStorage f64;
  } reduce;
  union {
    int32_t count[kWarps][kBins];
    double mass[kWarps][kBins];
  } hist;
  union {
    int32_t count[kBins];
    double mass[kBins];
  } bins;
  uint32_t u32;
  int32_t i32;
  double f64;
  int32_t chosen;
};

// Block-wide reductions whose result every thread gets; `s` is reusable on return.
__device__ uint32_t BlockMin(uint32_t v, FilterShared& s) {
  const uint32_t r = U32Reduce(s.reduce.u32).Reduce(v, MinU32());
  if (threadIdx.x == 0) s.u32 = r;
  __syncthreads();
  const uint32_t result = s.u32;
  __syncthreads();
  return result;
}
__device__ uint32_t BlockMax(uint32_t v, FilterShared& s) {
  const uint32_t r = U32Reduce(s.reduce.u32).Reduce(v, MaxU32());
  if (threadIdx.x == 0) s.u32 = r;
  __syncthreads();
  const uint32_t result = s.u32;
  __syncthreads();
  return result;
}
__device__ int32_t BlockSum(int32_t v, FilterShared& s) {
  const int32_t r = IntReduce(s.reduce.i32).Sum(v);
  if (threadIdx.x == 0) s.i32 = r;
  __syncthreads();
  const int32_t result = s.i32;
  __syncthreads();
  return result;
}
__device__ double BlockSum(double v, FilterShared& s) {
  const double r = DoubleReduce(s.reduce.f64).Sum(v);
  if (threadIdx.x == 0) s.f64 = r;
  __syncthreads();
  const double result = s.f64;
  __syncthreads();
  return result;
}

// The histogram arrays of `s` for T (int32_t counts or double masses).
template <typename T>
struct Hist;
template <>
struct Hist<int32_t> {
  __device__ static int32_t (*PerWarp(FilterShared& s))[kBins] { return s.hist.count; }
  __device__ static int32_t* Bins(FilterShared& s) { return s.bins.count; }
  __device__ static int32_t& Broadcast(FilterShared& s) { return s.i32; }
};
template <>
struct Hist<double> {
  __device__ static double (*PerWarp(FilterShared& s))[kBins] { return s.hist.mass; }
  __device__ static double* Bins(FilterShared& s) { return s.bins.mass; }
  __device__ static double& Broadcast(FilterShared& s) { return s.f64; }
};

// Among the tokens of `row` whose logit bits d are < limit, each weighing weight(d) (1 for a
// count, e for a mass), the smallest d* with W(d <= d*) >= target, i.e. the loosest logit whose
// prefix reaches the target; false (every thread) when the eligible tokens weigh less than
// target in all. Digit by digit from the most significant: each pass histograms the tokens that
// share the digits chosen so far and chooses the first bin where the running weight reaches the
// target. *before gets W(d < d*) (exact for counts). A refinement pass that falls short (only a
// mass can: its bins are summed in another order than the pass before) takes the whole bin the
// previous pass chose, which that pass found to reach the target: still a bound that holds.
template <typename T, typename Weight>
__device__ bool RadixSelect(const uint64_t* row, int32_t n, int id_bits, uint64_t limit, T target,
                            Weight weight, FilterShared& s, uint32_t* selected, T* before) {
  T(*per_warp)[kBins] = Hist<T>::PerWarp(s);
  T* bins = Hist<T>::Bins(s);
  T* mine = per_warp[threadIdx.x / kWarp];
  uint32_t prefix = 0, mask = 0;
  T carry = 0;
  for (int shift = 32 - kDigitBits; shift >= 0; shift -= kDigitBits) {
    for (int b = threadIdx.x; b < kWarps * kBins; b += kThreads) per_warp[b / kBins][b % kBins] = 0;
    __syncthreads();
#pragma unroll 4
    for (int32_t i = threadIdx.x; i < n; i += kThreads) {
      const uint32_t d = KeyLogitBits(row[i], id_bits);
      if (d < limit && (d & mask) == prefix) {
        atomicAdd(&mine[(d >> shift) & (kBins - 1)], weight(d));
      }
    }
    __syncthreads();
    for (int b = threadIdx.x; b < kBins; b += kThreads) {
      T sum = per_warp[0][b];
      for (int w = 1; w < kWarps; ++w) sum += per_warp[w][b];
      bins[b] = sum;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      T running = carry;
      int chosen = -1;
      for (int b = 0; b < kBins; ++b) {
        const T next = running + bins[b];
        if (next >= target) {
          chosen = b;
          break;
        }
        running = next;
      }
      s.chosen = chosen;
      Hist<T>::Broadcast(s) = running;  // the weight before the chosen bin
    }
    __syncthreads();
    const int chosen = s.chosen;
    const T running = Hist<T>::Broadcast(s);
    __syncthreads();  // the next pass rewrites the histograms and the broadcast
    if (chosen < 0) {
      if (shift == 32 - kDigitBits) return false;  // the first pass saw every eligible token
      *selected = prefix | ((uint32_t{1} << (shift + kDigitBits)) - 1);
      *before = carry;
      return true;
    }
    carry = running;
    prefix |= static_cast<uint32_t>(chosen) << shift;
    mask |= static_cast<uint32_t>(kBins - 1) << shift;
  }
  *selected = prefix;
  *before = carry;
  return true;
}

struct CountOne {
  __device__ __forceinline__ int32_t operator()(uint32_t) const { return 1; }
};

// One block per sampled job: the threshold, count and tail of candidate_filter.h. Passes over the
// slot's keys (each a read of the row's 8-byte keys, which a group of 64 rows keeps in L2): the
// maximum; 4 for top-k; the normaliser and 4 for top-p; one for min-p; the count and tail, so 7
// for top-p alone and 6 for top-k alone. A job with no rule enabled reads nothing. One block per
// row is the right shape for a batch (the rows fill the SMs); a single sampled row runs its
// passes on one SM, where the unfiltered sort used them all (measure before tuning that case:
// a row's bits cached in shared memory after the first pass would cut the later reads).
__global__ void __launch_bounds__(kThreads)
    FilterCandidatesKernel(const SamplingJob* __restrict__ jobs, int32_t group_begin, int64_t vocab,
                           const uint64_t* __restrict__ keys, int id_bits,
                           CandidateRow* __restrict__ rows) {
  __shared__ FilterShared s;
  const int32_t j = group_begin + static_cast<int32_t>(blockIdx.x);
  const SamplingJob job = jobs[j];
  if ((job.flags & (kJobScore | kJobGreedy)) != 0) return;
  const int32_t n = static_cast<int32_t>(vocab);
  const int32_t k = job.top_k;
  const bool use_top_k = k < n;
  const bool use_top_p = job.top_p < 1.0;
  const bool use_min_p = job.min_p > 0.0;
  if (!use_top_k && !use_top_p && !use_min_p) {  // the walk reads the whole row
    if (threadIdx.x == 0) {
      CandidateRow& out = rows[job.slot];
      out.tail = 0.0;
      out.count = n;
      out.threshold = UINT32_MAX;
    }
    return;
  }
  const uint64_t* row = keys + static_cast<int64_t>(job.slot) * vocab;

  uint32_t local_min = UINT32_MAX;
#pragma unroll 4
  for (int32_t i = threadIdx.x; i < n; i += kThreads) {
    local_min = min(local_min, KeyLogitBits(row[i], id_bits));
  }
  const uint32_t max_bits = BlockMin(local_min, s);  // the largest logit's bits
  const double inv_t = job.inv_temperature;
  const double top = __dmul_rn(static_cast<double>(FromDescendingBits(max_bits)), inv_t);
  const bool finite = isfinite(top);
  auto weight = [&](uint32_t d) { return SampledWeight(FromDescendingBits(d), inv_t, top); };

  // The top k are the tokens with bits < limit plus `ties` tokens with bits == limit.
  uint64_t limit = kNoLimit;
  int32_t ties = 0;
  uint32_t threshold = UINT32_MAX;
  double tie_weight = 0.0;  // the ties' share of the normaliser
  if (!finite) {
    threshold = max_bits;  // the walk returns the first sorted token: the maximum's ties suffice
  } else {
    if (use_top_k) {
      uint32_t kth = 0;
      int32_t above = 0;
      // Always found: the row has n >= k tokens.
      RadixSelect<int32_t>(row, n, id_bits, kNoLimit, k, CountOne(), s, &kth, &above);
      threshold = kth;
      limit = kth;
      ties = k - above;
      tie_weight = __dmul_rn(static_cast<double>(ties), weight(kth));
    }
    if (use_top_p) {
      double partial = 0.0;
#pragma unroll 4
      for (int32_t i = threadIdx.x; i < n; i += kThreads) {
        const uint32_t d = KeyLogitBits(row[i], id_bits);
        if (d < limit) partial = __dadd_rn(partial, weight(d));
      }
      const double total = __dadd_rn(BlockSum(partial, s), tie_weight);
      const double target = __dmul_rn(__dmul_rn(job.top_p, 1.0 + kTopPMargin), total);
      uint32_t bits = 0;
      double before = 0.0;
      // Not found: the mass reaches the target only with the ties at the k-th logit (or not at
      // all, for top_p within the margin of 1): nothing to tighten.
      if (RadixSelect<double>(row, n, id_bits, limit, target, weight, s, &bits, &before)) {
        threshold = min(threshold, bits);
      }
    }
    if (use_min_p) {
      const double floor = __dsub_rn(log(job.min_p), kMinPMargin);
      uint32_t local_max = 0;  // the maximum itself qualifies (exponent 0 >= log(min_p))
#pragma unroll 4
      for (int32_t i = threadIdx.x; i < n; i += kThreads) {
        const uint32_t d = KeyLogitBits(row[i], id_bits);
        if (SampledExponent(FromDescendingBits(d), inv_t, top) >= floor) {
          local_max = max(local_max, d);
        }
      }
      threshold = min(threshold, BlockMax(local_max, s));
    }
  }

  int32_t local_count = 0;
  double local_tail = 0.0;
#pragma unroll 4
  for (int32_t i = threadIdx.x; i < n; i += kThreads) {
    const uint32_t d = KeyLogitBits(row[i], id_bits);
    if (d <= threshold) {
      ++local_count;
    } else if (finite && d < limit) {
      local_tail = __dadd_rn(local_tail, weight(d));
    }
  }
  const int32_t count = BlockSum(local_count, s);
  double tail = BlockSum(local_tail, s);
  // Ties at the k-th logit that the top k holds but the candidates do not.
  if (finite && use_top_k && threshold < limit) tail = __dadd_rn(tail, tie_weight);
  if (threadIdx.x == 0) {
    CandidateRow& out = rows[job.slot];
    out.tail = tail;
    out.count = count;
    out.threshold = threshold;
  }
}

// One block per sampled job: its slot's candidate keys to compacted + offset.
__global__ void __launch_bounds__(kThreads)
    CompactCandidatesKernel(const SamplingJob* __restrict__ jobs, int32_t group_begin,
                            int64_t vocab, const uint64_t* __restrict__ keys, int id_bits,
                            CandidateRow* __restrict__ rows, uint64_t* __restrict__ compacted) {
  __shared__ int32_t written;
  const int32_t j = group_begin + static_cast<int32_t>(blockIdx.x);
  const SamplingJob& job = jobs[j];
  if ((job.flags & (kJobScore | kJobGreedy)) != 0) return;
  // Sampled jobs hold slots 0..sampled-1 of the group, so the slots before this one are all
  // sampled and their counts are final (written by the filter launch before this one).
  int64_t offset = 0;
  for (int32_t slot = 0; slot < job.slot; ++slot) offset += rows[slot].count;
  const int32_t n = static_cast<int32_t>(vocab);
  const uint32_t threshold = rows[job.slot].threshold;
  const int32_t count = rows[job.slot].count;
  if (threadIdx.x == 0) {
    rows[job.slot].offset = offset;
    written = 0;
  }
  __syncthreads();
  const uint64_t* row = keys + static_cast<int64_t>(job.slot) * vocab;
  uint64_t* out = compacted + offset;
  if (count == n) {  // every token: a plain copy
    for (int32_t i = threadIdx.x; i < n; i += kThreads) out[i] = row[i];
    return;
  }
  // Candidates in any order (the sort orders them; keys are distinct): one shared atomic per
  // warp and step.
  const unsigned lane = threadIdx.x % kWarp;
  for (int32_t base = 0; base < n; base += kThreads) {
    const int32_t i = base + static_cast<int32_t>(threadIdx.x);
    const uint64_t key = i < n ? row[i] : 0;
    const bool keep = i < n && KeyLogitBits(key, id_bits) <= threshold;
    const uint32_t ballot = __ballot_sync(0xffffffffu, keep);
    int32_t warp_first = 0;
    if (lane == 0 && ballot != 0) warp_first = atomicAdd(&written, __popc(ballot));
    warp_first = __shfl_sync(0xffffffffu, warp_first, 0);
    if (keep) out[warp_first + __popc(ballot & ((1u << lane) - 1))] = key;
  }
}

}  // namespace

absl::Status LaunchFilterCandidates(const SamplingJob* jobs, int32_t group_begin,
                                    int32_t group_count, int64_t vocab, const uint64_t* keys,
                                    CandidateRow* rows, cudaStream_t stream) {
  if (group_count == 0) return absl::OkStatus();
  FilterCandidatesKernel<<<static_cast<unsigned>(group_count), kThreads, 0, stream>>>(
      jobs, group_begin, vocab, keys, SortIdBits(vocab), rows);
  return LaunchStatus("FilterCandidatesKernel");
}

absl::Status LaunchCompactCandidates(const SamplingJob* jobs, int32_t group_begin,
                                     int32_t group_count, int64_t vocab, const uint64_t* keys,
                                     CandidateRow* rows, uint64_t* compacted, cudaStream_t stream) {
  if (group_count == 0) return absl::OkStatus();
  CompactCandidatesKernel<<<static_cast<unsigned>(group_count), kThreads, 0, stream>>>(
      jobs, group_begin, vocab, keys, SortIdBits(vocab), rows, compacted);
  return LaunchStatus("CompactCandidatesKernel");
}

}  // namespace xlstm::engine::cuda
