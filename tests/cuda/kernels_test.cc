// Every launcher of engine/cuda/kernels.h (and the Gemm wrapper of engine/cuda/gemm.h) against a
// plain C++ loop on random inputs with fixed seeds, over odd and real sizes.
//
// Tolerances. References are computed in double, so a check bounds the GPU's own fp32 error
// only. An fp32 kernel that computes the same formula in a different order (tree reductions,
// FMA contraction, CUDA's libm with <= 2 ulp) is off by a few units of 2^-24 ≈ 6e-8 per
// operation, times the magnitude of the terms that went into the value (cancellation makes the
// error large relative to the result but not relative to those terms). So each check allows
// 1e-5 × (sum of the magnitudes of the terms that produce the element): ~100 ulp, room for the
// sum of a few dozen rounding steps, yet 1e4 times smaller than any indexing or formula bug
// produces. Exact operations (gathers, copies, a single fp32 add, conversions) must be
// bit-identical. bf16 outputs are compared with the reference rounded to bf16 and may differ by
// one bf16 ulp (cuda_test_util.h, ActWithin).
#include "engine/cuda/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/cuda/gemm.h"
#include "engine/cuda/gemv_bf16.h"
#include "engine/weights/dtype.h"
#include "gtest/gtest.h"
#include "tests/cuda/cuda_test_util.h"

namespace xlstm::engine::cuda {
namespace {

using ::xlstm::testing::ActName;
using ::xlstm::testing::ActWithin;
using ::xlstm::testing::AllWithin;
using ::xlstm::testing::Bf16BitsToFloat;
using ::xlstm::testing::Bf16Ulp;
using ::xlstm::testing::BitIdentical;
using ::xlstm::testing::DecodeAct;
using ::xlstm::testing::DeviceArray;
using ::xlstm::testing::SentinelFloat;
using ::xlstm::testing::TestStream;
using ::xlstm::testing::ToBf16Bits;

// See the file comment: fp32 math in another summation order, relative to the terms' magnitude.
constexpr double kF32Tolerance = 1e-5;
// Elements written after every output, which no launcher may touch.
constexpr size_t kGuard = 67;
// Byte pattern of the guard of raw (ActType) outputs.
constexpr unsigned char kGuardByte = 0xa5;

const ActType kActTypes[] = {ActType::kF32, ActType::kBF16};

std::vector<float> RandomFloats(size_t n, uint32_t seed, double mean = 0.0, double stddev = 1.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> dist(mean, stddev);
  std::vector<float> out(n);
  for (float& v : out) v = static_cast<float>(dist(rng));
  return out;
}

std::vector<int32_t> RandomInts(size_t n, int32_t lo, int32_t hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(lo, hi);
  std::vector<int32_t> out(n);
  for (int32_t& v : out) v = dist(rng);
  return out;
}

// `values` as the bytes of an ActType array.
std::vector<unsigned char> EncodeAct(ActType type, const std::vector<float>& values) {
  std::vector<unsigned char> bytes(values.size() * ActSize(type));
  for (size_t i = 0; i < values.size(); ++i) {
    if (type == ActType::kF32) {
      std::memcpy(&bytes[i * 4], &values[i], 4);
    } else {
      const uint16_t bits = ToBf16Bits(values[i]);
      std::memcpy(&bytes[i * 2], &bits, 2);
    }
  }
  return bytes;
}

// The values an ActType array made by EncodeAct holds (bf16: rounded).
std::vector<float> ActValues(ActType type, const std::vector<float>& values) {
  std::vector<float> out(values);
  if (type == ActType::kBF16) {
    for (float& v : out) v = Bf16BitsToFloat(ToBf16Bits(v));
  }
  return out;
}

std::vector<double> ToDouble(absl::Span<const float> values) {
  return std::vector<double>(values.begin(), values.end());
}

// A float output of `n` elements followed by kGuard sentinels.
std::vector<float> WithFloatGuard(size_t n) {
  return std::vector<float>(n + kGuard, SentinelFloat());
}

::testing::AssertionResult FloatGuardIntact(const std::vector<float>& buffer, size_t n) {
  const std::vector<float> guard(kGuard, SentinelFloat());
  return BitIdentical(absl::MakeConstSpan(buffer).subspan(n), guard);
}

::testing::AssertionResult ByteGuardIntact(const std::vector<unsigned char>& buffer,
                                           size_t used_bytes) {
  for (size_t i = used_bytes; i < buffer.size(); ++i) {
    if (buffer[i] != kGuardByte) {
      return ::testing::AssertionFailure()
             << "byte " << i << " past the " << used_bytes << " output bytes was written";
    }
  }
  return ::testing::AssertionSuccess();
}

double CapValue(double x, double cap) { return cap > 0 ? cap * std::tanh(x / cap) : x; }
double LogSigmoid(double x) { return std::min(x, 0.0) - std::log1p(std::exp(-std::fabs(x))); }
double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

class KernelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    XLSTM_SKIP_WITHOUT_CUDA();
    XLSTM_ASSERT_OK(stream_.Create());
  }
  cudaStream_t stream() const { return stream_.get(); }

  TestStream stream_;
};

TEST_F(KernelsTest, StateLayoutAndScanPlanHaveTheirDocumentedShape) {
  const std::pair<int64_t, int64_t> shapes[] = {{32, 64},   {96, 192}, {256, 512}, {5, 7},
                                                {33, 65},   {16, 32},  {64, 32},   {128, 256},
                                                {512, 512}, {1, 1}};
  for (const auto& [dqk, dv] : shapes) {
    SCOPED_TRACE(absl::StrCat("dqk ", dqk, " dv ", dv));
    const StateLayout layout = StateLayout::For(3, 2, dqk, dv);
    EXPECT_EQ(layout.num_blocks, 3);
    EXPECT_EQ(layout.num_heads, 2);
    EXPECT_EQ(layout.dqk, dqk);
    EXPECT_EQ(layout.dv, dv);
    EXPECT_EQ(layout.head_stride % 32, 0);
    EXPECT_GE(layout.head_stride, dqk * dv + dqk + 1);
    EXPECT_EQ(layout.slot_stride, 3 * 2 * layout.head_stride);
    EXPECT_EQ(layout.n_offset(), dqk * dv);
    EXPECT_EQ(layout.m_offset(), dqk * dv + dqk);

    const ScanPlan plan = ScanPlan::For(dqk, dv);
    EXPECT_TRUE(plan.rows_per_thread == 1 || plan.rows_per_thread == 2 ||
                plan.rows_per_thread == 4 || plan.rows_per_thread == 8 ||
                plan.rows_per_thread == 16)
        << plan.rows_per_thread;
    EXPECT_EQ(plan.rows_per_split, 8 * plan.rows_per_thread);
    EXPECT_EQ(plan.splits, (dqk + plan.rows_per_split - 1) / plan.rows_per_split);
    // n is spread over the tiles exactly when they are full and cover every warp's rows; then
    // a thread takes two columns where the 64-column tiles are full too.
    EXPECT_EQ(plan.n_spread, dv % 32 == 0 && dv / 32 >= plan.rows_per_thread);
    if (plan.n_spread) {
      EXPECT_EQ(plan.columns_per_thread, dv % 64 == 0 ? 2 : 1);
      EXPECT_EQ(plan.column_tiles, dv / (32 * plan.columns_per_thread));
      EXPECT_EQ(plan.partial_width, dv + plan.column_tiles);
    } else {
      EXPECT_EQ(plan.columns_per_thread, 1);
      EXPECT_EQ(plan.column_tiles, (dv + 1 + 31) / 32);
      EXPECT_EQ(plan.partial_width, dv + 1);
    }
  }
  // The 7B shape: 8 tiles of 64 columns, n spread (two rows per warp and tile), qn in 8 columns.
  const ScanPlan plan_7b = ScanPlan::For(256, 512);
  EXPECT_TRUE(plan_7b.n_spread);
  EXPECT_EQ(plan_7b.columns_per_thread, 2);
  EXPECT_EQ(plan_7b.column_tiles, 8);
  EXPECT_EQ(plan_7b.partial_width, 512 + 8);
}

