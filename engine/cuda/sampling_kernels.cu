// Kernels of the device-side token choice; contracts in sampling_kernels.h, rules in
// engine/sampling/token_choice.h. Every arithmetic step that the host reference rounds on its own
// is written with an explicit round-to-nearest intrinsic (__fmul_rn, __dsub_rn, ...): nvcc would
// otherwise be free to fuse a multiply and an add into one FMA, which rounds once instead of
// twice and could move a value across a tie or a cut that the host sees on the other side.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>

#include "engine/cuda/cuda_status.h"
#include "engine/cuda/sampling_kernels.h"

namespace xlstm::engine::cuda {
namespace {

constexpr int kWarp = 32;
// One block per job. 512 threads keep a whole H100 SM busy with one job while leaving room for
// several jobs' blocks per SM.
constexpr int kThreads = 512;
constexpr int kWarps = kThreads / kWarp;
// Items per thread of a walk chunk (blocked arrangement: thread t owns 8 consecutive sorted
// positions), so one chunk is 4096 sorted tokens: a block scan per 4096 tokens.
constexpr int kItems = 8;
constexpr int64_t kChunk = int64_t{kThreads} * kItems;

// -0.0f as +0.0f. The host compares floats, where -0 == +0, so the two are one key; the radix
// sort orders them by bit pattern, so they are made one bit pattern before it.
__device__ __forceinline__ float PlusZero(float v) { return v == 0.0f ? 0.0f : v; }

// The float order as an unsigned order, reversed: a larger logit gives a smaller number. Finite
// values and infinities map one to one (the inverse below restores the exact float).
__device__ __forceinline__ uint32_t DescendingBits(float v) {
  const uint32_t u = __float_as_uint(v);
  const uint32_t ascending = (u & 0x80000000u) != 0 ? ~u : (u | 0x80000000u);
  return ~ascending;
}
__device__ __forceinline__ float FromDescendingBits(uint32_t d) {
  const uint32_t ascending = ~d;
  return __uint_as_float((ascending & 0x80000000u) != 0 ? (ascending & 0x7fffffffu) : ~ascending);
}

// The SortKey of sampling_kernels.h for token `id` with adjusted logit `v` (already +0 for 0).
__device__ __forceinline__ uint64_t SortKey(uint64_t slot_bits, float v, int32_t id, int id_bits) {
  return slot_bits | (uint64_t{DescendingBits(v)} << id_bits) | static_cast<uint64_t>(id);
}

// Rule 1 for one token, in float, each step rounded as the host rounds it.
__device__ __forceinline__ float Adjust(float l, const DeviceAdjustment& a, float rp) {
  if ((a.flags & kAdjustRepeated) != 0 && rp != 1.0f) {
    l = l > 0.0f ? __fdiv_rn(l, rp) : __fmul_rn(l, rp);
  }
  l = __fsub_rn(l, a.subtract);
  if ((a.flags & kAdjustBanned) != 0) l = -INFINITY;
  return l;
}

// The order of rules 2-4: larger value first, then the smaller id.
__device__ __forceinline__ bool Before(float v, int32_t i, float bv, int32_t bi) {
  return v > bv || (v == bv && i < bi);
}

struct Best {
  float value;
  int32_t index;
};

// The first element of row[0, n) in the (value desc, id asc) order; with kAfter, the first one
// strictly after (pv, pi) in that order (the next top-n round: no sort, no extra memory). Every
// thread gets the result. `scratch` holds kWarps entries and is reusable on return. A thread with
// no element keeps (-inf, INT32_MAX), which any real element (even -inf) beats.
template <bool kAfter>
__device__ Best BlockArgmax(const float* row, int32_t n, float pv, int32_t pi, Best* scratch) {
  float bv = -INFINITY;
  int32_t bi = INT32_MAX;
#pragma unroll 4
  for (int32_t i = threadIdx.x; i < n; i += kThreads) {
    const float v = row[i];
    if (kAfter && !(v < pv || (v == pv && i > pi))) continue;
    if (Before(v, i, bv, bi)) {
      bv = v;
      bi = i;
    }
  }
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, offset);
    const int32_t oi = __shfl_xor_sync(0xffffffffu, bi, offset);
    if (Before(ov, oi, bv, bi)) {
      bv = ov;
      bi = oi;
    }
  }
  if (threadIdx.x % kWarp == 0) scratch[threadIdx.x / kWarp] = Best{bv, bi};
  __syncthreads();
  Best best = scratch[0];
  for (int w = 1; w < kWarps; ++w) {
    if (Before(scratch[w].value, scratch[w].index, best.value, best.index)) best = scratch[w];
  }
  __syncthreads();
  return best;
}