TEST_F(KernelsTest, EmbeddingGatherCopiesRowsOfF32AndBf16Tables) {
  constexpr int64_t kVocab = 50;
  uint32_t seed = 1;
  for (ActType type : kActTypes) {
    for (int64_t dim : {1, 7, 33, 257, 4096}) {
      for (int64_t num_tokens : {1, 3, 17, 64}) {
        SCOPED_TRACE(absl::StrCat(ActName(type), " dim ", dim, " tokens ", num_tokens));
        const std::vector<float> table = RandomFloats(kVocab * dim, ++seed);
        std::vector<int32_t> tokens = RandomInts(num_tokens, 0, kVocab - 1, ++seed);
        tokens.front() = kVocab - 1;  // the last row of the table
        if (num_tokens > 1) tokens.back() = 0;
        XLSTM_ASSERT_OK_AND_ASSIGN(auto d_table,
                                   DeviceArray<unsigned char>::FromHost(EncodeAct(type, table)));
        XLSTM_ASSERT_OK_AND_ASSIGN(auto d_tokens, DeviceArray<int32_t>::FromHost(tokens));
        XLSTM_ASSERT_OK_AND_ASSIGN(auto d_x,
                                   DeviceArray<float>::FromHost(WithFloatGuard(num_tokens * dim)));
        XLSTM_ASSERT_OK(LaunchEmbeddingGather(d_tokens.get(), num_tokens, d_table.get(), type, dim,
                                              d_x.get(), stream()));
        XLSTM_ASSERT_OK(stream_.Synchronize());
        XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> x, d_x.Download());

        const std::vector<float> values = ActValues(type, table);
        std::vector<float> want(num_tokens * dim);
        for (int64_t t = 0; t < num_tokens; ++t) {
          std::copy_n(&values[tokens[t] * dim], dim, &want[t * dim]);
        }
        EXPECT_TRUE(BitIdentical(absl::MakeConstSpan(x).first(want.size()), want));
        EXPECT_TRUE(FloatGuardIntact(x, want.size()));
      }
    }
  }
}

TEST_F(KernelsTest, RmsNormMatchesTheReferenceWithAndWithoutBias) {
  constexpr float kEps = 1e-6f;
  uint32_t seed = 100;
  for (ActType out_type : kActTypes) {
    for (bool with_bias : {false, true}) {
      for (int64_t dim : {1, 7, 33, 257, 4096}) {
        for (int64_t rows : {1, 3, 17, 64}) {
          SCOPED_TRACE(absl::StrCat(ActName(out_type), with_bias ? " bias" : " no bias", " dim ",
                                    dim, " rows ", rows));
          std::vector<float> x = RandomFloats(rows * dim, ++seed);
          // Rows of very different scales; at 1e-3, mean(x²) is comparable to eps, so eps must
          // be added inside the square root as the formula says. Row 1 is all zeros.
          for (int64_t r = 0; r < rows; ++r) {
            const float scale = std::pow(10.0f, static_cast<float>(r % 7 - 3));
            for (int64_t i = 0; i < dim; ++i) x[r * dim + i] *= r == 1 ? 0.0f : scale;
          }
          std::vector<float> weight = RandomFloats(dim, ++seed, 1.0, 0.2);
          const std::vector<float> bias = RandomFloats(dim, ++seed, 0.0, 0.1);
          XLSTM_ASSERT_OK_AND_ASSIGN(auto d_x, DeviceArray<float>::FromHost(x));
          XLSTM_ASSERT_OK_AND_ASSIGN(auto d_weight, DeviceArray<float>::FromHost(weight));
          XLSTM_ASSERT_OK_AND_ASSIGN(auto d_bias, DeviceArray<float>::FromHost(bias));
          const size_t used = rows * dim * ActSize(out_type);
          XLSTM_ASSERT_OK_AND_ASSIGN(
              auto d_out, DeviceArray<unsigned char>::FromHost(
                              std::vector<unsigned char>(used + kGuard * 4, kGuardByte)));
          XLSTM_ASSERT_OK(LaunchRmsNorm(d_x.get(), rows, dim, d_weight.get(),
                                        with_bias ? d_bias.get() : nullptr, kEps, d_out.get(),
                                        out_type, stream()));
          XLSTM_ASSERT_OK(stream_.Synchronize());
          XLSTM_ASSERT_OK_AND_ASSIGN(std::vector<unsigned char> out, d_out.Download());
          EXPECT_TRUE(ByteGuardIntact(out, used));
          out.resize(used);

          std::vector<double> want(rows * dim), tol(rows * dim);
          for (int64_t r = 0; r < rows; ++r) {
            double sum_sq = 0;
            for (int64_t i = 0; i < dim; ++i)
              sum_sq += static_cast<double>(x[r * dim + i]) * x[r * dim + i];
            const double inv_rms = 1.0 / std::sqrt(sum_sq / dim + kEps);
            for (int64_t i = 0; i < dim; ++i) {
              const double scaled = x[r * dim + i] * inv_rms * weight[i];
              const double b = with_bias ? bias[i] : 0.0;
              want[r * dim + i] = scaled + b;
              tol[r * dim + i] = kF32Tolerance * (std::fabs(scaled) + std::fabs(b));
            }
          }
          EXPECT_TRUE(ActWithin(out_type, DecodeAct(out_type, out), want, tol));
        }
      }
    }
  }
}

TEST_F(KernelsTest, AddBiasAddsToTheFirstColumnsOfStridedRows) {
  uint32_t seed = 200;
  for (int64_t rows : {1, 3, 17, 64}) {
    for (int64_t cols : {1, 7, 33, 257}) {
      for (int64_t pad : {0, 3}) {
        SCOPED_TRACE(absl::StrCat("rows ", rows, " cols ", cols, " stride ", cols + pad));
        const int64_t stride = cols + pad;
        const std::vector<float> y = RandomFloats(rows * stride, ++seed, 0.0, 3.0);
        const std::vector<float> bias = RandomFloats(cols, ++seed);
        XLSTM_ASSERT_OK_AND_ASSIGN(auto d_y, DeviceArray<float>::FromHost(y));
        XLSTM_ASSERT_OK_AND_ASSIGN(auto d_bias, DeviceArray<float>::FromHost(bias));
        XLSTM_ASSERT_OK(LaunchAddBias(d_y.get(), rows, cols, stride, d_bias.get(), stream()));
        XLSTM_ASSERT_OK(stream_.Synchronize());
        XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> got, d_y.Download());
        std::vector<float> want = y;
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t c = 0; c < cols; ++c) want[r * stride + c] = y[r * stride + c] + bias[c];
        }
        // One fp32 addition is exact-rounded on both sides; padding columns stay as they were.
        EXPECT_TRUE(BitIdentical(got, want));
      }
    }
  }
}

TEST_F(KernelsTest, SwiGluMatchesTheReferenceWithAndWithoutBiases) {
  uint32_t seed = 300;
  for (ActType out_type : kActTypes) {
    for (bool with_bias : {false, true}) {
      for (int64_t ffn : {1, 7, 33, 257, 704}) {
        for (int64_t tokens : {1, 3, 17, 64}) {
          SCOPED_TRACE(absl::StrCat(ActName(out_type), with_bias ? " bias" : " no bias", " ffn ",
                                    ffn, " tokens ", tokens));
          std::vector<float> up = RandomFloats(tokens * 2 * ffn, ++seed, 0.0, 2.0);
          up[0] = -30.0f;  // silu far into its tail
          if (up.size() > 2) up[2] = 25.0f;
          const std::vector<float> gate_bias = RandomFloats(ffn, ++seed, 0.0, 0.5);
          const std::vector<float> up_bias = RandomFloats(ffn, ++seed, 0.0, 0.5);
          XLSTM_ASSERT_OK_AND_ASSIGN(auto d_up, DeviceArray<float>::FromHost(up));
          XLSTM_ASSERT_OK_AND_ASSIGN(auto d_gate_bias, DeviceArray<float>::FromHost(gate_bias));
          XLSTM_ASSERT_OK_AND_ASSIGN(auto d_up_bias, DeviceArray<float>::FromHost(up_bias));
          const size_t used = tokens * ffn * ActSize(out_type);
          XLSTM_ASSERT_OK_AND_ASSIGN(
              auto d_out, DeviceArray<unsigned char>::FromHost(
                              std::vector<unsigned char>(used + kGuard * 4, kGuardByte)));
          XLSTM_ASSERT_OK(
              LaunchSwiGlu(d_up.get(), tokens, ffn, with_bias ? d_gate_bias.get() : nullptr,
                           with_bias ? d_up_bias.get() : nullptr, d_out.get(), out_type, stream()));
          XLSTM_ASSERT_OK(stream_.Synchronize());
          XLSTM_ASSERT_OK_AND_ASSIGN(std::vector<unsigned char> out, d_out.Download());
          EXPECT_TRUE(ByteGuardIntact(out, used));
          out.resize(used);

          std::vector<double> want(tokens * ffn), tol(tokens * ffn);
          for (int64_t t = 0; t < tokens; ++t) {
            for (int64_t c = 0; c < ffn; ++c) {
              const double g_in = up[t * 2 * ffn + c], u_in = up[t * 2 * ffn + ffn + c];
              const double bg = with_bias ? gate_bias[c] : 0.0, bu = with_bias ? up_bias[c] : 0.0;
              const double g = g_in + bg, u = u_in + bu;
              const double silu = g * Sigmoid(g);
              want[t * ffn + c] = silu * u;
              // silu' is bounded by 1.1, so rounding g moves silu by ~ulp(|g_in| + |bg|).
              tol[t * ffn + c] = kF32Tolerance *
                                 (std::fabs(g_in) + std::fabs(bg) + std::fabs(silu)) *
                                 (std::fabs(u_in) + std::fabs(bu));
            }
          }
          EXPECT_TRUE(ActWithin(out_type, DecodeAct(out_type, out), want, tol));
        }
      }
    }
  }
}

TEST_F(KernelsTest, GatherRowsCopiesTheNamedRows) {
  constexpr int64_t kSourceRows = 70;
  uint32_t seed = 400;
  for (int64_t dim : {1, 7, 33, 257}) {
    for (int64_t num_rows : {1, 3, 17, 64}) {
      SCOPED_TRACE(absl::StrCat("dim ", dim, " rows ", num_rows));
      const std::vector<float> x = RandomFloats(kSourceRows * dim, ++seed);
      std::vector<int32_t> rows = RandomInts(num_rows, 0, kSourceRows - 1, ++seed);
      rows.front() = kSourceRows - 1;
      if (num_rows > 2) rows[1] = rows[2];  // repeats are allowed
      XLSTM_ASSERT_OK_AND_ASSIGN(auto d_x, DeviceArray<float>::FromHost(x));
      XLSTM_ASSERT_OK_AND_ASSIGN(auto d_rows, DeviceArray<int32_t>::FromHost(rows));
      XLSTM_ASSERT_OK_AND_ASSIGN(auto d_out,
                                 DeviceArray<float>::FromHost(WithFloatGuard(num_rows * dim)));
      XLSTM_ASSERT_OK(
          LaunchGatherRows(d_x.get(), d_rows.get(), num_rows, dim, d_out.get(), stream()));
      XLSTM_ASSERT_OK(stream_.Synchronize());
      XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> out, d_out.Download());
      std::vector<float> want(num_rows * dim);
      for (int64_t i = 0; i < num_rows; ++i) std::copy_n(&x[rows[i] * dim], dim, &want[i * dim]);
      EXPECT_TRUE(BitIdentical(absl::MakeConstSpan(out).first(want.size()), want));
      EXPECT_TRUE(FloatGuardIntact(out, want.size()));
    }
  }
}

TEST_F(KernelsTest, SoftCapAppliesTanhCapAndNothingWithoutACap) {
  uint32_t seed = 500;
  for (float cap : {30.0f, 9.0f, 0.0f, -1.0f}) {
    for (int64_t count : {1, 7, 33, 257, 100003}) {
      SCOPED_TRACE(absl::StrCat("cap ", cap, " count ", count));
      std::vector<float> values = RandomFloats(count, ++seed, 0.0, 20.0);
      const float planted[] = {0.0f, 1e4f, -1e4f, 1e-20f, -3e-7f, 29.99f};
      for (size_t i = 0; i < std::size(planted) && i < values.size(); ++i) {
        values[values.size() - 1 - i] = planted[i];
      }
      std::vector<float> buffer = values;
      buffer.resize(count + kGuard, SentinelFloat());
      XLSTM_ASSERT_OK_AND_ASSIGN(auto d_values, DeviceArray<float>::FromHost(buffer));
      XLSTM_ASSERT_OK(LaunchSoftCap(d_values.get(), count, cap, stream()));
      XLSTM_ASSERT_OK(stream_.Synchronize());
      XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> out, d_values.Download());
      EXPECT_TRUE(FloatGuardIntact(out, count));
      const auto got = absl::MakeConstSpan(out).first(count);
      if (cap <= 0) {
        EXPECT_TRUE(BitIdentical(got, values));
        continue;
      }
      std::vector<double> want(count), tol(count);
      for (int64_t i = 0; i < count; ++i) {
        want[i] = CapValue(values[i], cap);
        tol[i] = kF32Tolerance * std::fabs(want[i]);  // 0 stays exactly 0
      }
      EXPECT_TRUE(AllWithin(ToDouble(got), want, tol));
    }
  }
}

TEST_F(KernelsTest, ArgmaxReturnsTheFirstIndexOfTheMaximum) {
  uint32_t seed = 600;
  for (int64_t vocab : {1, 7, 33, 257, 50304}) {
    for (int64_t rows : {1, 3, 64}) {
      SCOPED_TRACE(absl::StrCat("vocab ", vocab, " rows ", rows));
      std::vector<float> logits = RandomFloats(rows * vocab, ++seed, 0.0, 3.0);
      std::mt19937 rng(++seed);
      std::uniform_int_distribution<int64_t> position(0, vocab - 1);
      for (int64_t r = 0; r < rows; ++r) {
        float* row = &logits[r * vocab];
        switch (r % 5) {
          case 0:  // a three-way tie at random positions
            for (int i = 0; i < 3; ++i) row[position(rng)] = 50.0f;
            break;
          case 1:  // all equal: index 0
            std::fill(row, row + vocab, 1.5f);
            break;
          case 2:  // the maximum at the very end
            row[vocab - 1] = 60.0f;
            break;
          case 3:  // a tie between the first and the last index
            row[0] = 70.0f;
            row[vocab - 1] = 70.0f;
            break;
          case 4:  // all negative, large magnitude
            for (int64_t i = 0; i < vocab; ++i) row[i] = row[i] - 1e4f;
            row[position(rng)] = -9000.0f;
            break;
        }
      }
      XLSTM_ASSERT_OK_AND_ASSIGN(auto d_logits, DeviceArray<float>::FromHost(logits));
      std::vector<int32_t> ids(rows + kGuard, -7);
      XLSTM_ASSERT_OK_AND_ASSIGN(auto d_ids, DeviceArray<int32_t>::FromHost(ids));
      XLSTM_ASSERT_OK(LaunchArgmax(d_logits.get(), rows, vocab, d_ids.get(), stream()));
      XLSTM_ASSERT_OK(stream_.Synchronize());
      XLSTM_ASSERT_OK_AND_ASSIGN(ids, d_ids.Download());
      for (int64_t r = 0; r < rows; ++r) {
        const float* row = &logits[r * vocab];
        int32_t want = 0;
        for (int64_t i = 1; i < vocab; ++i) {
          if (row[i] > row[want]) want = static_cast<int32_t>(i);
        }
        EXPECT_EQ(ids[r], want) << "row " << r;
      }
      for (size_t i = rows; i < ids.size(); ++i) ASSERT_EQ(ids[i], -7) << "guard " << i;
    }
  }
}

TEST_F(KernelsTest, FillWritesExactlyCountValues) {
  for (float value : {0.0f, 3.25f, -1e30f}) {
    for (int64_t count : {1, 7, 33, 257, 100003}) {
      // Offset 1: dst is only 4-byte aligned (the contract names no alignment).
      for (int64_t offset : {0, 1}) {
        SCOPED_TRACE(absl::StrCat("value ", value, " count ", count, " offset ", offset));
        const int64_t start = kGuard + offset;
        std::vector<float> buffer(start + count + kGuard, SentinelFloat());
        XLSTM_ASSERT_OK_AND_ASSIGN(auto d_buffer, DeviceArray<float>::FromHost(buffer));
        XLSTM_ASSERT_OK(LaunchFill(d_buffer.get() + start, count, value, stream()));
        XLSTM_ASSERT_OK(stream_.Synchronize());
        XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> got, d_buffer.Download());
        std::fill(buffer.begin() + start, buffer.begin() + start + count, value);
        EXPECT_TRUE(BitIdentical(got, buffer));
      }
    }
  }
}