// An index INT32_MAX means no element qualified (only possible with NaN rows); report token 0
// then, as the host's loops do.
__device__ __forceinline__ int32_t IndexOrZero(int32_t index) {
  return index == INT32_MAX ? 0 : index;
}

__global__ void __launch_bounds__(kThreads)
    PrepareRowsKernel(const float* __restrict__ logits, int64_t vocab,
                      const SamplingJob* __restrict__ jobs,
                      const DeviceAdjustment* __restrict__ adjustments, int32_t group_begin,
                      uint64_t* __restrict__ keys, int id_bits,
                      SamplingResult* __restrict__ results) {
  __shared__ Best scratch[kWarps];
  const int32_t j = group_begin + static_cast<int32_t>(blockIdx.x);
  const SamplingJob& job = jobs[j];
  if ((job.flags & kJobScore) != 0) return;
  const int32_t n = static_cast<int32_t>(vocab);
  const float* raw = logits + job.row * vocab;
  const bool greedy = (job.flags & kJobGreedy) != 0;
  if (greedy && job.adjust_count == 0) {  // the raw row is the adjusted row: no copy
    const Best best = BlockArgmax<false>(raw, n, 0.0f, 0, scratch);
    if (threadIdx.x == 0) results[j].token = IndexOrZero(best.index);
    return;
  }
  uint64_t* slot = keys + job.slot * vocab;
  const DeviceAdjustment* list = adjustments + job.adjust_begin;
  // In both branches the copy's writes are visible to the whole block after the barrier; each
  // adjusted token is then rewritten by exactly one thread (tokens are distinct within a list).
  if (greedy) {  // floats in the first half of the slot (the slot is not sorted)
    float* key = reinterpret_cast<float*>(slot);
    for (int32_t i = threadIdx.x; i < n; i += kThreads) key[i] = raw[i];
    __syncthreads();
    for (int32_t a = threadIdx.x; a < job.adjust_count; a += kThreads) {
      const DeviceAdjustment adj = list[a];
      key[adj.token] = Adjust(raw[adj.token], adj, job.repetition_penalty);
    }
    __syncthreads();
    const Best best = BlockArgmax<false>(key, n, 0.0f, 0, scratch);
    if (threadIdx.x == 0) results[j].token = IndexOrZero(best.index);
    return;
  }
  const uint64_t slot_bits = static_cast<uint64_t>(job.slot) << (32 + id_bits);
  for (int32_t i = threadIdx.x; i < n; i += kThreads) {
    slot[i] = SortKey(slot_bits, PlusZero(raw[i]), i, id_bits);
  }
  __syncthreads();
  for (int32_t a = threadIdx.x; a < job.adjust_count; a += kThreads) {
    const DeviceAdjustment adj = list[a];
    const float v = PlusZero(Adjust(raw[adj.token], adj, job.repetition_penalty));
    slot[adj.token] = SortKey(slot_bits, v, adj.token, id_bits);
  }
}

struct MinInt {
  __device__ __forceinline__ int32_t operator()(int32_t a, int32_t b) const {
    return a < b ? a : b;
  }
};

using DoubleReduce = cub::BlockReduce<double, kThreads>;
using IntReduce = cub::BlockReduce<int32_t, kThreads>;
using DoubleScan = cub::BlockScan<double, kThreads>;