// Bit patterns whose bf16 rounding is easy to get wrong, then random patterns and normals.
std::vector<float> ConversionInputs(size_t count) {
  const uint32_t special_bits[] = {
      0x00000000, 0x80000000,  // ±0
      0x3f800000, 0xbf800000,  // ±1
      0x3f808000,              // tie, even upper half: rounds down to 0x3f80
      0x3f818000,              // tie, odd upper half: rounds up to 0x3f82
      0x3f817fff, 0x3f818001,  // just below / above a tie
      0xbf818000,              // negative tie
      0x3f80ffff,              // rounds up into the next bf16
      0x477fffff,              // rounds up to a power of two
      0x7f7fffff, 0xff7fffff,  // ±FLT_MAX: round to ±inf
      0x7f800000, 0xff800000,  // ±inf
      0x7fc00000, 0xffc00001,  // NaNs
      0x00800000, 0x80800000,  // ±smallest normal
      0x00000001, 0x807fffff,  // subnormals
      0x0001ffff,
  };
  std::vector<float> out;
  for (uint32_t bits : special_bits) {
    float v;
    std::memcpy(&v, &bits, 4);
    out.push_back(v);
  }
  std::mt19937 rng(700);
  std::uniform_int_distribution<uint32_t> any_bits;
  std::normal_distribution<float> normal(0.0f, 10.0f);
  while (out.size() < count) {
    if (out.size() % 2 == 0) {
      const uint32_t bits = any_bits(rng);
      float v;
      std::memcpy(&v, &bits, 4);
      out.push_back(v);
    } else {
      out.push_back(normal(rng));
    }
  }
  out.resize(count);
  return out;
}

TEST_F(KernelsTest, ConvertF32RoundsToNearestEvenBf16AndCopiesF32) {
  for (ActType type : kActTypes) {
    for (int64_t count : {1, 7, 33, 257, 100003}) {
      SCOPED_TRACE(absl::StrCat(ActName(type), " count ", count));
      const std::vector<float> src = ConversionInputs(count);
      XLSTM_ASSERT_OK_AND_ASSIGN(auto d_src, DeviceArray<float>::FromHost(src));
      const size_t used = count * ActSize(type);
      XLSTM_ASSERT_OK_AND_ASSIGN(auto d_dst,
                                 DeviceArray<unsigned char>::FromHost(
                                     std::vector<unsigned char>(used + kGuard * 4, kGuardByte)));
      XLSTM_ASSERT_OK(LaunchConvertF32(d_src.get(), count, d_dst.get(), type, stream()));
      XLSTM_ASSERT_OK(stream_.Synchronize());
      XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<unsigned char> dst, d_dst.Download());
      EXPECT_TRUE(ByteGuardIntact(dst, used));
      int64_t mismatches = 0;
      for (int64_t i = 0; i < count; ++i) {
        uint32_t in_bits;
        std::memcpy(&in_bits, &src[i], 4);
        bool ok;
        std::string got_text;
        if (type == ActType::kF32) {
          float got;
          std::memcpy(&got, &dst[i * 4], 4);
          uint32_t got_bits;
          std::memcpy(&got_bits, &got, 4);
          ok = std::isnan(src[i]) ? std::isnan(got) : got_bits == in_bits;
          got_text = absl::StrCat(absl::Hex(got_bits));
        } else {
          uint16_t got;
          std::memcpy(&got, &dst[i * 2], 2);
          const uint16_t want = engine::FloatToBF16(src[i]);
          if (std::isnan(src[i])) {
            ok = std::isnan(Bf16BitsToFloat(got));  // any NaN payload
          } else if (std::fpclassify(src[i]) == FP_SUBNORMAL) {
            // A kernel built with flush-to-zero may flush subnormal inputs to a signed zero.
            ok = got == want || got == (std::signbit(src[i]) ? 0x8000 : 0x0000);
          } else {
            ok = got == want;
          }
          got_text = absl::StrCat(absl::Hex(got), " want ", absl::Hex(want));
        }
        if (!ok && ++mismatches <= 10) {
          ADD_FAILURE() << "element " << i << " input bits " << absl::StrCat(absl::Hex(in_bits))
                        << ": got " << got_text;
        }
      }
      EXPECT_EQ(mismatches, 0);
    }
  }
}

// Runs LaunchRandomNormal into a fresh array with a guard and returns the values (as floats).
void GenerateNormal(cudaStream_t stream, ActType type, int64_t count, uint64_t seed, float mean,
                    float stddev, std::vector<float>* values) {
  const size_t used = count * ActSize(type);
  XLSTM_ASSERT_OK_AND_ASSIGN(auto d_values,
                             DeviceArray<unsigned char>::FromHost(
                                 std::vector<unsigned char>(used + kGuard * 4, kGuardByte)));
  XLSTM_ASSERT_OK(LaunchRandomNormal(d_values.get(), type, count, seed, mean, stddev, stream));
  XLSTM_ASSERT_OK(::xlstm::testing::SyncDevice());
  XLSTM_ASSERT_OK_AND_ASSIGN(std::vector<unsigned char> bytes, d_values.Download());
  ASSERT_TRUE(ByteGuardIntact(bytes, used));
  bytes.resize(used);
  const std::vector<double> decoded = DecodeAct(type, bytes);
  values->assign(decoded.begin(), decoded.end());
}

TEST_F(KernelsTest, RandomNormalHasTheRequestedMomentsAndIsDeterministicInSeedAndIndex) {
  constexpr int64_t kCount = 1 << 20;
  constexpr float kMean = 0.5f, kStddev = 2.0f;
  std::vector<float> a, again, other;
  ASSERT_NO_FATAL_FAILURE(GenerateNormal(stream(), ActType::kF32, kCount, 42, kMean, kStddev, &a));
  ASSERT_NO_FATAL_FAILURE(
      GenerateNormal(stream(), ActType::kF32, kCount, 42, kMean, kStddev, &again));
  ASSERT_NO_FATAL_FAILURE(
      GenerateNormal(stream(), ActType::kF32, kCount, 43, kMean, kStddev, &other));

  // Roughly N(mean, stddev²): in units of stddev the standard errors over 2^20 samples are
  // ~1e-3 (mean, lag-1 correlation), ~7e-4 (stddev) and ~5e-4 (fractions), so these bounds
  // catch a wrong distribution, not sampling noise.
  double sum = 0, sum_sq = 0, within1 = 0, within2 = 0, lag1 = 0;
  for (int64_t i = 0; i < kCount; ++i) {
    ASSERT_TRUE(std::isfinite(a[i])) << i;
    const double z = (a[i] - kMean) / kStddev;
    sum += z;
    sum_sq += z * z;
    within1 += std::fabs(z) < 1.0;
    within2 += std::fabs(z) < 2.0;
    if (i > 0) lag1 += z * (a[i - 1] - kMean) / kStddev;
  }
  const double z_mean = sum / kCount, z_std = std::sqrt(sum_sq / kCount - z_mean * z_mean);
  EXPECT_NEAR(z_mean, 0.0, 0.01);
  EXPECT_NEAR(z_std, 1.0, 0.02);
  EXPECT_NEAR(within1 / kCount, 0.682689, 0.01);
  EXPECT_NEAR(within2 / kCount, 0.954500, 0.01);
  EXPECT_NEAR(lag1 / kCount, 0.0, 0.01) << "neighbouring values are correlated";

  // Deterministic for a seed, different (and uncorrelated) for another.
  EXPECT_TRUE(BitIdentical(a, again));
  int64_t equal = 0;
  double cross = 0;
  for (int64_t i = 0; i < kCount; ++i) {
    equal += a[i] == other[i];
    cross += (a[i] - kMean) * (other[i] - kMean) / (kStddev * kStddev);
  }
  EXPECT_LT(equal, kCount / 100) << "seeds 42 and 43 give the same values";
  EXPECT_NEAR(cross / kCount, 0.0, 0.01) << "seeds 42 and 43 give correlated values";

  // values[i] depends on (seed, i) only: a shorter fill is a prefix of the long one, and odd
  // counts write exactly `count` values.
  for (int64_t count : {1, 7, 33, 1000}) {
    SCOPED_TRACE(absl::StrCat("count ", count));
    std::vector<float> prefix;
    ASSERT_NO_FATAL_FAILURE(
        GenerateNormal(stream(), ActType::kF32, count, 42, kMean, kStddev, &prefix));
    EXPECT_TRUE(BitIdentical(prefix, absl::MakeConstSpan(a).first(count)));
  }

  // bf16: the same values, rounded (allowing one bf16 ulp).
  for (int64_t count : {7, 4096}) {
    SCOPED_TRACE(absl::StrCat("bf16 count ", count));
    std::vector<float> bf16;
    ASSERT_NO_FATAL_FAILURE(
        GenerateNormal(stream(), ActType::kBF16, count, 42, kMean, kStddev, &bf16));
    std::vector<double> want(count), tol(count);
    for (int64_t i = 0; i < count; ++i) {
      want[i] = a[i];
      tol[i] = Bf16Ulp(std::max(std::fabs(a[i]), std::fabs(bf16[i])));
    }
    EXPECT_TRUE(AllWithin(ToDouble(bf16), want, tol));
  }
}

// ---- Gemm (engine/cuda/gemm.h) ----

TEST_F(KernelsTest, GemmLinearComputesXTimesWTransposed) {
  XLSTM_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Gemm> gemm, Gemm::Create(stream()));
  struct Shape {
    int64_t rows, in, out;
  };
  const Shape shapes[] = {{1, 7, 33}, {7, 257, 1},    {33, 64, 257},
                          {3, 33, 7}, {17, 128, 704}, {64, 1024, 96}};
  uint32_t seed = 800;
  for (ActType type : kActTypes) {
    for (bool accumulate : {false, true}) {
      for (const Shape& s : shapes) {
        SCOPED_TRACE(absl::StrCat(ActName(type), accumulate ? " accumulate" : "", " rows ", s.rows,
                                  " in ", s.in, " out ", s.out));
        const int64_t y_stride = s.out + 3;
        const std::vector<float> x = RandomFloats(s.rows * s.in, ++seed);
        const std::vector<float> w =
            RandomFloats(s.out * s.in, ++seed, 0.0, 1.0 / std::sqrt(static_cast<double>(s.in)));
        std::vector<float> y0 = RandomFloats(s.rows * y_stride, ++seed);
        for (int64_t r = 0; r < s.rows; ++r) {
          for (int64_t c = s.out; c < y_stride; ++c) y0[r * y_stride + c] = SentinelFloat();
        }
        XLSTM_ASSERT_OK_AND_ASSIGN(auto d_x,
                                   DeviceArray<unsigned char>::FromHost(EncodeAct(type, x)));
        XLSTM_ASSERT_OK_AND_ASSIGN(auto d_w,
                                   DeviceArray<unsigned char>::FromHost(EncodeAct(type, w)));
        XLSTM_ASSERT_OK_AND_ASSIGN(auto d_y, DeviceArray<float>::FromHost(y0));
        const DeviceMatrix matrix{d_w.get(), s.out, s.in, type};
        XLSTM_ASSERT_OK(gemm->Linear(matrix, d_x.get(), s.rows, d_y.get(), y_stride, accumulate));
        XLSTM_ASSERT_OK(stream_.Synchronize());
        XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> y, d_y.Download());

        const std::vector<float> xv = ActValues(type, x), wv = ActValues(type, w);
        std::vector<double> got, want, tol;
        for (int64_t r = 0; r < s.rows; ++r) {
          for (int64_t o = 0; o < s.out; ++o) {
            double acc = accumulate ? y0[r * y_stride + o] : 0.0;
            double magnitude = std::fabs(acc);
            for (int64_t k = 0; k < s.in; ++k) {
              const double p = static_cast<double>(xv[r * s.in + k]) * wv[o * s.in + k];
              acc += p;
              magnitude += std::fabs(p);
            }
            got.push_back(y[r * y_stride + o]);
            want.push_back(acc);
            // bf16 products are exact in fp32, but tensor cores may align and truncate partial
            // sums inside an MMA (not IEEE round-to-nearest), so allow 10x the fp32 bound.
            tol.push_back((type == ActType::kF32 ? 1.0 : 10.0) * kF32Tolerance * magnitude);
          }
          for (int64_t c = s.out; c < y_stride; ++c) {
            ASSERT_TRUE(BitIdentical(absl::MakeConstSpan(&y[r * y_stride + c], 1),
                                     absl::MakeConstSpan(&y0[r * y_stride + c], 1)))
                << "row " << r << " column " << c << " beyond out_features was written";
          }
        }
        EXPECT_TRUE(AllWithin(got, want, tol));
      }
    }
  }
}

// LaunchGemvBf16 (gemv_bf16.h) for 1..8 rows: checked against the double-precision product of
// the bf16 values (fp32 FMA chains: within 1e-5 of the sum of |terms|), columns past out
// untouched, and batch invariance: a row's result is the same bits alone as in a call of several
// rows. Then Gemm with EnableSmallBatchGemv: a one-row bf16 product is this kernel's, bit for bit.
TEST_F(KernelsTest, SmallBatchGemvMatchesTheReferenceAndIsBatchInvariant) {
  struct Shape {
    int64_t rows, in, out;
  };
  const Shape shapes[] = {{1, 8, 1},     {1, 4096, 33},  {3, 1032, 257},
                          {8, 4096, 96}, {5, 10944, 17}, {8, 72, 700}};
  const ActType type = ActType::kBF16;
  uint32_t seed = 1900;
  EXPECT_FALSE(GemvBf16Supports(this, this, 1, 7)) << "inputs not a multiple of 8";
  EXPECT_FALSE(GemvBf16Supports(this, this, kGemvMaxRows + 1, 8)) << "too many rows";
  for (bool accumulate : {false, true}) {
    for (const Shape& s : shapes) {
      SCOPED_TRACE(absl::StrCat(accumulate ? "accumulate " : "", "rows ", s.rows, " in ", s.in,
                                " out ", s.out));
      const int64_t y_stride = s.out + 3;
      const std::vector<float> x = RandomFloats(s.rows * s.in, ++seed);
      const std::vector<float> w =
          RandomFloats(s.out * s.in, ++seed, 0.0, 1.0 / std::sqrt(static_cast<double>(s.in)));
      std::vector<float> y0 = RandomFloats(s.rows * y_stride, ++seed);
      for (int64_t r = 0; r < s.rows; ++r) {
        for (int64_t c = s.out; c < y_stride; ++c) y0[r * y_stride + c] = SentinelFloat();
      }
      XLSTM_ASSERT_OK_AND_ASSIGN(auto d_x,
                                 DeviceArray<unsigned char>::FromHost(EncodeAct(type, x)));
      XLSTM_ASSERT_OK_AND_ASSIGN(auto d_w,
                                 DeviceArray<unsigned char>::FromHost(EncodeAct(type, w)));
      XLSTM_ASSERT_OK_AND_ASSIGN(auto d_y, DeviceArray<float>::FromHost(y0));
      ASSERT_TRUE(GemvBf16Supports(d_w.get(), d_x.get(), s.rows, s.in));
      XLSTM_ASSERT_OK(LaunchGemvBf16(d_w.get(), s.out, s.in, d_x.get(), s.rows, d_y.get(), y_stride,
                                     accumulate, stream()));
      XLSTM_ASSERT_OK(stream_.Synchronize());
      XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> y, d_y.Download());

      const std::vector<float> xv = ActValues(type, x), wv = ActValues(type, w);
      std::vector<double> got, want, tol;
      for (int64_t r = 0; r < s.rows; ++r) {
        for (int64_t o = 0; o < s.out; ++o) {
          double acc = accumulate ? y0[r * y_stride + o] : 0.0;
          double magnitude = std::fabs(acc);
          for (int64_t k = 0; k < s.in; ++k) {
            const double p = static_cast<double>(xv[r * s.in + k]) * wv[o * s.in + k];
            acc += p;
            magnitude += std::fabs(p);
          }
          got.push_back(y[r * y_stride + o]);
          want.push_back(acc);
          tol.push_back(kF32Tolerance * magnitude);
        }
        for (int64_t c = s.out; c < y_stride; ++c) {
          ASSERT_TRUE(BitIdentical(absl::MakeConstSpan(&y[r * y_stride + c], 1),
                                   absl::MakeConstSpan(&y0[r * y_stride + c], 1)))
              << "row " << r << " column " << c << " beyond out was written";
        }
      }
      EXPECT_TRUE(AllWithin(got, want, tol));
      if (accumulate) continue;

      // Each row alone (x moved to its row: still 16-byte aligned), by the kernel and through
      // Gemm, which routes one-row bf16 products to it.
      XLSTM_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Gemm> gemm, Gemm::Create(stream()));
      gemm->EnableSmallBatchGemv();
      const DeviceMatrix matrix{d_w.get(), s.out, s.in, type};
      for (int64_t r = 0; r < s.rows; ++r) {
        XLSTM_ASSERT_OK_AND_ASSIGN(auto d_one, DeviceArray<float>::Allocate(s.out));
        XLSTM_ASSERT_OK_AND_ASSIGN(auto d_routed, DeviceArray<float>::Allocate(s.out));
        const unsigned char* x_row = d_x.get() + r * s.in * 2;
        XLSTM_ASSERT_OK(LaunchGemvBf16(d_w.get(), s.out, s.in, x_row, 1, d_one.get(), s.out,
                                       /*accumulate=*/false, stream()));
        XLSTM_ASSERT_OK(gemm->Linear(matrix, x_row, 1, d_routed.get(), s.out, false));
        XLSTM_ASSERT_OK(stream_.Synchronize());
        XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> one, d_one.Download());
        XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> routed, d_routed.Download());
        EXPECT_TRUE(BitIdentical(one, absl::MakeConstSpan(y).subspan(r * y_stride, s.out)))
            << "row " << r << " alone vs in a call of " << s.rows << " rows";
        EXPECT_TRUE(BitIdentical(routed, one)) << "row " << r << " through Gemm::Linear";
      }
    }
  }
}