// Rule 3 on one sorted row. Three walks over the sorted prefix, each chunk of 4096 positions at
// a time, each stopping as soon as what it looks for is known:
//   1. total = sum of e_i over the k candidates (stops once e reaches 0: e is non-increasing
//      along the sorted row, so every later one is 0 too);
//   2. the cut: the smallest of (first i with cumulative p >= top_p) + 1, first i >= 1 with
//      p_i < min_p * p_0, first i >= 1 with p_i == 0. Because p is non-increasing, this equals
//      the host's top-p cut, then min-p cut, then dropping of trailing zeros, applied in turn;
//      the kept mass is the cumulative p at the last kept position;
//   3. the draw: the first kept position whose cumulative p exceeds u = uniform * mass (else the
//      last kept one).
// Walks 2 and 3 compute the cumulative sums with the same code on the same inputs, so they see
// bit-identical values; only their summation order differs from the host's sequential one.
__global__ void __launch_bounds__(kThreads)
    DrawSampledKernel(const SamplingJob* __restrict__ jobs, int32_t group_begin, int64_t vocab,
                      const uint64_t* __restrict__ sorted, int id_bits,
                      SamplingResult* __restrict__ results) {
  __shared__ union {
    DoubleReduce::TempStorage reduce;
    IntReduce::TempStorage reduce_int;
    DoubleScan::TempStorage scan;
  } temp;
  __shared__ double shared_double;
  __shared__ int32_t shared_int;

  const int32_t j = group_begin + static_cast<int32_t>(blockIdx.x);
  const SamplingJob job = jobs[j];
  if ((job.flags & (kJobScore | kJobGreedy)) != 0) return;
  const uint64_t* row = sorted + job.slot * vocab;
  const uint64_t id_mask = (uint64_t{1} << id_bits) - 1;
  auto key_at = [&](int64_t i) {
    return FromDescendingBits(static_cast<uint32_t>(row[i] >> id_bits));
  };
  auto id_at = [&](int64_t i) { return static_cast<int32_t>(row[i] & id_mask); };
  const int64_t k = job.top_k;
  const double inv_t = job.inv_temperature;
  const double top = __dmul_rn(static_cast<double>(key_at(0)), inv_t);
  if (!isfinite(top)) {  // every candidate masked (or an overflow): the host returns ids[0]
    if (threadIdx.x == 0) results[j].token = id_at(0);
    return;
  }
  // e_i = exp(l_i / T - l_0 / T) as the host computes it: l * (1 / T), minus the top, in double.
  auto weight = [&](int64_t i) {
    return exp(__dsub_rn(__dmul_rn(static_cast<double>(key_at(i)), inv_t), top));
  };
  const int64_t first = int64_t{threadIdx.x} * kItems;  // of this thread within a chunk

  // Walk 1: the normalizer.
  double partial = 0.0;
  for (int64_t base = 0; base < k; base += kChunk) {
#pragma unroll
    for (int t = 0; t < kItems; ++t) {
      const int64_t i = base + first + t;
      if (i < k) partial = __dadd_rn(partial, weight(i));
    }
    const int64_t last = (base + kChunk < k ? base + kChunk : k) - 1;
    if (weight(last) == 0.0) break;  // the same decision in every thread
  }
  const double block_total = DoubleReduce(temp.reduce).Sum(partial);
  if (threadIdx.x == 0) shared_double = block_total;
  __syncthreads();
  const double total = shared_double;
  __syncthreads();

  // p for the positions of one chunk (0 past k), and their inclusive block scan.
  // The smallest of every thread's `value`, on every thread.
  auto block_min = [&](int32_t value) {
    const int32_t reduced = IntReduce(temp.reduce_int).Reduce(value, MinInt());
    if (threadIdx.x == 0) shared_int = reduced;
    __syncthreads();
    const int32_t result = shared_int;
    __syncthreads();  // shared_int and temp are reused by the next collective
    return result;
  };

  auto chunk_probs = [&](int64_t base, double(&p)[kItems], double(&cum)[kItems],
                         double& chunk_sum) {
#pragma unroll
    for (int t = 0; t < kItems; ++t) {
      const int64_t i = base + first + t;
      p[t] = i < k ? __ddiv_rn(weight(i), total) : 0.0;
    }
    DoubleScan(temp.scan).InclusiveSum(p, cum, chunk_sum);
    __syncthreads();  // temp is reused by the next collective
  };

  // Walk 2: how many sorted candidates are kept, and their mass.
  const bool use_top_p = job.top_p < 1.0;
  const bool use_min_p = job.min_p > 0.0;
  const double threshold = __dmul_rn(job.min_p, __ddiv_rn(weight(0), total));
  int64_t keep = k;
  double mass = 0.0;
  double carry = 0.0;  // cumulative p before the chunk
  bool cut_found = false;
  for (int64_t base = 0; base < k; base += kChunk) {
    double p[kItems], cum[kItems], chunk_sum;
    chunk_probs(base, p, cum, chunk_sum);
    int32_t cut = INT32_MAX;
#pragma unroll
    for (int t = 0; t < kItems; ++t) {
      const int64_t i = base + first + t;
      if (i >= k) continue;
      const double c = __dadd_rn(carry, cum[t]);
      if (use_top_p && c >= job.top_p) cut = min(cut, static_cast<int32_t>(i + 1));
      // !(p >= threshold) as the host's `while (probs[n] >= threshold)` stops.
      if (i >= 1 && ((use_min_p && !(p[t] >= threshold)) || p[t] == 0.0)) {
        cut = min(cut, static_cast<int32_t>(i));
      }
    }
    cut = block_min(cut);
    if (cut != INT32_MAX) {  // uniform across the block
      keep = cut;
      // The mass is the cumulative p at keep - 1: in this chunk, or the carry when keep - 1 is
      // the last position of the previous chunk (cuts are never earlier than that).
      if (keep - 1 < base) {
        mass = carry;
      } else {
        const int64_t owner = keep - 1 - base;
        if (owner / kItems == threadIdx.x) shared_double = __dadd_rn(carry, cum[owner % kItems]);
        __syncthreads();
        mass = shared_double;
        __syncthreads();
      }
      cut_found = true;
      break;
    }
    carry = __dadd_rn(carry, chunk_sum);
  }
  if (!cut_found) mass = carry;

  // Walk 3: the draw.
  const double u = __dmul_rn(job.uniform, mass);
  int64_t chosen = keep - 1;  // when rounding leaves no cumulative above u
  carry = 0.0;
  for (int64_t base = 0; base < keep; base += kChunk) {
    double p[kItems], cum[kItems], chunk_sum;
    chunk_probs(base, p, cum, chunk_sum);
    int32_t pick = INT32_MAX;
#pragma unroll
    for (int t = 0; t < kItems; ++t) {
      const int64_t i = base + first + t;
      if (i < keep && u < __dadd_rn(carry, cum[t])) pick = min(pick, static_cast<int32_t>(i));
    }
    pick = block_min(pick);
    if (pick != INT32_MAX) {
      chosen = pick;
      break;
    }
    carry = __dadd_rn(carry, chunk_sum);
  }
  if (threadIdx.x == 0) results[j].token = id_at(chosen);
}