// ---- The mLSTM cell: MlstmGates + MlstmScan + HeadNormGate ----

struct CellCase {
  std::string name;
  int64_t dqk, dv, num_heads;
  std::vector<int32_t> slots;   // per row; distinct, non-contiguous, not sorted
  std::vector<int32_t> counts;  // tokens per row
  float gate_soft_cap;          // <= 0: no cap
  ActType out_type;
  bool norm_bias;
};

constexpr int32_t kCellSlots = 7;
constexpr int64_t kCellBlocks = 3;
constexpr int64_t kCellBlock = 1;  // the block the step runs; blocks 0 and 2 must stay untouched
// Tokens already folded into each slot's state before the step (0: fresh, all-zero state).
constexpr int kWarmupTokens[kCellSlots] = {0, 3, 20, 7, 0, 11, 1};
constexpr float kCellEps = 1e-6f, kCellNormEps = 1e-6f;

std::vector<CellCase> CellCases() {
  struct Shape {
    int64_t dqk, dv, heads;
  };
  // Plans: (32, 64) 4 rows per thread; (96, 192) 16; (256, 512) 16 with two splits, two
  // columns per thread and n spread over the tiles (the 7B head); (5, 7) 1; (33, 65) 8 with a
  // column tile holding only n; (16, 32) 2 (the softcaps fixture's heads); (130, 40) two splits,
  // the second holding 2 of its 128 rows. n spread, two columns per thread: (40, 256) 8 rows per
  // thread, 3 warps past dqk; (17, 128) 4 rows per thread, odd dqk (k and q staged without
  // float4 loads); (8, 256) 1 row per thread, so tile 0 has one n row and the others none. n
  // spread, one column per thread: (16, 96) 2 rows per thread on 3 tiles, the last without n.
  const Shape shapes[] = {{32, 64, 2},  {96, 192, 2}, {256, 512, 2}, {5, 7, 3},
                          {33, 65, 3},  {16, 32, 4},  {130, 40, 2},  {40, 256, 2},
                          {17, 128, 3}, {8, 256, 2},  {16, 96, 2}};
  std::vector<CellCase> cases;
  for (const Shape& s : shapes) {
    const std::string name = absl::StrCat("dqk", s.dqk, "_dv", s.dv);
    // Rows of 1, 3, 17 and 64 tokens (prefill chunks next to a decode row).
    cases.push_back({name + "_mixed_rows",
                     s.dqk,
                     s.dv,
                     s.heads,
                     {4, 0, 6, 2},
                     {1, 3, 17, 64},
                     15.0f,
                     ActType::kF32,
                     true});
    // Decode rows only, no gate cap, bf16 output.
    cases.push_back({name + "_decode_rows",
                     s.dqk,
                     s.dv,
                     s.heads,
                     {5, 1, 3, 6},
                     {1, 1, 1, 1},
                     0.0f,
                     ActType::kBF16,
                     false});
  }
  // A strong cap (most gate pre-activations saturate) on one row longer than a chunk.
  cases.push_back({"dqk32_dv64_one_row_cap6", 32, 64, 2, {3}, {40}, 6.0f, ActType::kBF16, true});
  return cases;
}

int64_t HeadOffset(const StateLayout& layout, int64_t slot, int64_t block, int64_t head) {
  // (slot, block, head) in that order of nesting, as StateLayout's comment lists them.
  return slot * layout.slot_stride + (block * layout.num_heads + head) * layout.head_stride;
}

struct GateValues {
  double f_act, i_act, m;
};

// docs §4.2, scalar part, from raw pre-activations (bias included, before the cap).
GateValues ReferenceGates(double i_raw, double f_raw, double cap, double m_old) {
  const double i_tilde = CapValue(i_raw, cap), f_tilde = CapValue(f_raw, cap);
  const double log_f = LogSigmoid(f_tilde);
  const double m_new = std::max(log_f + m_old, i_tilde);
  return {std::exp(log_f + m_old - m_new), std::exp(i_tilde - m_new), m_new};
}

// One head's C [dqk, dv], n [dqk], m in double, with E / En: the running bound (in units of
// the rounding error of one operation) on how far an fp32 recurrence can drift from it:
// E_t = f E_{t-1} + |f C_{t-1}| + |i k vᵀ| (the step's own rounding plus the forgotten earlier
// error).
struct HeadState {
  std::vector<double> C, E, n, En;
  double m = 0;

  HeadState(int64_t dqk, int64_t dv, const float* stored)
      : C(dqk * dv), E(dqk * dv, 0.0), n(dqk), En(dqk, 0.0) {
    for (int64_t i = 0; i < dqk * dv; ++i) C[i] = stored[i];
    for (int64_t a = 0; a < dqk; ++a) n[a] = stored[dqk * dv + a];
    m = stored[dqk * dv + dqk];
  }

  void Update(double f, double i, const float* k, const float* v, int64_t dqk, int64_t dv) {
    for (int64_t a = 0; a < dqk; ++a) {
      const double ik = i * k[a];
      for (int64_t b = 0; b < dv; ++b) {
        const int64_t idx = a * dv + b;
        const double fc = f * C[idx], term = ik * v[b];
        E[idx] = f * E[idx] + std::fabs(fc) + std::fabs(term);
        C[idx] = fc + term;
      }
      const double fn = f * n[a];
      En[a] = f * En[a] + std::fabs(fn) + std::fabs(ik);
      n[a] = fn + ik;
    }
  }

  // num[b] = (q/sqrt(dqk))ᵀ C and, at index dv, qn = (q/sqrt(dqk))·n; `magnitude` gets the
  // matching Σ |q̂_a| (E + |C|): the scale of the fp32 error of each value.
  void ReadOut(const float* q, int64_t dqk, int64_t dv, std::vector<double>* num,
               std::vector<double>* magnitude) const {
    num->assign(dv + 1, 0.0);
    magnitude->assign(dv + 1, 0.0);
    const double scale = 1.0 / std::sqrt(static_cast<double>(dqk));
    for (int64_t a = 0; a < dqk; ++a) {
      const double qa = q[a] * scale;
      for (int64_t b = 0; b < dv; ++b) {
        (*num)[b] += qa * C[a * dv + b];
        (*magnitude)[b] += std::fabs(qa) * (E[a * dv + b] + std::fabs(C[a * dv + b]));
      }
      (*num)[dv] += qa * n[a];
      (*magnitude)[dv] += std::fabs(qa) * (En[a] + std::fabs(n[a]));
    }
  }
};

// The per-head output for one token from its read-out: h = num / (max(|qn|, exp(-m)) + eps),
// LayerNorm over dv, * weight (+ bias), * sigmoid(o). Appends reference values and tolerances
// (coefficient × the error scale: the read-out magnitudes relative to the normalized spread,
// plus the output's own terms).
void ReferenceHeadOutput(const std::vector<double>& num, const std::vector<double>& magnitude,
                         double m, const float* o, const float* weight, const float* bias,
                         int64_t dv, double coefficient, std::vector<double>* want,
                         std::vector<double>* tol) {
  const double den = std::max(std::fabs(num[dv]), std::exp(-m)) + kCellEps;
  std::vector<double> h(dv), h_mag(dv);
  double mean = 0, max_mag = 0;
  for (int64_t d = 0; d < dv; ++d) {
    h[d] = num[d] / den;
    h_mag[d] = magnitude[d] / den;
    mean += h[d];
    max_mag = std::max(max_mag, h_mag[d]);
  }
  mean /= dv;
  double var = 0;
  for (int64_t d = 0; d < dv; ++d) var += (h[d] - mean) * (h[d] - mean);
  var /= dv;
  const double stddev = std::sqrt(var + kCellNormEps);
  for (int64_t d = 0; d < dv; ++d) {
    const double z = (h[d] - mean) / stddev;
    const double b = bias != nullptr ? bias[d] : 0.0;
    const double gate = Sigmoid(o[d]);
    want->push_back(gate * (z * weight[d] + b));
    // Error of z: from h_d and the mean (read-out errors over the spread), and from the
    // variance (relative error ~ max|h|² / var when the mean is large against the spread).
    const double z_error = std::fabs(z) * (1.0 + max_mag * max_mag / (var + kCellNormEps)) +
                           (h_mag[d] + max_mag) / stddev;
    tol->push_back(coefficient * gate * (std::fabs(weight[d]) * z_error + std::fabs(b)) + 1e-30);
  }
}

class MlstmCellTest : public ::testing::TestWithParam<CellCase> {
 protected:
  void SetUp() override {
    XLSTM_SKIP_WITHOUT_CUDA();
    XLSTM_ASSERT_OK(stream_.Create());
  }
  TestStream stream_;
};

TEST_P(MlstmCellTest, GatesScanAndHeadNormMatchTheStepRecurrence) {
  const CellCase& c = GetParam();
  const int64_t NH = c.num_heads, DQK = c.dqk, DV = c.dv, QK = NH * DQK, V = NH * DV;
  // proj rows laid out as the fused in_proj output [q | k | v | o | i | f], plus spare columns
  // so that the row stride is not the sum of the parts: 4 for even dqk (the stride stays a
  // multiple of 4 where the parts are, so k and q are staged as float4), 5 for odd.
  const int64_t q_col = 0, k_col = QK, v_col = 2 * QK, o_col = 2 * QK + V, i_col = 2 * QK + 2 * V,
                f_col = i_col + NH, proj_stride = f_col + NH + 4 + DQK % 2;
  const int32_t num_rows = static_cast<int32_t>(c.slots.size());
  std::vector<int32_t> begins(num_rows);
  int64_t T = 0;
  int32_t max_count = 0;
  for (int32_t r = 0; r < num_rows; ++r) {
    begins[r] = static_cast<int32_t>(T);
    T += c.counts[r];
    max_count = std::max(max_count, c.counts[r]);
  }
  const StateLayout layout = StateLayout::For(kCellBlocks, NH, DQK, DV);
  const ScanPlan plan = ScanPlan::For(DQK, DV);
  ASSERT_GE(layout.head_stride, DQK * DV + DQK + 1);
  ASSERT_EQ(layout.slot_stride, kCellBlocks * NH * layout.head_stride);
  ASSERT_GE(plan.splits, 1);

  // ---- inputs ----
  std::mt19937 rng(static_cast<uint32_t>(1000 + DQK * 7 + DV + num_rows));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> proj(T * proj_stride);
  for (float& v : proj) v = normal(rng);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t j = 0; j < V; ++j) proj[t * proj_stride + o_col + j] = 2.0f * normal(rng);
    for (int64_t h = 0; h < NH; ++h) {
      proj[t * proj_stride + i_col + h] = 5.0f * normal(rng);
      proj[t * proj_stride + f_col + h] = 4.0f * normal(rng);
    }
  }
  std::vector<float> i_bias(NH), f_bias(NH), weight(V), bias(V);
  for (float& v : i_bias) v = -1.0f + normal(rng);
  for (float& v : f_bias) v = 2.0f + normal(rng);
  for (float& v : weight) v = 1.0f + 0.2f * normal(rng);
  for (float& v : bias) v = 0.1f * normal(rng);

  // The pool: garbage everywhere (other blocks, other slots, padding), and for the (slot, block,
  // head)s of the step, a state made by running the recurrence over a few random tokens.
  std::vector<float> pool(kCellSlots * layout.slot_stride);
  for (float& v : pool) v = normal(rng);
  for (int32_t r = 0; r < num_rows; ++r) {
    for (int64_t h = 0; h < NH; ++h) {
      std::vector<float> zeros(DQK * DV + DQK + 1, 0.0f);
      HeadState state(DQK, DV, zeros.data());
      std::vector<float> k(DQK), v(DV);
      for (int w = 0; w < kWarmupTokens[c.slots[r]]; ++w) {
        for (float& x : k) x = normal(rng);
        for (float& x : v) x = normal(rng);
        const GateValues g = ReferenceGates(5.0 * normal(rng) - 1.0, 4.0 * normal(rng) + 2.0,
                                            c.gate_soft_cap, state.m);
        state.m = g.m;
        state.Update(g.f_act, g.i_act, k.data(), v.data(), DQK, DV);
      }
      float* dst = &pool[HeadOffset(layout, c.slots[r], kCellBlock, h)];
      for (int64_t i = 0; i < DQK * DV; ++i) dst[i] = static_cast<float>(state.C[i]);
      for (int64_t a = 0; a < DQK; ++a) dst[DQK * DV + a] = static_cast<float>(state.n[a]);
      dst[DQK * DV + DQK] = static_cast<float>(state.m);
    }
  }

  // ---- the step on the device ----
  XLSTM_ASSERT_OK_AND_ASSIGN(auto d_proj, DeviceArray<float>::FromHost(proj));
  XLSTM_ASSERT_OK_AND_ASSIGN(auto d_i_bias, DeviceArray<float>::FromHost(i_bias));
  XLSTM_ASSERT_OK_AND_ASSIGN(auto d_f_bias, DeviceArray<float>::FromHost(f_bias));
  XLSTM_ASSERT_OK_AND_ASSIGN(auto d_weight, DeviceArray<float>::FromHost(weight));
  XLSTM_ASSERT_OK_AND_ASSIGN(auto d_bias, DeviceArray<float>::FromHost(bias));
  XLSTM_ASSERT_OK_AND_ASSIGN(auto d_pool, DeviceArray<float>::FromHost(pool));
  XLSTM_ASSERT_OK_AND_ASSIGN(auto d_slots, DeviceArray<int32_t>::FromHost(c.slots));
  XLSTM_ASSERT_OK_AND_ASSIGN(auto d_begins, DeviceArray<int32_t>::FromHost(begins));
  XLSTM_ASSERT_OK_AND_ASSIGN(auto d_counts, DeviceArray<int32_t>::FromHost(c.counts));
  XLSTM_ASSERT_OK_AND_ASSIGN(
      auto d_gates, DeviceArray<float>::FromHost(std::vector<float>(T * NH * 3, SentinelFloat())));
  XLSTM_ASSERT_OK_AND_ASSIGN(auto d_partial,
                             DeviceArray<float>::FromHost(std::vector<float>(
                                 plan.splits * T * NH * plan.partial_width, SentinelFloat())));
  const size_t out_used = T * V * ActSize(c.out_type);
  XLSTM_ASSERT_OK_AND_ASSIGN(auto d_out,
                             DeviceArray<unsigned char>::FromHost(
                                 std::vector<unsigned char>(out_used + kGuard * 4, kGuardByte)));
  const StepRows rows{d_slots.get(), d_begins.get(), d_counts.get(), num_rows, max_count};
  XLSTM_ASSERT_OK(LaunchMlstmGates(d_proj.get(), proj_stride, i_col, f_col, d_i_bias.get(),
                                   d_f_bias.get(), c.gate_soft_cap, rows, layout, kCellBlock,
                                   d_pool.get(), d_gates.get(), stream_.get()));
  XLSTM_ASSERT_OK(LaunchMlstmScan(d_proj.get(), proj_stride, q_col, k_col, v_col, d_gates.get(),
                                  rows, layout, plan, kCellBlock, T, d_pool.get(), d_partial.get(),
                                  stream_.get()));
  XLSTM_ASSERT_OK(LaunchHeadNormGate(d_partial.get(), plan, d_gates.get(), d_proj.get(),
                                     proj_stride, o_col, d_weight.get(),
                                     c.norm_bias ? d_bias.get() : nullptr, T, NH, DV, kCellEps,
                                     kCellNormEps, d_out.get(), c.out_type, stream_.get()));
  XLSTM_ASSERT_OK(stream_.Synchronize());
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> gates, d_gates.Download());
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> pool_after, d_pool.Download());
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> partial, d_partial.Download());
  XLSTM_ASSERT_OK_AND_ASSIGN(std::vector<unsigned char> out_bytes, d_out.Download());
  EXPECT_TRUE(ByteGuardIntact(out_bytes, out_used)) << "HeadNormGate wrote past its output";
  out_bytes.resize(out_used);
  const std::vector<double> out = DecodeAct(c.out_type, out_bytes);

  auto at = [&](int64_t t, int64_t column) { return &proj[t * proj_stride + column]; };
  auto gate_index = [&](int64_t t, int64_t h) { return (t * NH + h) * 3; };
  // The scan's partial read-outs of (split s, token t, head h) for column col of [num | qn]:
  // num[col] for col < DV; qn (col == DV) is spread over columns DV..partial_width-1.
  const int64_t W = plan.partial_width;
  auto partials = [&](int32_t s, int64_t t, int64_t h, int64_t col) {
    std::vector<float> values;
    const int64_t base = ((s * T + t) * NH + h) * W;
    if (col < DV) {
      values.push_back(partial[base + col]);
    } else {
      for (int64_t j = DV; j < W; ++j) values.push_back(partial[base + j]);
    }
    return values;
  };

  // (1) Gates, one step at a time from the GPU's previous m (so that fp32 drift of m over a
  // row does not add up): the error of m_t, and the relative error of f_act and i_act (exps of
  // differences of m values), is a few ulp of the magnitudes that went into them.
  {
    std::vector<double> got, want, tol, final_got, final_want, final_tol;
    for (int32_t r = 0; r < num_rows; ++r) {
      for (int64_t h = 0; h < NH; ++h) {
        const int64_t off = HeadOffset(layout, c.slots[r], kCellBlock, h);
        double m_prev = pool[off + layout.m_offset()];
        for (int64_t t = begins[r]; t < begins[r] + c.counts[r]; ++t) {
          const double i_raw = static_cast<double>(*at(t, i_col + h)) + i_bias[h];
          const double f_raw = static_cast<double>(*at(t, f_col + h)) + f_bias[h];
          const GateValues ref = ReferenceGates(i_raw, f_raw, c.gate_soft_cap, m_prev);
          const double scale =
              kF32Tolerance * (1.0 + std::fabs(m_prev) + std::fabs(i_raw) + std::fabs(f_raw));
          const float* g = &gates[gate_index(t, h)];
          got.insert(got.end(), {g[0], g[1], g[2]});
          want.insert(want.end(), {ref.f_act, ref.i_act, ref.m});
          tol.insert(tol.end(), {scale * ref.f_act + 1e-30, scale * ref.i_act + 1e-30, scale});
          m_prev = g[2];
        }
        // The final m stored back is the row's last m_t.
        final_got.push_back(pool_after[off + layout.m_offset()]);
        final_want.push_back(m_prev);
        final_tol.push_back(1e-6 * (1.0 + std::fabs(m_prev)));
      }
    }
    EXPECT_TRUE(AllWithin(got, want, tol)) << "gates {f_act, i_act, m_t} per token and head";
    EXPECT_TRUE(AllWithin(final_got, final_want, final_tol)) << "final m in the pool";
  }

  // (2) C, n and the read-outs from the GPU's own gates: C_t = f C + i k vᵀ must be within
  // 1e-5 E_t (E: the bound of HeadState), the partial sums (added over splits) within 1e-5 of
  // Σ|q̂| (E + |C|).
  {
    std::vector<double> state_got, state_want, state_tol, read_got, read_want, read_tol;
    std::vector<double> num, magnitude;
    for (int32_t r = 0; r < num_rows; ++r) {
      for (int64_t h = 0; h < NH; ++h) {
        const int64_t off = HeadOffset(layout, c.slots[r], kCellBlock, h);
        HeadState state(DQK, DV, &pool[off]);
        for (int64_t t = begins[r]; t < begins[r] + c.counts[r]; ++t) {
          const float* g = &gates[gate_index(t, h)];
          state.Update(g[0], g[1], at(t, k_col + h * DQK), at(t, v_col + h * DV), DQK, DV);
          state.ReadOut(at(t, q_col + h * DQK), DQK, DV, &num, &magnitude);
          for (int64_t col = 0; col <= DV; ++col) {
            double sum = 0;
            for (int32_t s = 0; s < plan.splits; ++s) {
              for (float p : partials(s, t, h, col)) sum += p;
            }
            read_got.push_back(sum);
            read_want.push_back(num[col]);
            read_tol.push_back(kF32Tolerance * magnitude[col] + 1e-30);
          }
        }
        for (int64_t i = 0; i < DQK * DV; ++i) {
          state_got.push_back(pool_after[off + i]);
          state_want.push_back(state.C[i]);
          state_tol.push_back(kF32Tolerance * state.E[i]);
        }
        for (int64_t a = 0; a < DQK; ++a) {
          state_got.push_back(pool_after[off + layout.n_offset() + a]);
          state_want.push_back(state.n[a]);
          state_tol.push_back(kF32Tolerance * state.En[a]);
        }
      }
    }
    EXPECT_TRUE(AllWithin(state_got, state_want, state_tol)) << "C and n in the pool";
    EXPECT_TRUE(AllWithin(read_got, read_want, read_tol))
        << "read-outs (partial sums over splits and, for qn, over the qn columns)";
  }

  // (3) Head outputs from the GPU's partials and m_t.
  {
    std::vector<double> got, want, tol, num(DV + 1), magnitude(DV + 1);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t h = 0; h < NH; ++h) {
        for (int64_t col = 0; col <= DV; ++col) {
          num[col] = magnitude[col] = 0;
          for (int32_t s = 0; s < plan.splits; ++s) {
            for (float p : partials(s, t, h, col)) {
              num[col] += p;
              magnitude[col] += std::fabs(p);
            }
          }
        }
        ReferenceHeadOutput(num, magnitude, gates[gate_index(t, h) + 2], at(t, o_col + h * DV),
                            &weight[h * DV], c.norm_bias ? &bias[h * DV] : nullptr, DV,
                            kF32Tolerance, &want, &tol);
        for (int64_t d = 0; d < DV; ++d) got.push_back(out[t * V + h * DV + d]);
      }
    }
    EXPECT_TRUE(ActWithin(c.out_type, got, want, tol)) << "head outputs from the GPU read-outs";
  }

  // (4) End to end against an independent double recurrence from the initial pool (no GPU
  // intermediate). m drifts by fp32 rounding over a row, but h is invariant to a shift of m
  // (C, n and exp(-m) all scale by the same factor), so the outputs still agree; 1e-4 allows
  // for the rounding of the gates compounding over up to 64 tokens.
  {
    std::vector<double> want, tol, num, magnitude;
    std::vector<double> want_by_token(T * V), tol_by_token(T * V);
    for (int32_t r = 0; r < num_rows; ++r) {
      for (int64_t h = 0; h < NH; ++h) {
        HeadState state(DQK, DV, &pool[HeadOffset(layout, c.slots[r], kCellBlock, h)]);
        for (int64_t t = begins[r]; t < begins[r] + c.counts[r]; ++t) {
          const GateValues g = ReferenceGates(static_cast<double>(*at(t, i_col + h)) + i_bias[h],
                                              static_cast<double>(*at(t, f_col + h)) + f_bias[h],
                                              c.gate_soft_cap, state.m);
          state.m = g.m;
          state.Update(g.f_act, g.i_act, at(t, k_col + h * DQK), at(t, v_col + h * DV), DQK, DV);
          state.ReadOut(at(t, q_col + h * DQK), DQK, DV, &num, &magnitude);
          want.clear();
          tol.clear();
          ReferenceHeadOutput(num, magnitude, state.m, at(t, o_col + h * DV), &weight[h * DV],
                              c.norm_bias ? &bias[h * DV] : nullptr, DV, 10 * kF32Tolerance, &want,
                              &tol);
          std::copy(want.begin(), want.end(), &want_by_token[t * V + h * DV]);
          std::copy(tol.begin(), tol.end(), &tol_by_token[t * V + h * DV]);
        }
      }
    }
    EXPECT_TRUE(ActWithin(c.out_type, out, want_by_token, tol_by_token))
        << "head outputs against the end-to-end double recurrence";
  }

  // (5) Everything outside the step's (slot, block kCellBlock, head) states is bit-identical:
  // other slots, other blocks of the same slots. (Padding inside a stepped head is not state.)
  {
    std::vector<bool> stepped(pool.size(), false);
    for (int32_t slot : c.slots) {
      for (int64_t h = 0; h < NH; ++h) {
        const int64_t off = HeadOffset(layout, slot, kCellBlock, h);
        std::fill(stepped.begin() + off, stepped.begin() + off + layout.head_stride, true);
      }
    }
    int64_t changed = 0, first = -1;
    for (size_t i = 0; i < pool.size(); ++i) {
      if (!stepped[i] && std::memcmp(&pool[i], &pool_after[i], sizeof(float)) != 0) {
        if (first < 0) first = static_cast<int64_t>(i);
        ++changed;
      }
    }
    EXPECT_EQ(changed, 0) << "floats of slots/blocks outside the step changed; first at " << first
                          << " (slot " << first / layout.slot_stride << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, MlstmCellTest, ::testing::ValuesIn(CellCases()),
                         [](const ::testing::TestParamInfo<CellCase>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace xlstm::engine::cuda