// Rule 4: log-sum-exp of the raw row (max, then the sum of exp(l - max) in double), the
// log-prob at the token or target, is_argmax, and the top alternatives.
__global__ void __launch_bounds__(kThreads)
    RawStatsKernel(const float* __restrict__ logits, int64_t vocab,
                   const SamplingJob* __restrict__ jobs, SamplingResult* __restrict__ results) {
  __shared__ Best scratch[kWarps];
  __shared__ DoubleReduce::TempStorage reduce;
  __shared__ double shared_sum;
  const int32_t j = static_cast<int32_t>(blockIdx.x);
  const SamplingJob& job = jobs[j];
  if ((job.flags & kJobStats) == 0) return;
  const int32_t n = static_cast<int32_t>(vocab);
  const float* raw = logits + job.row * vocab;
  // The first round of the top-n order is the argmax, whose value is the maximum.
  Best best = BlockArgmax<false>(raw, n, 0.0f, 0, scratch);
  const double max_logit = static_cast<double>(best.value);
  double lse = max_logit;  // the host returns a non-finite maximum as is
  if (isfinite(max_logit)) {
    double partial = 0.0;
    for (int32_t i = threadIdx.x; i < n; i += kThreads) {
      partial = __dadd_rn(partial, exp(__dsub_rn(static_cast<double>(raw[i]), max_logit)));
    }
    const double sum = DoubleReduce(reduce).Sum(partial);
    if (threadIdx.x == 0) shared_sum = sum;
    __syncthreads();
    lse = __dadd_rn(max_logit, log(shared_sum));
  }
  SamplingResult& result = results[j];
  if (threadIdx.x == 0) {
    // Generate jobs: the token chosen by an earlier kernel on this stream.
    const int32_t target = (job.flags & kJobScore) != 0 ? job.target : result.token;
    result.logprob = __dsub_rn(static_cast<double>(raw[target]), lse);
    result.is_argmax = IndexOrZero(best.index) == target ? 1 : 0;
  }
  for (int32_t r = 0; r < job.top_logprobs; ++r) {
    if (r > 0) best = BlockArgmax<true>(raw, n, best.value, best.index, scratch);
    if (threadIdx.x == 0) {
      const int32_t index = IndexOrZero(best.index);
      result.top_token[r] = index;
      result.top_logprob[r] = __dsub_rn(static_cast<double>(raw[index]), lse);
    }
  }
}

}  // namespace

absl::Status LaunchPrepareRows(const float* logits, int64_t vocab, const SamplingJob* jobs,
                               const DeviceAdjustment* adjustments, int32_t group_begin,
                               int32_t group_count, uint64_t* keys, SamplingResult* results,
                               cudaStream_t stream) {
  if (group_count == 0) return absl::OkStatus();
  PrepareRowsKernel<<<static_cast<unsigned>(group_count), kThreads, 0, stream>>>(
      logits, vocab, jobs, adjustments, group_begin, keys, SortIdBits(vocab), results);
  return LaunchStatus("PrepareRowsKernel");
}

namespace {

// The key bits a sort of `slots` rows looks at: id, logit, and as many slot bits as needed (so a
// single row sorts 32 + id_bits bits: 6 onesweep passes of 8 bits at vocab 50304).
int SortEndBit(int64_t vocab, int32_t slots) {
  int slot_bits = 0;
  while ((int64_t{1} << slot_bits) < slots) ++slot_bits;
  return 32 + SortIdBits(vocab) + slot_bits;
}

}  // namespace

absl::Status SortRowsTempBytes(int64_t vocab, int32_t slots, size_t* bytes) {
  // With a null temp pointer CUB only reports the size (nothing runs). The DoubleBuffer form
  // uses the two key buffers as its ping-pong storage, so the scratch is small.
  cub::DoubleBuffer<uint64_t> keys(nullptr, nullptr);
  *bytes = 0;
  XLSTM_CUDA_RETURN_IF_ERROR(
      cub::DeviceRadixSort::SortKeys(nullptr, *bytes, keys, int64_t{slots} * vocab, 0,
                                     SortEndBit(vocab, slots), cudaStream_t{nullptr}));
  return absl::OkStatus();
}

absl::Status LaunchSortRows(uint64_t* keys[2], int32_t slots, int64_t vocab, void* temp,
                            size_t temp_bytes, int* sorted, cudaStream_t stream) {
  *sorted = 0;
  if (slots == 0) return absl::OkStatus();
  size_t needed = 0;
  if (absl::Status s = SortRowsTempBytes(vocab, slots, &needed); !s.ok()) return s;
  if (needed > temp_bytes) {
    return absl::InternalError(
        "LaunchSortRows: the sort needs more scratch than was allocated for it");
  }
  cub::DoubleBuffer<uint64_t> buffers(keys[0], keys[1]);
  XLSTM_CUDA_RETURN_IF_ERROR(cub::DeviceRadixSort::SortKeys(
      temp, temp_bytes, buffers, int64_t{slots} * vocab, 0, SortEndBit(vocab, slots), stream));
  *sorted = buffers.selector;
  return LaunchStatus("cub::DeviceRadixSort::SortKeys");
}

absl::Status LaunchDrawSampled(const SamplingJob* jobs, int32_t group_begin, int32_t group_count,
                               int64_t vocab, const uint64_t* sorted, SamplingResult* results,
                               cudaStream_t stream) {
  if (group_count == 0) return absl::OkStatus();
  DrawSampledKernel<<<static_cast<unsigned>(group_count), kThreads, 0, stream>>>(
      jobs, group_begin, vocab, sorted, SortIdBits(vocab), results);
  return LaunchStatus("DrawSampledKernel");
}

absl::Status LaunchRawStats(const float* logits, int64_t vocab, const SamplingJob* jobs,
                            int32_t count, SamplingResult* results, cudaStream_t stream) {
  if (count == 0) return absl::OkStatus();
  RawStatsKernel<<<static_cast<unsigned>(count), kThreads, 0, stream>>>(logits, vocab, jobs,
                                                                        results);
  return LaunchStatus("RawStatsKernel");
}

}  // namespace xlstm::engine::cuda
