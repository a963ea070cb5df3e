// The whole model through CudaBackend: parity with the Hugging Face fixtures (tests/data/hf/,
// as tests/engine/hf_parity_test.cc does for the CPU) in fp32- and bf16-weights mode, agreement
// with the CPU reference on logits and slot state, and the Backend contract: chunking does not
// change results, slots are isolated, CopySlot / ResetSlot, workspace limits, bad rows,
// ForwardGreedy, CreateRandom and Load.
//
// Tolerances (max |ours - ref| / max |ref| per logits row, testing::RelativeError):
//  * fp32 weights: 1e-4, the bound, which the CPU reference meets against HF with margin
//    (≤ 1.6e-5); the GPU differs from both only by fp32 summation order.
//  * bf16 weights: 5e-2 (printed per case). Rounding a weight or a GEMM operand to bf16 changes
//    it by up to 2^-9 relative (half of bf16's 2^-8 spacing); a dot product of random-signed
//    terms then moves by ~2^-9 of its own size, the exponential input gate turns that into a
//    relative change of its output, and this compounds over the blocks. Greedy tokens must
//    still equal HF's on the fixtures.
//  * Batching / slot isolation: 1e-5. A sequence's result may change only through summation
//    order (a GEMM over more rows may pick another cuBLAS kernel); whether it is in fact
//    bit-identical is printed.
//  * Slot state: compared as the values it stands for, e^m·C and e^m·n per (block, head),
//    relative to that head's largest value; m itself within tol·(1 + |m|). The stabilizer m
//    is a bookkeeping scale: two fp32 runs may drift apart in m and compensate in C and n.
//    fp32 weights: the logits tolerance; bf16 weights: only a gross-error bound (printed).
#include "engine/cuda/cuda_backend.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_model.h"
#include "engine/cuda/dependent_launch.h"
#include "engine/model_config.h"
#include "engine/sampling/logprobs.h"
#include "engine/weights/model_weights.h"
#include "engine/weights/random_init.h"
#include "gtest/gtest.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/engine/hf_fixture.h"

namespace xlstm::engine::cuda {
namespace {

using ::xlstm::testing::BitIdentical;
using ::xlstm::testing::HfCases;
using ::xlstm::testing::LoadHfFixture;
using ::xlstm::testing::RelativeError;

constexpr double kFp32Tolerance = 1e-4;
// bf16 weights and GEMM operands on these fixtures. Their weights are deliberately aggressive
// (docs/xlstm-model.md §9: lm_head x6, gate weights x3), so the exponential gates amplify
// rounding: HF's own bf16 path differs from fp32 by 9-41% of max|logit| on them. Measured on an
// H100: decode steps after a prefill <= 1.9%, 37-token prompts <= 11.4%, 300-token prompts up
// to 69% (the error grows with the prompt). The bounds below sit above those with margin; the
// 300-token prompts are reported, not bounded, and bf16 greedy runs must agree on the first
// token (their first divergence is reported). fp32-weights mode is the exact mode.
constexpr double kBf16Tolerance = 5e-2;        // decode steps
constexpr double kBf16PromptTolerance = 0.15;  // prompts of <= 64 tokens
// Our kernels are batch-invariant by construction (fixed summation orders chosen from the
// model shape), but cuBLAS picks a GEMM algorithm per batch size, so a row's projections can
// round differently when its neighbours change. Measured on an H100 (fp32 weights, these
// fixtures): up to 4.4e-5 relative on logits, with ~16% of rows bit-identical. The bound is
// the fp32 parity bound; a batch-invariant GEMM is the fix (tests/bench/NOTES.md).
constexpr double kIsolationTolerance = 1e-4;
// bf16 weights: slot states are only checked for gross errors (a wrong or stale slot is off by
// O(1)); their rounding error is printed.
constexpr double kBf16StateBound = 0.25;
// bf16 recurrent state (C and n stored as bf16, CudaBackendOptions::state_type) against fp32
// storage, same weights and weight mode, per logits row of a 37-token prompt and of 128 decode
// steps fed the fp32 run's greedy tokens. Storing C rounds it by up to 2^-9 relative each step;
// the read-outs average that over DHQK terms and the exponential gates of these deliberately
// aggressive fixtures amplify it. Measured on the H200: fp32 weights 0.022 (default) to 0.074
// (qk1_v05), and 0.012 on the 7B head shape with random init weights; bf16 weights 0.034 to
// 0.216 (qk1_v05, the fixture where bf16 and fp32 weights differ most). The bounds are about
// twice the worst measured value.
constexpr double kBf16StateTolerance = 0.15;             // fp32 weights
constexpr double kBf16StateBf16WeightsTolerance = 0.45;  // bf16 weights

std::string FixtureDir(const std::string& case_name) {
  return std::string(XLSTM_TEST_DATA_DIR) + "/hf/" + case_name;
}

CudaBackendOptions Options(bool fp32_weights, int32_t max_slots = 8) {
  CudaBackendOptions options;
  options.fp32_weights = fp32_weights;
  options.max_slots = max_slots;
  return options;
}

const char* ModeName(bool fp32_weights) { return fp32_weights ? "fp32" : "bf16"; }

// The HF parity tests also run bf16 weights with bf16-pair activations (kernels.h,
// LaunchSplitToBf16Pairs).
enum class Precision { kBf16, kFp32, kBf16x2 };
const char* PrecisionName(Precision p) {
  return p == Precision::kFp32 ? "fp32" : p == Precision::kBf16 ? "bf16" : "bf16x2";
}

std::vector<int32_t> RandomIds(size_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(vocab) - 1);
  std::vector<int32_t> ids(n);
  for (int32_t& id : ids) id = dist(rng);
  return ids;
}

absl::StatusOr<std::vector<float>> RunRows(Backend& backend, const std::vector<ForwardRow>& rows) {
  std::vector<float> logits;
  absl::Status status = ForwardLogits(backend, rows, logits);
  if (!status.ok()) return status;
  return logits;
}

// Logits rows a Forward returns for `rows`.
int64_t LogitRows(const std::vector<ForwardRow>& rows) {
  int64_t n = 0;
  for (const ForwardRow& row : rows) {
    if (row.logits == LogitsMode::kLast) n += 1;
    if (row.logits == LogitsMode::kAll) n += static_cast<int64_t>(row.tokens.size());
  }
  return n;
}

// Row-by-row RelativeError of two [rows, vocab] logits arrays; fails on a size mismatch or a
// row above `tol`. `worst` receives the largest error, `bit_identical_rows` how many rows were
// bit-identical.
::testing::AssertionResult LogitsClose(const std::vector<float>& got,
                                       const std::vector<float>& want, int64_t vocab, double tol,
                                       double* worst = nullptr,
                                       int64_t* bit_identical_rows = nullptr) {
  if (got.size() != want.size() || want.size() % vocab != 0) {
    return ::testing::AssertionFailure()
           << "logits sizes differ: " << got.size() << " vs " << want.size();
  }
  const int64_t rows = static_cast<int64_t>(want.size()) / vocab;
  double max_err = 0;
  int64_t worst_row = 0, identical = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const double err = RelativeError(&got[r * vocab], &want[r * vocab], vocab);
    identical += std::memcmp(&got[r * vocab], &want[r * vocab], vocab * sizeof(float)) == 0;
    if (!(err <= max_err)) {  // NaN wins
      max_err = err;
      worst_row = r;
    }
  }
  if (worst != nullptr) *worst = max_err;
  if (bit_identical_rows != nullptr) *bit_identical_rows = identical;
  if (max_err <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "logits row " << worst_row << " of " << rows
                                       << " has relative error " << max_err << " > " << tol;
}

// Two slot states in RecurrentState's layout, compared as e^m·C and e^m·n per (block, head)
// relative to the head's largest reference value, and m within tol·(1 + |m|) (see the file
// comment). `worst` receives the largest relative error of C and n.
::testing::AssertionResult StatesClose(const ModelConfig& config, absl::Span<const float> got,
                                       absl::Span<const float> want, double tol,
                                       double* worst = nullptr) {
  const int64_t dqk = config.qk_head_dim(), dv = config.v_head_dim();
  const int64_t per_head = dqk * dv + dqk + 1;
  const int64_t heads = config.num_blocks * config.num_heads;
  if (static_cast<int64_t>(got.size()) != heads * per_head || got.size() != want.size()) {
    return ::testing::AssertionFailure() << "state sizes " << got.size() << " and " << want.size()
                                         << ", expected " << heads * per_head;
  }
  double max_err = 0;
  for (int64_t bh = 0; bh < heads; ++bh) {
    const float* g = &got[bh * per_head];
    const float* w = &want[bh * per_head];
    const std::string where =
        absl::StrCat("block ", bh / config.num_heads, " head ", bh % config.num_heads);
    const double m_got = g[dqk * dv + dqk], m_want = w[dqk * dv + dqk];
    if (!(std::fabs(m_got - m_want) <= tol * (1.0 + std::fabs(m_want)))) {
      return ::testing::AssertionFailure() << where << ": m " << m_got << " vs " << m_want;
    }
    const double scale_got = std::exp(m_got), scale_want = std::exp(m_want);
    const struct {
      const char* name;
      int64_t begin, count;
    } parts[] = {{"C", 0, dqk * dv}, {"n", dqk * dv, dqk}};
    for (const auto& part : parts) {
      double max_diff = 0, max_ref = 0;
      for (int64_t i = part.begin; i < part.begin + part.count; ++i) {
        const double a = scale_got * g[i], b = scale_want * w[i];
        const double diff = std::fabs(a - b);
        max_diff = std::isnan(diff) ? INFINITY : std::max(max_diff, diff);
        max_ref = std::max(max_ref, std::fabs(b));
      }
      if (!(max_diff <= tol * max_ref)) {
        return ::testing::AssertionFailure()
               << where << ": e^m·" << part.name << " differs by " << max_diff << " (largest value "
               << max_ref << ", tolerance " << tol << " relative)";
      }
      if (max_ref > 0) max_err = std::max(max_err, max_diff / max_ref);
    }
  }
  if (worst != nullptr) *worst = max_err;
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult AllZero(absl::Span<const float> values) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] != 0.0f || std::signbit(values[i])) {
      return ::testing::AssertionFailure() << "float " << i << " is " << values[i];
    }
  }
  return ::testing::AssertionSuccess();
}

void Report(const std::string& what, double value) {
  std::printf("[ measured ] %s: %.3g\n", what.c_str(), value);
  std::fflush(stdout);
  ::testing::Test::RecordProperty(what, absl::StrCat(value));
}

// ---- Parity with the Hugging Face fixtures ----

class CudaHfParityTest : public ::testing::TestWithParam<std::tuple<std::string, Precision>> {
 protected:
  void SetUp() override {
    XLSTM_SKIP_WITHOUT_CUDA();
    fixture_ = LoadHfFixture(case_name());
    XLSTM_ASSERT_OK_AND_ASSIGN(weights_, ModelWeights::Load(fixture_.dir));
    CudaBackendOptions options = Options(fp32());
    options.bf16x2_activations = precision() == Precision::kBf16x2;
    XLSTM_ASSERT_OK_AND_ASSIGN(backend_, CudaBackend::Create(*weights_, options));
    vocab_ = backend_->config().vocab_size;
  }

  const std::string& case_name() const { return std::get<0>(GetParam()); }
  Precision precision() const { return std::get<1>(GetParam()); }
  bool fp32() const { return precision() == Precision::kFp32; }
  double tolerance() const { return fp32() ? kFp32Tolerance : kBf16Tolerance; }
  std::string Label(const std::string& what) const {
    return absl::StrCat(case_name(), "_", PrecisionName(precision()), "_", what);
  }

  // Feeds `ids` in one Forward (kAll) and checks every position against the reference `name`.
  // bf16_bound: the bound in bf16 mode; 0 reports the error without bounding it.
  void CheckPrefillLogits(const std::string& ids_key, const std::string& name, double bf16_bound) {
    const std::vector<int32_t> ids = fixture_.Ids(ids_key);
    int64_t rows = 0, vocab = 0;
    const std::vector<float> reference = fixture_.Logits(name, &rows, &vocab);
    ASSERT_EQ(rows, static_cast<int64_t>(ids.size()));
    ASSERT_EQ(vocab, vocab_);
    XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> logits,
                               RunRows(*backend_, {{3, ids, LogitsMode::kAll}}));
    ASSERT_EQ(logits.size(), reference.size());
    double worst = 0;
    int64_t worst_position = 0;
    for (int64_t t = 0; t < rows; ++t) {
      const double err = RelativeError(&logits[t * vocab], &reference[t * vocab], vocab);
      if (!(err <= worst)) {
        worst = err;
        worst_position = t;
      }
    }
    Report(Label(name + "_max_rel_err"), worst);
    for (float v : logits) ASSERT_TRUE(std::isfinite(v)) << "non-finite logit";
    const double bound = fp32() ? kFp32Tolerance : bf16_bound;
    if (bound > 0) {
      EXPECT_LE(worst, bound) << "worst at position " << worst_position << " of " << rows;
    }
  }

  testing::HfFixture fixture_;
  std::shared_ptr<const ModelWeights> weights_;
  std::unique_ptr<CudaBackend> backend_;
  int64_t vocab_ = 0;
};

TEST_P(CudaHfParityTest, LongPromptLogitsMatchEveryPosition) {
  // 300 tokens: more than the default max_logit_rows (256), so lm_head runs in pieces.
  CheckPrefillLogits("ids_long", "logits_long", /*bf16_bound=*/0);
}

TEST_P(CudaHfParityTest, ShortPromptLogitsMatchEveryPosition) {
  CheckPrefillLogits("ids_short", "logits_short", kBf16PromptTolerance);
}

TEST_P(CudaHfParityTest, PrefillThenDecodeStepsMatch) {
  const std::vector<int32_t> ids = fixture_.Ids("ids_steps");
  const size_t prefill_len = fixture_.meta.at("steps_prefill_len").get<size_t>();
  int64_t rows = 0, vocab = 0;
  const std::vector<float> reference = fixture_.Logits("logits_steps", &rows, &vocab);
  ASSERT_EQ(prefill_len + rows, ids.size());
  const std::vector<int32_t> prefill(ids.begin(), ids.begin() + prefill_len);
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> none,
                             RunRows(*backend_, {{5, prefill, LogitsMode::kNone}}));
  EXPECT_TRUE(none.empty());
  double worst = 0;
  for (int64_t t = 0; t < rows; ++t) {
    const std::vector<int32_t> token = {ids[prefill_len + t]};
    XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> logits,
                               RunRows(*backend_, {{5, token, LogitsMode::kLast}}));
    ASSERT_EQ(static_cast<int64_t>(logits.size()), vocab);
    const double err = RelativeError(logits.data(), &reference[t * vocab], vocab);
    worst = std::max(worst, err);
    EXPECT_LE(err, tolerance()) << "step " << t;
  }
  Report(Label("logits_steps_max_rel_err"), worst);
}

TEST_P(CudaHfParityTest, GreedyContinuationIsIdentical) {
  const auto& gen = fixture_.meta.at("generate");
  const std::vector<int32_t> prompt = gen.at("prompt").get<std::vector<int32_t>>();
  const std::vector<int32_t> expected = gen.at("ids").get<std::vector<int32_t>>();
  const size_t max_new = gen.at("max_new_tokens").get<size_t>();
  const std::vector<int64_t>& eos = backend_->config().eos_token_ids;
  auto is_eos = [&](int32_t token) {
    return std::find(eos.begin(), eos.end(), token) != eos.end();
  };

  // Host argmax over Forward's logits (slot 0), then on-device argmax (ForwardGreedy, slot 1).
  std::vector<int32_t> generated, generated_on_device;
  XLSTM_ASSERT_OK_AND_ASSIGN(std::vector<float> logits,
                             RunRows(*backend_, {{0, prompt, LogitsMode::kLast}}));
  while (generated.size() < max_new) {
    const int32_t token = Argmax(logits);
    generated.push_back(token);
    if (is_eos(token)) break;
    const std::vector<int32_t> next = {token};
    XLSTM_ASSERT_OK_AND_ASSIGN(logits, RunRows(*backend_, {{0, next, LogitsMode::kLast}}));
  }
  std::vector<int32_t> ids;
  XLSTM_ASSERT_OK(backend_->ForwardGreedy({{1, prompt, LogitsMode::kLast}}, ids));
  while (generated_on_device.size() < max_new) {
    ASSERT_EQ(ids.size(), 1u);
    generated_on_device.push_back(ids[0]);
    if (is_eos(ids[0])) break;
    const std::vector<int32_t> next = {ids[0]};
    XLSTM_ASSERT_OK(backend_->ForwardGreedy({{1, next, LogitsMode::kLast}}, ids));
  }
  size_t first_difference = 0;
  while (first_difference < std::min(generated.size(), expected.size()) &&
         generated[first_difference] == expected[first_difference]) {
    ++first_difference;
  }
  Report(Label("greedy_tokens_equal_to_hf"), static_cast<double>(first_difference));
  if (precision() != Precision::kBf16) {
    // fp32, and bf16 weights with bf16-pair activations: rounding the weights alone keeps HF's
    // greedy tokens on every fixture (tools/gpu/bf16_error_study.py); bf16 activations do not.
    EXPECT_EQ(generated, expected) << "first difference at generated token " << first_difference;
    EXPECT_EQ(generated_on_device, expected) << "ForwardGreedy";
  } else {
    ASSERT_FALSE(generated.empty());
    EXPECT_EQ(generated[0], expected[0]) << "bf16 must agree on the first greedy token";
    EXPECT_EQ(generated_on_device, generated) << "ForwardGreedy == host argmax in bf16 too";
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllFixtures, CudaHfParityTest,
    ::testing::Combine(::testing::ValuesIn(HfCases()),
                       ::testing::Values(Precision::kBf16, Precision::kFp32, Precision::kBf16x2)),
    [](const ::testing::TestParamInfo<std::tuple<std::string, Precision>>& info) {
      return absl::StrCat(std::get<0>(info.param), "_", PrecisionName(std::get<1>(info.param)));
    });

// ---- Agreement with the CPU reference ----

class CudaVsCpuTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { XLSTM_SKIP_WITHOUT_CUDA(); }
};

// Runs the same two steps (a mixed batch of prompts on non-contiguous slots, then decode rows
// next to prefill chunks) on the CPU backend and the CUDA backend and compares the logits and
// every slot's state.
void CompareWithCpu(const std::shared_ptr<const ModelWeights>& weights, bool fp32,
                    const std::string& label) {
  constexpr int32_t kSlots = 8;
  XLSTM_ASSERT_OK_AND_ASSIGN(auto cpu,
                             CpuBackend::Create(std::make_unique<CpuModel>(weights), kSlots));
  XLSTM_ASSERT_OK_AND_ASSIGN(auto gpu, CudaBackend::Create(*weights, Options(fp32, kSlots)));
  ASSERT_EQ(gpu->num_slots(), kSlots);
  const ModelConfig& config = weights->config;
  const int64_t vocab = config.vocab_size;
  const double tol = fp32 ? kFp32Tolerance : kBf16Tolerance;

  const auto p150 = RandomIds(150, vocab, 1), p1 = RandomIds(1, vocab, 2),
             p37 = RandomIds(37, vocab, 3), p64 = RandomIds(64, vocab, 4),
             d1 = RandomIds(1, vocab, 5), c9 = RandomIds(9, vocab, 6), d2 = RandomIds(1, vocab, 7),
             c2 = RandomIds(2, vocab, 8), p5 = RandomIds(5, vocab, 9);
  const std::vector<std::vector<ForwardRow>> steps = {
      {{5, p150, LogitsMode::kAll},
       {1, p1, LogitsMode::kLast},
       {3, p37, LogitsMode::kLast},
       {0, p64, LogitsMode::kNone}},
      {{5, d1, LogitsMode::kLast},
       {1, c9, LogitsMode::kAll},
       {3, d2, LogitsMode::kLast},
       {0, c2, LogitsMode::kLast},
       {6, p5, LogitsMode::kLast}},
  };
  double worst_logits = 0, worst_state = 0;
  for (size_t s = 0; s < steps.size(); ++s) {
    SCOPED_TRACE(absl::StrCat("step ", s));
    XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> want, RunRows(*cpu, steps[s]));
    XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> got, RunRows(*gpu, steps[s]));
    ASSERT_EQ(static_cast<int64_t>(got.size()), LogitRows(steps[s]) * vocab);
    double worst = 0;
    // bf16: reported only (a 150-token prompt is in the batch; see kBf16Tolerance).
    const bool close = LogitsClose(got, want, vocab, tol, &worst);
    if (fp32) {
      EXPECT_TRUE(close);
    }
    worst_logits = std::max(worst_logits, worst);
  }
  for (int32_t slot = 0; slot < kSlots; ++slot) {
    SCOPED_TRACE(absl::StrCat("slot ", slot));
    XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> state, gpu->ReadSlot(slot));
    double worst = 0;
    EXPECT_TRUE(StatesClose(config, state, cpu->slot_state(slot).data(),
                            fp32 ? kFp32Tolerance : kBf16StateBound, &worst));
    worst_state = std::max(worst_state, worst);
  }
  Report(label + "_logits_max_rel_err_vs_cpu", worst_logits);
  Report(label + "_state_max_rel_err_vs_cpu", worst_state);
}

TEST_P(CudaVsCpuTest, Fp32LogitsAndStatesMatchTheCpuReference) {
  XLSTM_ASSERT_OK_AND_ASSIGN(auto weights, ModelWeights::Load(FixtureDir(GetParam())));
  CompareWithCpu(weights, /*fp32=*/true, GetParam() + "_fp32");
}

TEST_P(CudaVsCpuTest, Bf16LogitsAndStatesStayNearTheCpuReference) {
  XLSTM_ASSERT_OK_AND_ASSIGN(auto weights, ModelWeights::Load(FixtureDir(GetParam())));
  CompareWithCpu(weights, /*fp32=*/false, GetParam() + "_bf16");
}

INSTANTIATE_TEST_SUITE_P(AllFixtures, CudaVsCpuTest, ::testing::ValuesIn(HfCases()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// The head shape of xLSTM-7b (DHQK 256, DHV 512: the largest scan plan) on a random model
// written by init-random's code, against the CPU.
class CudaSevenBHeadShapeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    XLSTM_SKIP_WITHOUT_CUDA();
    ModelConfig config;
    config.vocab_size = 512;
    config.hidden_size = config.embedding_dim = 1024;
    config.num_blocks = config.num_hidden_layers = 1;
    config.num_heads = 2;
    ASSERT_EQ(config.qk_head_dim(), 256);
    ASSERT_EQ(config.v_head_dim(), 512);
    dir_ = absl::StrCat(::testing::TempDir(), "xlstm_cuda_7b_heads_", getpid());
    XLSTM_ASSERT_OK(WriteRandomModel(config, 11, DType::kF32, dir_));
    XLSTM_ASSERT_OK_AND_ASSIGN(weights_, ModelWeights::Load(dir_));
  }
  void TearDown() override {
    if (!dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
    }
  }

  std::string dir_;
  std::shared_ptr<const ModelWeights> weights_;
};

TEST_F(CudaSevenBHeadShapeTest, Fp32MatchesTheCpuReference) {
  CompareWithCpu(weights_, /*fp32=*/true, "7b_heads_fp32");
}

TEST_F(CudaSevenBHeadShapeTest, Bf16StaysNearTheCpuReference) {
  CompareWithCpu(weights_, /*fp32=*/false, "7b_heads_bf16");
}

// The recurrent state stored as bf16 against fp32 storage on the same weights and weight mode
// (see kBf16StateTolerance): a 37-token prompt, then 128 decode steps fed the fp32 run's greedy
// tokens (the per-step logit error and how often the two argmaxes agree), the slot states after
// them, and 256 greedy tokens generated by each on its own (tokens equal before the first
// difference: reported, not bounded, since these fixtures are chaotic by design). Also: a
// copied bf16 slot continues bit for bit like its original, and a reset one reads zero.
void CompareBf16State(const std::shared_ptr<const ModelWeights>& weights, bool fp32_weights,
                      const std::string& label) {
  CudaBackendOptions options = Options(fp32_weights, 4);
  XLSTM_ASSERT_OK_AND_ASSIGN(auto ref, CudaBackend::Create(*weights, options));
  options.state_type = ActType::kBF16;
  XLSTM_ASSERT_OK_AND_ASSIGN(auto b16, CudaBackend::Create(*weights, options));
  ASSERT_EQ(ref->state_type(), ActType::kF32);
  ASSERT_EQ(b16->state_type(), ActType::kBF16);
  EXPECT_LT(static_cast<double>(b16->slot_bytes()), 0.56 * static_cast<double>(ref->slot_bytes()));
  const ModelConfig& config = weights->config;
  const int64_t vocab = config.vocab_size;

  const std::vector<int32_t> prompt = RandomIds(37, vocab, 41);
  XLSTM_ASSERT_OK_AND_ASSIGN(std::vector<float> want,
                             RunRows(*ref, {{0, prompt, LogitsMode::kLast}}));
  XLSTM_ASSERT_OK_AND_ASSIGN(std::vector<float> got,
                             RunRows(*b16, {{0, prompt, LogitsMode::kLast}}));
  ASSERT_EQ(static_cast<int64_t>(got.size()), vocab);
  double worst = RelativeError(got.data(), want.data(), vocab);
  int32_t token = Argmax(want);
  int agree = 0;
  constexpr int kSteps = 128;
  for (int step = 0; step < kSteps; ++step) {
    const std::vector<int32_t> fed = {token};
    XLSTM_ASSERT_OK_AND_ASSIGN(want, RunRows(*ref, {{0, fed, LogitsMode::kLast}}));
    XLSTM_ASSERT_OK_AND_ASSIGN(got, RunRows(*b16, {{0, fed, LogitsMode::kLast}}));
    ASSERT_EQ(static_cast<int64_t>(got.size()), vocab);
    worst = std::max(worst, RelativeError(got.data(), want.data(), vocab));
    agree += Argmax(got) == Argmax(want) ? 1 : 0;
    token = Argmax(want);
  }
  EXPECT_LE(worst, fp32_weights ? kBf16StateTolerance : kBf16StateBf16WeightsTolerance)
      << "bf16 state vs fp32 state, max relative logit error";
  Report(label + "_bf16_state_logits_max_rel_err", worst);
  Report(label + "_bf16_state_greedy_argmax_agree_of_128_steps", agree);
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> state_want, ref->ReadSlot(0));
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> state_got, b16->ReadSlot(0));
  double state_err = 0;
  EXPECT_TRUE(StatesClose(config, state_got, state_want, kBf16StateBound, &state_err));
  Report(label + "_bf16_state_state_max_rel_err", state_err);

  // Free-running greedy generation from the prompt on slot 1 of each.
  std::vector<int32_t> tokens[2];
  CudaBackend* const runs[2] = {ref.get(), b16.get()};
  for (int k = 0; k < 2; ++k) {
    XLSTM_ASSERT_OK_AND_ASSIGN(std::vector<float> logits,
                               RunRows(*runs[k], {{1, prompt, LogitsMode::kLast}}));
    for (int step = 0; step < 256; ++step) {
      tokens[k].push_back(Argmax(logits));
      const std::vector<int32_t> fed = {tokens[k].back()};
      XLSTM_ASSERT_OK_AND_ASSIGN(logits, RunRows(*runs[k], {{1, fed, LogitsMode::kLast}}));
    }
  }
  size_t same = 0;
  while (same < tokens[0].size() && tokens[0][same] == tokens[1][same]) ++same;
  Report(label + "_bf16_state_greedy_tokens_equal_of_256", static_cast<double>(same));

  // Slot operations on bf16 slots.
  XLSTM_ASSERT_OK(b16->CopySlot(0, 2));
  const std::vector<int32_t> next = {token};
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> original,
                             RunRows(*b16, {{0, next, LogitsMode::kLast}}));
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> copy,
                             RunRows(*b16, {{2, next, LogitsMode::kLast}}));
  EXPECT_TRUE(BitIdentical(copy, original));
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> slot0, b16->ReadSlot(0));
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> slot2, b16->ReadSlot(2));
  EXPECT_TRUE(BitIdentical(slot2, slot0));
  XLSTM_ASSERT_OK(b16->ResetSlot(2));
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> reset, b16->ReadSlot(2));
  EXPECT_TRUE(AllZero(reset));
}

class CudaBf16StateTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { XLSTM_SKIP_WITHOUT_CUDA(); }
};

TEST_P(CudaBf16StateTest, Fp32WeightsStayNearTheFp32State) {
  XLSTM_ASSERT_OK_AND_ASSIGN(auto weights, ModelWeights::Load(FixtureDir(GetParam())));
  CompareBf16State(weights, /*fp32_weights=*/true, GetParam() + "_fp32");
}

TEST_P(CudaBf16StateTest, Bf16WeightsStayNearTheFp32State) {
  XLSTM_ASSERT_OK_AND_ASSIGN(auto weights, ModelWeights::Load(FixtureDir(GetParam())));
  CompareBf16State(weights, /*fp32_weights=*/false, GetParam() + "_bf16");
}

INSTANTIATE_TEST_SUITE_P(AllFixtures, CudaBf16StateTest, ::testing::ValuesIn(HfCases()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// The 7B head shape runs the scan's two-column variant (bf16 pairs loaded and stored).
TEST_F(CudaSevenBHeadShapeTest, Bf16StateStaysNearTheFp32State) {
  CompareBf16State(weights_, /*fp32_weights=*/true, "7b_heads_fp32");
}

// ---- Backend contract (fp32 weights unless named) ----

class CudaBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    XLSTM_SKIP_WITHOUT_CUDA();
    XLSTM_ASSERT_OK_AND_ASSIGN(weights_, ModelWeights::Load(FixtureDir("default")));
    vocab_ = weights_->config.vocab_size;
  }

  absl::StatusOr<std::unique_ptr<CudaBackend>> Make(const CudaBackendOptions& options) const {
    return CudaBackend::Create(*weights_, options);
  }

  std::shared_ptr<const ModelWeights> weights_;
  int64_t vocab_ = 0;
};

TEST_F(CudaBackendTest, DescribesItselfAndStartsWithZeroedSlots) {
  XLSTM_ASSERT_OK_AND_ASSIGN(auto backend, Make(Options(true, 8)));
  EXPECT_EQ(backend->name(), "cuda");
  EXPECT_EQ(backend->num_slots(), 8);
  EXPECT_EQ(backend->weight_type(), ActType::kF32);
  EXPECT_GT(backend->weight_bytes(), 0);
  EXPECT_GT(backend->workspace_bytes(), 0);
  const ModelConfig& config = backend->config();
  EXPECT_EQ(config.vocab_size, weights_->config.vocab_size);
  const StateLayout& layout = backend->state_layout();
  EXPECT_EQ(layout.num_blocks, config.num_blocks);
  EXPECT_EQ(layout.num_heads, config.num_heads);
  EXPECT_EQ(layout.dqk, config.qk_head_dim());
  EXPECT_EQ(layout.dv, config.v_head_dim());
  EXPECT_EQ(backend->slot_bytes(), layout.slot_stride * 4);
  const CudaDeviceInfo& info = backend->device_info();
  EXPECT_FALSE(info.name.empty());
  EXPECT_GT(info.sm_count, 0);
  EXPECT_GT(info.total_bytes, 0);
  EXPECT_GT(info.compute_capability, 0);
  XLSTM_ASSERT_OK_AND_ASSIGN(const CudaDeviceInfo info0, GetCudaDeviceInfo(0));
  EXPECT_EQ(info0.name, info.name);
  EXPECT_FALSE(GetCudaDeviceInfo(CudaDeviceCount()).ok());
  for (int32_t slot = 0; slot < backend->num_slots(); ++slot) {
    XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> state, backend->ReadSlot(slot));
    EXPECT_EQ(static_cast<int64_t>(state.size()), config.state_floats_per_sequence());
    EXPECT_TRUE(AllZero(state)) << "slot " << slot;
  }
  EXPECT_FALSE(backend->ReadSlot(-1).ok());
  EXPECT_FALSE(backend->ReadSlot(backend->num_slots()).ok());
  XLSTM_ASSERT_OK(backend->Synchronize());

  XLSTM_ASSERT_OK_AND_ASSIGN(auto bf16, Make(Options(false, 8)));
  EXPECT_EQ(bf16->weight_type(), ActType::kBF16);
  EXPECT_LT(bf16->weight_bytes(), backend->weight_bytes() * 0.6);
}

TEST_F(CudaBackendTest, PrefillThenStepsEqualsAllAtOnce) {
  XLSTM_ASSERT_OK_AND_ASSIGN(auto backend, Make(Options(true, 4)));
  const ModelConfig& config = backend->config();
  const std::vector<int32_t> ids = RandomIds(150, vocab_, 1);
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> all,
                             RunRows(*backend, {{0, ids, LogitsMode::kAll}}));
  ASSERT_EQ(static_cast<int64_t>(all.size()), 150 * vocab_);
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> whole_state, backend->ReadSlot(0));

  double worst = 0;
  for (size_t split : {1u, 40u, 64u, 149u}) {
    SCOPED_TRACE(absl::StrCat("split ", split));
    XLSTM_ASSERT_OK(backend->ResetSlot(1));
    const std::vector<int32_t> first(ids.begin(), ids.begin() + split);
    XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> head,
                               RunRows(*backend, {{1, first, LogitsMode::kAll}}));
    double err = 0;
    EXPECT_TRUE(LogitsClose(head, std::vector<float>(all.begin(), all.begin() + split * vocab_),
                            vocab_, kFp32Tolerance, &err));
    worst = std::max(worst, err);
    for (size_t t = split; t < ids.size(); ++t) {
      const std::vector<int32_t> token = {ids[t]};
      XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> step,
                                 RunRows(*backend, {{1, token, LogitsMode::kLast}}));
      ASSERT_EQ(static_cast<int64_t>(step.size()), vocab_);
      const double e = RelativeError(step.data(), &all[t * vocab_], vocab_);
      worst = std::max(worst, e);
      ASSERT_LE(e, kFp32Tolerance) << "position " << t;
    }
    XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> state, backend->ReadSlot(1));
    EXPECT_TRUE(StatesClose(config, state, whole_state, kFp32Tolerance));
  }
  Report("prefill_split_max_rel_err", worst);
}

TEST_F(CudaBackendTest, SlotsAreIsolatedUnderRandomAdmissionCancellationAndReuse) {
  constexpr int32_t kSlots = 6;
  constexpr int kSteps = 200;
  const CudaBackendOptions options = Options(true, kSlots);
  XLSTM_ASSERT_OK_AND_ASSIGN(auto shared, Make(options));
  ASSERT_EQ(shared->num_slots(), kSlots);

  struct Sequence {
    int32_t slot;
    std::vector<int32_t> prompt;
    size_t fed = 0;
    int decode_left;
    bool live = true;
    // Each Forward the sequence took part in: its tokens, logits mode and logits.
    std::vector<std::vector<int32_t>> chunks;
    std::vector<LogitsMode> modes;
    std::vector<std::vector<float>> logits;
  };
  std::vector<Sequence> sequences;
  std::vector<int32_t> owner(kSlots, -1);  // sequence index per slot, -1: free
  std::mt19937 rng(2024);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(vocab_) - 1);
  int mixed_steps = 0, reused_slots = 0;
  std::vector<bool> ever_used(kSlots, false);

  for (int step = 0; step < kSteps; ++step) {
    // Admission into free slots (reset first: a reused slot holds a finished sequence's state).
    for (int32_t slot = 0; slot < kSlots; ++slot) {
      if (owner[slot] >= 0 || !chance(0.4)) continue;
      XLSTM_ASSERT_OK(shared->ResetSlot(slot));
      reused_slots += ever_used[slot];
      ever_used[slot] = true;
      Sequence seq;
      seq.slot = slot;
      seq.prompt.resize(uniform(1, 80));
      for (int32_t& id : seq.prompt) id = token(rng);
      seq.decode_left = uniform(1, 25);
      owner[slot] = static_cast<int32_t>(sequences.size());
      sequences.push_back(std::move(seq));
    }
    // This step's rows, in random slot order.
    std::vector<int32_t> order;
    for (int32_t slot = 0; slot < kSlots; ++slot) {
      if (owner[slot] >= 0) order.push_back(slot);
    }
    if (order.empty()) continue;
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<int32_t> members;
    for (size_t i = 0; i < order.size(); ++i) {
      if (i == 0 || chance(0.85)) members.push_back(owner[order[i]]);
    }
    bool has_decode = false, has_prefill = false;
    for (int32_t index : members) {
      Sequence& seq = sequences[index];
      std::vector<int32_t> chunk;
      LogitsMode mode = LogitsMode::kLast;
      if (seq.fed < seq.prompt.size()) {
        const size_t n = std::min<size_t>(seq.prompt.size() - seq.fed, uniform(1, 40));
        chunk.assign(seq.prompt.begin() + seq.fed, seq.prompt.begin() + seq.fed + n);
        seq.fed += n;
        const bool last = seq.fed == seq.prompt.size();
        mode = chance(0.25) ? LogitsMode::kAll : (last ? LogitsMode::kLast : LogitsMode::kNone);
        has_prefill = true;
      } else {
        chunk = {token(rng)};
        --seq.decode_left;
        has_decode = true;
      }
      seq.chunks.push_back(std::move(chunk));
      seq.modes.push_back(mode);
    }
    std::vector<ForwardRow> rows;
    for (int32_t index : members) {
      const Sequence& seq = sequences[index];
      rows.push_back({seq.slot, seq.chunks.back(), seq.modes.back()});
    }
    mixed_steps += has_decode && has_prefill;
    XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> logits, RunRows(*shared, rows));
    ASSERT_EQ(static_cast<int64_t>(logits.size()), LogitRows(rows) * vocab_);
    size_t offset = 0;
    for (size_t i = 0; i < members.size(); ++i) {
      const size_t n = LogitRows({rows[i]}) * vocab_;
      sequences[members[i]].logits.emplace_back(logits.begin() + offset,
                                                logits.begin() + offset + n);
      offset += n;
    }
    // Completion and random cancellation free slots without touching them.
    for (int32_t slot = 0; slot < kSlots; ++slot) {
      if (owner[slot] < 0) continue;
      Sequence& seq = sequences[owner[slot]];
      if (seq.decode_left == 0 || chance(0.03)) {
        seq.live = false;
        owner[slot] = -1;
      }
    }
  }
  EXPECT_GT(mixed_steps, 20) << "the schedule should mix decode rows and prefill chunks";
  EXPECT_GT(reused_slots, 5) << "the schedule should reuse slots";

  // Each sequence alone, in a backend of its own.
  double worst = 0, worst_state = 0;
  int64_t rows_total = 0, rows_identical = 0, states_identical = 0, states_total = 0;
  for (size_t s = 0; s < sequences.size(); ++s) {
    SCOPED_TRACE(absl::StrCat("sequence ", s, " (slot ", sequences[s].slot, ")"));
    const Sequence& seq = sequences[s];
    XLSTM_ASSERT_OK_AND_ASSIGN(auto alone, Make(Options(true, 1)));
    for (size_t c = 0; c < seq.chunks.size(); ++c) {
      XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> logits,
                                 RunRows(*alone, {{0, seq.chunks[c], seq.modes[c]}}));
      double err = 0;
      int64_t identical = 0;
      EXPECT_TRUE(LogitsClose(seq.logits[c], logits, vocab_, kIsolationTolerance, &err, &identical))
          << "forward " << c << " of the sequence";
      worst = std::max(worst, err);
      rows_total += static_cast<int64_t>(logits.size()) / vocab_;
      rows_identical += identical;
    }
    if (seq.live) {
      XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> got, shared->ReadSlot(seq.slot));
      XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> want, alone->ReadSlot(0));
      double err = 0;
      EXPECT_TRUE(StatesClose(shared->config(), got, want, kFp32Tolerance, &err));
      worst_state = std::max(worst_state, err);
      states_identical += static_cast<bool>(BitIdentical(got, want));
      ++states_total;
    }
  }
  std::printf(
      "[ measured ] slot isolation: %zu sequences, %lld logits rows, %lld bit-identical to the "
      "sequence alone (max rel err %.3g); %lld of %lld live states bit-identical (max %.3g)\n",
      sequences.size(), static_cast<long long>(rows_total), static_cast<long long>(rows_identical),
      worst, static_cast<long long>(states_identical), static_cast<long long>(states_total),
      worst_state);
  RecordProperty("isolation_rows_bit_identical", absl::StrCat(rows_identical, " of ", rows_total));
  RecordProperty("isolation_max_rel_err", absl::StrCat(worst));
}

TEST_F(CudaBackendTest, CopySlotThenContinuingEqualsAFreshPrefill) {
  XLSTM_ASSERT_OK_AND_ASSIGN(auto backend, Make(Options(true, 8)));
  const ModelConfig& config = backend->config();
  const std::vector<int32_t> a = RandomIds(30, vocab_, 1), b = RandomIds(12, vocab_, 2);
  XLSTM_ASSERT_OK_AND_ASSIGN(const auto none, RunRows(*backend, {{0, a, LogitsMode::kNone}}));
  EXPECT_TRUE(none.empty());

  XLSTM_ASSERT_OK(backend->CopySlot(0, 3));
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> original, backend->ReadSlot(0));
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> copy, backend->ReadSlot(3));
  EXPECT_TRUE(BitIdentical(copy, original));
  EXPECT_FALSE(AllZero(copy));
  XLSTM_ASSERT_OK(backend->CopySlot(2, 2));  // onto itself: nothing changes
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> self_copy, backend->ReadSlot(2));
  EXPECT_TRUE(AllZero(self_copy));

  // The copy and the original continue identically.
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> from_copy,
                             RunRows(*backend, {{3, b, LogitsMode::kAll}}));
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> from_original,
                             RunRows(*backend, {{0, b, LogitsMode::kAll}}));
  EXPECT_TRUE(LogitsClose(from_copy, from_original, vocab_, kIsolationTolerance));

  // ... and like a fresh slot fed a + b in one prefill (another chunking: fp32 tolerance).
  std::vector<int32_t> ab = a;
  ab.insert(ab.end(), b.begin(), b.end());
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> fresh,
                             RunRows(*backend, {{5, ab, LogitsMode::kAll}}));
  ASSERT_EQ(fresh.size(), ab.size() * vocab_);
  EXPECT_TRUE(LogitsClose(from_copy,
                          std::vector<float>(fresh.begin() + a.size() * vocab_, fresh.end()),
                          vocab_, kFp32Tolerance));
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> copy_state, backend->ReadSlot(3));
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> fresh_state, backend->ReadSlot(5));
  EXPECT_TRUE(StatesClose(config, copy_state, fresh_state, kFp32Tolerance));
}

TEST_F(CudaBackendTest, ResetSlotEqualsAFreshSlot) {
  XLSTM_ASSERT_OK_AND_ASSIGN(auto backend, Make(Options(true, 8)));
  const std::vector<int32_t> used = RandomIds(50, vocab_, 3), ids = RandomIds(20, vocab_, 4);
  XLSTM_ASSERT_OK_AND_ASSIGN(const auto ignored, RunRows(*backend, {{3, used, LogitsMode::kLast}}));
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> before_reset, backend->ReadSlot(3));
  EXPECT_FALSE(AllZero(before_reset));
  XLSTM_ASSERT_OK(backend->ResetSlot(3));
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> after_reset, backend->ReadSlot(3));
  EXPECT_TRUE(AllZero(after_reset));

  // The same call on the reset slot and on a never-used one: identical work, identical bits.
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> again,
                             RunRows(*backend, {{3, ids, LogitsMode::kAll}}));
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> fresh,
                             RunRows(*backend, {{6, ids, LogitsMode::kAll}}));
  EXPECT_TRUE(BitIdentical(again, fresh));
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> state_again, backend->ReadSlot(3));
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> state_fresh, backend->ReadSlot(6));
  EXPECT_TRUE(BitIdentical(state_again, state_fresh));
}

TEST_F(CudaBackendTest, SmallWorkspaceGivesTheSameLogitsAsALargeOne) {
  CudaBackendOptions small_options = Options(true, 17);
  small_options.max_step_tokens = 64;
  small_options.max_logit_rows = 5;
  XLSTM_ASSERT_OK_AND_ASSIGN(auto small, Make(small_options));
  XLSTM_ASSERT_OK_AND_ASSIGN(auto large, Make(Options(true, 17)));
  const ModelConfig& config = small->config();

  // 297 tokens in one Forward (> 64), a 150-token row alone longer than a pass, a row of
  // exactly 64, and 198 logits rows (> 5) from two kAll rows.
  const auto r0 = RandomIds(150, vocab_, 1), r2 = RandomIds(30, vocab_, 2),
             r4 = RandomIds(1, vocab_, 3), r5 = RandomIds(45, vocab_, 4),
             r7 = RandomIds(7, vocab_, 5), r1 = RandomIds(64, vocab_, 6);
  const std::vector<ForwardRow> prefill = {{0, r0, LogitsMode::kAll},  {2, r2, LogitsMode::kLast},
                                           {4, r4, LogitsMode::kLast}, {5, r5, LogitsMode::kAll},
                                           {7, r7, LogitsMode::kNone}, {1, r1, LogitsMode::kLast}};
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> want, RunRows(*large, prefill));
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> got, RunRows(*small, prefill));
  ASSERT_EQ(static_cast<int64_t>(got.size()), LogitRows(prefill) * vocab_);
  double worst = 0;
  EXPECT_TRUE(LogitsClose(got, want, vocab_, kFp32Tolerance, &worst));
  Report("small_workspace_max_rel_err", worst);

  // Six decode rows (> max_logit_rows) next to a kAll chunk.
  const auto d = RandomIds(6, vocab_, 7), c = RandomIds(9, vocab_, 8);
  const std::vector<ForwardRow> decode = {{0, absl::MakeConstSpan(&d[0], 1), LogitsMode::kLast},
                                          {2, absl::MakeConstSpan(&d[1], 1), LogitsMode::kLast},
                                          {4, absl::MakeConstSpan(&d[2], 1), LogitsMode::kLast},
                                          {5, absl::MakeConstSpan(&d[3], 1), LogitsMode::kLast},
                                          {7, c, LogitsMode::kAll},
                                          {1, absl::MakeConstSpan(&d[4], 1), LogitsMode::kLast},
                                          {9, absl::MakeConstSpan(&d[5], 1), LogitsMode::kLast}};
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> want2, RunRows(*large, decode));
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> got2, RunRows(*small, decode));
  EXPECT_TRUE(LogitsClose(got2, want2, vocab_, kFp32Tolerance));
  for (int32_t slot : {0, 1, 2, 4, 5, 7, 9}) {
    SCOPED_TRACE(absl::StrCat("slot ", slot));
    XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> a, small->ReadSlot(slot));
    XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> b, large->ReadSlot(slot));
    EXPECT_TRUE(StatesClose(config, a, b, kFp32Tolerance));
  }

  // ForwardGreedy with more rows than max_logit_rows: the argmax of Forward's logits for the
  // same work (copies of the slots, so both calls see the same states and shapes).
  const std::vector<int32_t> originals = {0, 1, 2, 4, 5, 7, 9};
  for (size_t i = 0; i < originals.size(); ++i) {
    XLSTM_ASSERT_OK(small->CopySlot(originals[i], 10 + static_cast<int32_t>(i)));
  }
  const auto g = RandomIds(originals.size(), vocab_, 9);
  std::vector<ForwardRow> greedy_rows, copy_rows;
  for (size_t i = 0; i < originals.size(); ++i) {
    greedy_rows.push_back({originals[i], absl::MakeConstSpan(&g[i], 1), LogitsMode::kLast});
    copy_rows.push_back(
        {10 + static_cast<int32_t>(i), absl::MakeConstSpan(&g[i], 1), LogitsMode::kLast});
  }
  std::vector<int32_t> ids;
  XLSTM_ASSERT_OK(small->ForwardGreedy(greedy_rows, ids));
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> copy_logits, RunRows(*small, copy_rows));
  ASSERT_EQ(ids.size(), originals.size());
  for (size_t i = 0; i < originals.size(); ++i) {
    EXPECT_EQ(ids[i], Argmax(absl::MakeConstSpan(&copy_logits[i * vocab_], vocab_))) << i;
  }
}

// Rows that ask for samples or scores get what the host rules (token_choice.h) give on the
// logits of the same work: each slot has a twin (a CopySlot) fed the same tokens in a
// logits-only Forward of the same shape (so cuBLAS picks the same algorithms and the logits are
// bit-identical), and the host reduces those logits. Covers n > 1 draws from one
// row, penalties and bans, logprobs and top alternatives, scores spread over several lm_head
// pieces (max_logit_rows 5), and raw-logits rows in the same step.
TEST_F(CudaBackendTest, SamplesAndScoresEqualTheHostRulesOnTheSameLogits) {
  CudaBackendOptions options = Options(true, 16);
  options.max_logit_rows = 5;
  XLSTM_ASSERT_OK_AND_ASSIGN(auto backend, Make(options));
  const auto p0 = RandomIds(20, vocab_, 21), p1 = RandomIds(3, vocab_, 22),
             p2 = RandomIds(1, vocab_, 23), p3 = RandomIds(12, vocab_, 24);
  XLSTM_ASSERT_OK_AND_ASSIGN(const auto ignored, RunRows(*backend, {{0, p0, LogitsMode::kNone},
                                                                    {1, p1, LogitsMode::kNone},
                                                                    {2, p2, LogitsMode::kNone}}));
  for (int32_t slot : {0, 1, 2, 3}) XLSTM_ASSERT_OK(backend->CopySlot(slot, slot + 8));

  SamplingParams greedy;
  greedy.temperature = 0;
  SamplingParams hot;
  hot.temperature = 1.3;
  hot.top_k = 40;
  hot.top_p = 0.95;
  hot.seed = 99;
  SamplingParams penalized = hot;
  penalized.top_k = 0;
  penalized.min_p = 0.02;
  penalized.repetition_penalty = 1.4;
  penalized.frequency_penalty = 0.5;
  const std::vector<LogitAdjustment> adjust = {{p0[0], true, 0.5f, false},
                                               {p0[1], true, 0.0f, false},
                                               {static_cast<int32_t>(vocab_ - 1), false, 0, true}};
  std::vector<SampleSpec> specs_a = {
      {greedy, 0, {}, true, 3}, {hot, 5, {}, false, 0}, {penalized, 7, adjust, true, 0}};
  std::vector<SampleSpec> specs_b = {{hot, 0, adjust, false, 2}};
  const auto d0 = RandomIds(1, vocab_, 25), d1 = RandomIds(4, vocab_, 26);
  const auto cont = RandomIds(9, vocab_, 27);
  const std::vector<int32_t> targets(cont.begin() + 1, cont.end());
  const std::vector<int32_t> fed(cont.begin(), cont.end() - 1);
  const ScoreSpec score{targets, 4};

  std::vector<ForwardRow> rows = {{0, d0, LogitsMode::kNone},
                                  {1, d1, LogitsMode::kNone},
                                  {2, fed, LogitsMode::kNone},
                                  {3, p3, LogitsMode::kLast}};
  rows[0].samples = specs_a;
  rows[1].samples = specs_b;
  rows[2].score = &score;
  ForwardOutput out;
  XLSTM_ASSERT_OK(backend->Forward(rows, out));
  ASSERT_EQ(out.samples.size(), 4u);
  ASSERT_EQ(out.scores.size(), targets.size());
  ASSERT_EQ(static_cast<int64_t>(out.logits.size()), vocab_) << "the kLast row's logits";

  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> twins,
                             RunRows(*backend, {{8, d0, LogitsMode::kLast},
                                                {9, d1, LogitsMode::kLast},
                                                {10, fed, LogitsMode::kAll},
                                                {11, p3, LogitsMode::kLast}}));
  ASSERT_EQ(static_cast<int64_t>(twins.size()), (3 + static_cast<int64_t>(fed.size())) * vocab_);
  const auto last0 = absl::MakeConstSpan(twins).subspan(0, vocab_);
  const auto last1 = absl::MakeConstSpan(twins).subspan(vocab_, vocab_);
  const auto all2 = absl::MakeConstSpan(twins).subspan(2 * vocab_, fed.size() * vocab_);
  EXPECT_TRUE(BitIdentical(std::vector<float>(twins.end() - vocab_, twins.end()), out.logits))
      << "the raw-logits row of the sampling step equals its twin";
  auto same_choice = [&](const TokenChoice& got, const TokenChoice& want, const char* what) {
    EXPECT_EQ(got.token, want.token) << what;
    EXPECT_NEAR(got.logprob, want.logprob, 1e-6) << what;
    ASSERT_EQ(got.top.size(), want.top.size()) << what;
    for (size_t i = 0; i < got.top.size(); ++i) {
      EXPECT_EQ(got.top[i].token, want.top[i].token) << what << " top " << i;
      EXPECT_NEAR(got.top[i].logprob, want.top[i].logprob, 1e-6) << what << " top " << i;
    }
  };
  for (size_t j = 0; j < specs_a.size(); ++j) {
    same_choice(out.samples[j], ChooseToken(specs_a[j], last0), "row 0");
  }
  same_choice(out.samples[3], ChooseToken(specs_b[0], last1), "row 1");
  for (size_t t = 0; t < targets.size(); ++t) {
    SCOPED_TRACE(absl::StrCat("score position ", t));
    const TargetScore want = ScoreTarget(all2.subspan(t * vocab_, vocab_), targets[t], 4);
    EXPECT_NEAR(out.scores[t].logprob, want.logprob, 1e-6);
    EXPECT_EQ(out.scores[t].is_argmax, want.is_argmax);
    ASSERT_EQ(out.scores[t].top.size(), 4u);
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(out.scores[t].top[i].token, want.top[i].token);
  }

  // A row asking for two kinds of output is rejected before any work.
  rows[3].samples = specs_b;
  EXPECT_EQ(backend->Forward(rows, out).code(), absl::StatusCode::kInvalidArgument);
}

class CudaGreedyTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { XLSTM_SKIP_WITHOUT_CUDA(); }
};

TEST_P(CudaGreedyTest, ForwardGreedyReturnsTheArgmaxOfForwardLogits) {
  XLSTM_ASSERT_OK_AND_ASSIGN(auto weights, ModelWeights::Load(FixtureDir("default")));
  XLSTM_ASSERT_OK_AND_ASSIGN(auto backend, CudaBackend::Create(*weights, Options(GetParam(), 8)));
  const int64_t vocab = backend->config().vocab_size;
  const auto p0 = RandomIds(17, vocab, 1), p1 = RandomIds(3, vocab, 2),
             p2 = RandomIds(64, vocab, 3);
  XLSTM_ASSERT_OK_AND_ASSIGN(const auto ignored, RunRows(*backend, {{0, p0, LogitsMode::kNone},
                                                                    {1, p1, LogitsMode::kNone},
                                                                    {2, p2, LogitsMode::kNone}}));
  for (int32_t slot : {0, 1, 2}) XLSTM_ASSERT_OK(backend->CopySlot(slot, slot + 4));

  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    // A decode row, a prefill chunk and another decode row, all wanting the last logits.
    const auto t0 = RandomIds(1, vocab, 10 + round), t1 = RandomIds(5, vocab, 20 + round),
               t2 = RandomIds(1, vocab, 30 + round);
    std::vector<int32_t> ids;
    XLSTM_ASSERT_OK(backend->ForwardGreedy(
        {{0, t0, LogitsMode::kLast}, {1, t1, LogitsMode::kLast}, {2, t2, LogitsMode::kLast}}, ids));
    XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> logits,
                               RunRows(*backend, {{4, t0, LogitsMode::kLast},
                                                  {5, t1, LogitsMode::kLast},
                                                  {6, t2, LogitsMode::kLast}}));
    ASSERT_EQ(ids.size(), 3u);
    ASSERT_EQ(static_cast<int64_t>(logits.size()), 3 * vocab);
    for (int r = 0; r < 3; ++r) {
      EXPECT_EQ(ids[r], Argmax(absl::MakeConstSpan(&logits[r * vocab], vocab))) << "row " << r;
    }
    // Only the head differs between the two calls: the states advanced identically.
    for (int32_t slot : {0, 1, 2}) {
      XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> a, backend->ReadSlot(slot));
      XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> b, backend->ReadSlot(slot + 4));
      EXPECT_TRUE(BitIdentical(a, b)) << "slot " << slot;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(WeightModes, CudaGreedyTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(ModeName(info.param));
                         });

// ---- Decode buckets and CUDA graphs ----

// Decode-only steps run padded to a bucket (1, 2, 4, 8, 16 here) from a CUDA graph. Three
// backends on the same weights take the same steps: graphs (the default), the same padded work
// launched kernel by kernel (kBuckets), and the unpadded general path (kGeneral).
//  * graphs vs kBuckets: bit-identical logits, samples, argmaxes and slot states at every batch
//    size, bucket sizes or not (a graph replays exactly the launches it captured);
//  * graphs vs kGeneral at bucket sizes: bit-identical too (no padding: the same kernels on the
//    same shapes); at other sizes the GEMMs see more rows, so cuBLAS may pick another kernel:
//    within kIsolationTolerance, the bit-identical share printed;
//  * slots outside a step keep their state bit for bit (padding rows touch no real slot).
class CudaDecodeGraphTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { XLSTM_SKIP_WITHOUT_CUDA(); }
};

TEST_P(CudaDecodeGraphTest, GraphReplayIsBitIdenticalToEagerLaunches) {
  const bool fp32 = GetParam();
  constexpr int32_t kSlots = 16;
  XLSTM_ASSERT_OK_AND_ASSIGN(auto weights, ModelWeights::Load(FixtureDir("default")));
  CudaBackendOptions options = Options(fp32, kSlots);
  options.decode_path = DecodePath::kGraphs;
  XLSTM_ASSERT_OK_AND_ASSIGN(auto graphs, CudaBackend::Create(*weights, options));
  options.decode_path = DecodePath::kBuckets;
  XLSTM_ASSERT_OK_AND_ASSIGN(auto eager, CudaBackend::Create(*weights, options));
  options.decode_path = DecodePath::kGeneral;
  XLSTM_ASSERT_OK_AND_ASSIGN(auto general, CudaBackend::Create(*weights, options));
  ASSERT_EQ(graphs->num_slots(), kSlots);
  CudaBackend* const backends[] = {graphs.get(), eager.get(), general.get()};
  const int64_t vocab = graphs->config().vocab_size;

  // Every slot gets its own prompt, in one general step (identical on the three backends).
  std::vector<std::vector<int32_t>> prompts;
  std::vector<ForwardRow> prefill;
  for (int32_t slot = 0; slot < kSlots; ++slot) {
    prompts.push_back(RandomIds(3 + slot, vocab, 500 + slot));
  }
  for (int32_t slot = 0; slot < kSlots; ++slot) {
    prefill.push_back({slot, prompts[slot], LogitsMode::kNone});
  }
  for (CudaBackend* b : backends) {
    XLSTM_ASSERT_OK_AND_ASSIGN(const auto ignored, RunRows(*b, prefill));
  }

  // The same states on all three, or a later comparison means nothing.
  auto states_of = [&](CudaBackend& b, std::vector<std::vector<float>>& out) {
    out.clear();
    for (int32_t slot = 0; slot < kSlots; ++slot) {
      XLSTM_ASSERT_OK_AND_ASSIGN(std::vector<float> state, b.ReadSlot(slot));
      out.push_back(std::move(state));
    }
  };
  std::mt19937 rng(77);
  std::vector<int32_t> order(kSlots);
  std::vector<std::vector<float>> before, after_graphs, after_eager, after_general;
  // Bucket sizes first, while the general backend's states are still bit-identical to the
  // others; then sizes that need padding.
  const int32_t sizes[] = {1, 2, 4, 8, 16, 3, 5, 13, 7, 16};
  bool general_in_step = true;  // general's states still equal the graphs' bit for bit
  for (size_t round = 0; round < std::size(sizes); ++round) {
    const int32_t n = sizes[round];
    const bool bucket = (n & (n - 1)) == 0;
    SCOPED_TRACE(absl::StrCat("round ", round, ": ", n, " rows"));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);  // any set of slots, in any order
    const std::vector<int32_t> tokens = RandomIds(n, vocab, 900 + static_cast<uint32_t>(round));
    std::vector<ForwardRow> rows;
    for (int32_t i = 0; i < n; ++i) {
      rows.push_back({order[i], absl::MakeConstSpan(&tokens[i], 1), LogitsMode::kLast});
    }
    states_of(*graphs, before);
    XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> g, RunRows(*graphs, rows));
    XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> e, RunRows(*eager, rows));
    XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> c, RunRows(*general, rows));
    ASSERT_EQ(static_cast<int64_t>(g.size()), n * vocab);
    EXPECT_TRUE(BitIdentical(g, e)) << "graph replay vs the same launches made eagerly";
    if (bucket && general_in_step) {
      EXPECT_TRUE(BitIdentical(g, c)) << "a full bucket vs the general path";
    } else {
      double worst = 0;
      int64_t identical = 0;
      EXPECT_TRUE(LogitsClose(g, c, vocab, kIsolationTolerance, &worst, &identical));
      Report(absl::StrCat(ModeName(fp32), " decode bucket vs general, ", n,
                          " rows: max relative logit error"),
             worst);
      Report(absl::StrCat(ModeName(fp32), " decode bucket vs general, ", n,
                          " rows: bit-identical rows"),
             static_cast<double>(identical));
      general_in_step = general_in_step && identical == n;
    }
    states_of(*graphs, after_graphs);
    states_of(*eager, after_eager);
    states_of(*general, after_general);
    std::vector<bool> stepped(kSlots, false);
    for (int32_t i = 0; i < n; ++i) stepped[order[i]] = true;
    for (int32_t slot = 0; slot < kSlots; ++slot) {
      EXPECT_TRUE(BitIdentical(after_graphs[slot], after_eager[slot])) << "slot " << slot;
      if (!stepped[slot]) {
        EXPECT_TRUE(BitIdentical(after_graphs[slot], before[slot]))
            << "slot " << slot << " was not in the step";
      } else if (general_in_step) {
        EXPECT_TRUE(BitIdentical(after_graphs[slot], after_general[slot])) << "slot " << slot;
      }
    }
  }

  // Device sampling and device argmax after a graph: the same tokens as after eager launches.
  SamplingParams greedy;
  greedy.temperature = 0;
  SamplingParams hot;
  hot.temperature = 0.8;
  hot.top_p = 0.95;
  hot.seed = 5;
  for (const int32_t n : {6, 11}) {
    SCOPED_TRACE(absl::StrCat(n, " sampled rows"));
    const std::vector<int32_t> tokens = RandomIds(n, vocab, 1200 + static_cast<uint32_t>(n));
    std::vector<std::vector<SampleSpec>> specs(n);
    std::vector<ForwardRow> rows;
    for (int32_t i = 0; i < n; ++i) {
      specs[i] = {{i % 2 == 0 ? greedy : hot, static_cast<uint64_t>(i), {}, true, 2}};
      ForwardRow row{i, absl::MakeConstSpan(&tokens[i], 1), LogitsMode::kNone};
      row.samples = specs[i];
      rows.push_back(row);
    }
    ForwardOutput out_graphs, out_eager;
    XLSTM_ASSERT_OK(graphs->Forward(rows, out_graphs));
    XLSTM_ASSERT_OK(eager->Forward(rows, out_eager));
    ASSERT_EQ(out_graphs.samples.size(), static_cast<size_t>(n));
    ASSERT_EQ(out_eager.samples.size(), static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) {
      EXPECT_EQ(out_graphs.samples[i].token, out_eager.samples[i].token) << "row " << i;
      EXPECT_EQ(out_graphs.samples[i].logprob, out_eager.samples[i].logprob) << "row " << i;
    }
    std::vector<int32_t> ids_graphs, ids_eager;
    for (ForwardRow& row : rows) {
      row.samples = {};
      row.logits = LogitsMode::kLast;
    }
    XLSTM_ASSERT_OK(graphs->ForwardGreedy(rows, ids_graphs));
    XLSTM_ASSERT_OK(eager->ForwardGreedy(rows, ids_eager));
    EXPECT_EQ(ids_graphs, ids_eager);
    ASSERT_EQ(ids_graphs.size(), static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) {
      XLSTM_ASSERT_OK_AND_ASSIGN(const auto a, graphs->ReadSlot(i));
      XLSTM_ASSERT_OK_AND_ASSIGN(const auto b, eager->ReadSlot(i));
      EXPECT_TRUE(BitIdentical(a, b)) << "slot " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(WeightModes, CudaDecodeGraphTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(ModeName(info.param));
                         });

// Programmatic dependent launch (engine/cuda/dependent_launch.h) lets a kernel's blocks start
// before its predecessor has finished; a kernel that read its inputs before waiting would see
// stale or half-written data. Two backends on the same weights, one whose kernels (and decode
// graphs, captured at Create) use it and one in plain stream order, take the same prefill
// (long rows across several workspace passes, with 1-token rows beside them) and decode steps
// (graphs at bucket sizes and padded sizes, sampled and greedy): logits, samples and every slot's
// state must be bit-identical, several times over (a race need not show on the first try).
class CudaDependentLaunchTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { XLSTM_SKIP_WITHOUT_CUDA(); }
  void TearDown() override { SetDependentLaunch(true); }
};

TEST_P(CudaDependentLaunchTest, ResultsAreBitIdenticalToPlainStreamOrder) {
  const bool fp32 = GetParam();
  constexpr int32_t kSlots = 8;
  XLSTM_ASSERT_OK_AND_ASSIGN(auto weights, ModelWeights::Load(FixtureDir("default")));
  CudaBackendOptions options = Options(fp32, kSlots);
  options.max_step_tokens = 64;  // rows of 150 tokens take several passes
  SetDependentLaunch(false);
  XLSTM_ASSERT_OK_AND_ASSIGN(auto plain, CudaBackend::Create(*weights, options));
  SetDependentLaunch(true);
  XLSTM_ASSERT_OK_AND_ASSIGN(auto dependent, CudaBackend::Create(*weights, options));
  const int64_t vocab = plain->config().vocab_size;
  // Runs `rows` on both backends, each with its own launch mode, and compares.
  auto both = [&](const std::vector<ForwardRow>& rows, const std::string& what) {
    SCOPED_TRACE(what);
    SetDependentLaunch(false);
    ForwardOutput out_plain, out_dependent;
    XLSTM_ASSERT_OK(plain->Forward(rows, out_plain));
    SetDependentLaunch(true);
    XLSTM_ASSERT_OK(dependent->Forward(rows, out_dependent));
    EXPECT_TRUE(BitIdentical(out_plain.logits, out_dependent.logits)) << "logits";
    ASSERT_EQ(out_plain.samples.size(), out_dependent.samples.size());
    for (size_t i = 0; i < out_plain.samples.size(); ++i) {
      EXPECT_EQ(out_plain.samples[i].token, out_dependent.samples[i].token) << "sample " << i;
      EXPECT_EQ(out_plain.samples[i].logprob, out_dependent.samples[i].logprob) << "sample " << i;
    }
    for (int32_t slot = 0; slot < kSlots; ++slot) {
      XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> a, plain->ReadSlot(slot));
      XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> b, dependent->ReadSlot(slot));
      EXPECT_TRUE(BitIdentical(a, b)) << "slot " << slot;
    }
  };
  SamplingParams hot;
  hot.temperature = 0.8;
  hot.top_p = 0.95;
  hot.seed = 11;
  for (int repeat = 0; repeat < 3; ++repeat) {
    SCOPED_TRACE(absl::StrCat("repeat ", repeat));
    for (CudaBackend* b : {plain.get(), dependent.get()}) {
      for (int32_t slot = 0; slot < kSlots; ++slot) XLSTM_ASSERT_OK(b->ResetSlot(slot));
    }
    std::vector<std::vector<int32_t>> prompts;
    for (int32_t slot = 0; slot < kSlots; ++slot) {
      const int64_t length = slot % 3 == 0 ? 150 : slot % 3 == 1 ? 1 : 17;
      prompts.push_back(RandomIds(length, vocab, 3000 + 100 * repeat + slot));
    }
    std::vector<ForwardRow> prefill;
    for (int32_t slot = 0; slot < kSlots; ++slot) {
      prefill.push_back(
          {slot, prompts[slot], slot % 2 == 0 ? LogitsMode::kLast : LogitsMode::kAll});
    }
    both(prefill, "prefill");
    for (const int32_t n : {1, 2, 3, 8, 5}) {
      const std::vector<int32_t> tokens =
          RandomIds(n, vocab, 4000 + 100 * repeat + static_cast<uint32_t>(n));
      std::vector<std::vector<SampleSpec>> specs(n);
      std::vector<ForwardRow> rows;
      for (int32_t i = 0; i < n; ++i) {
        ForwardRow row{(i * 3 + repeat) % kSlots, absl::MakeConstSpan(&tokens[i], 1),
                       i % 2 == 0 ? LogitsMode::kLast : LogitsMode::kNone};
        if (row.logits == LogitsMode::kNone) {
          specs[i] = {{hot, static_cast<uint64_t>(i), {}, true, 2}};
          row.samples = specs[i];
        }
        rows.push_back(row);
      }
      both(rows, absl::StrCat("decode, ", n, " rows"));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(WeightModes, CudaDependentLaunchTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(ModeName(info.param));
                         });

TEST_F(CudaBackendTest, BadRowsAreRejectedWithoutTouchingAnySlot) {
  XLSTM_ASSERT_OK_AND_ASSIGN(auto backend, Make(Options(true, 8)));
  const int32_t slots = backend->num_slots();
  // Every slot holds a different non-zero state.
  for (int32_t slot = 0; slot < slots; ++slot) {
    const auto prompt = RandomIds(3 + 5 * slot, vocab_, 100 + slot);
    XLSTM_ASSERT_OK_AND_ASSIGN(const auto ignored,
                               RunRows(*backend, {{slot, prompt, LogitsMode::kNone}}));
  }
  auto snapshot = [&](std::vector<std::vector<float>>* states) {
    states->clear();
    for (int32_t slot = 0; slot < slots; ++slot) {
      auto state = backend->ReadSlot(slot);
      ASSERT_TRUE(state.ok()) << state.status();
      states->push_back(std::move(*state));
    }
  };
  std::vector<std::vector<float>> before, after;
  ASSERT_NO_FATAL_FAILURE(snapshot(&before));

  const auto five = RandomIds(5, vocab_, 1), one = RandomIds(1, vocab_, 2);
  std::vector<int32_t> over_vocab = RandomIds(4, vocab_, 3), negative = RandomIds(4, vocab_, 4);
  over_vocab[2] = static_cast<int32_t>(vocab_);
  negative[1] = -1;
  const std::vector<int32_t> empty;
  struct BadCase {
    const char* name;
    ForwardRow row;
    bool out_of_range_ok;  // OutOfRange accepted too (as CpuBackend answers for a slot)
  };
  const BadCase cases[] = {
      {"slot -1", {-1, one, LogitsMode::kLast}, true},
      {"slot == num_slots", {slots, one, LogitsMode::kLast}, true},
      {"slot twice", {0, one, LogitsMode::kLast}, false},
      {"empty tokens", {3, empty, LogitsMode::kLast}, false},
      {"token == vocab", {4, over_vocab, LogitsMode::kAll}, false},
      {"token -1", {5, negative, LogitsMode::kLast}, false},
  };
  for (const BadCase& bad : cases) {
    SCOPED_TRACE(bad.name);
    // Valid rows first, so that rejecting the bad one must happen before any work.
    const std::vector<ForwardRow> rows = {
        {0, five, LogitsMode::kLast}, {1, one, LogitsMode::kAll}, bad.row};
    std::vector<float> logits;
    const absl::Status status = ForwardLogits(*backend, rows, logits);
    ASSERT_FALSE(status.ok());
    if (bad.out_of_range_ok && status.code() == absl::StatusCode::kOutOfRange) {
      SUCCEED();
    } else {
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    }
    std::vector<int32_t> ids;
    const std::vector<ForwardRow> greedy_rows = {{0, five, LogitsMode::kLast}, bad.row};
    EXPECT_FALSE(backend->ForwardGreedy(greedy_rows, ids).ok());
    ASSERT_NO_FATAL_FAILURE(snapshot(&after));
    for (int32_t slot = 0; slot < slots; ++slot) {
      EXPECT_TRUE(BitIdentical(after[slot], before[slot])) << "slot " << slot;
    }
  }

  EXPECT_FALSE(backend->ResetSlot(-1).ok());
  EXPECT_FALSE(backend->ResetSlot(slots).ok());
  EXPECT_FALSE(backend->CopySlot(-1, 0).ok());
  EXPECT_FALSE(backend->CopySlot(0, slots).ok());
  ASSERT_NO_FATAL_FAILURE(snapshot(&after));
  for (int32_t slot = 0; slot < slots; ++slot) {
    EXPECT_TRUE(BitIdentical(after[slot], before[slot])) << "slot " << slot;
  }

  // Rejections are not device faults: the backend still works.
  XLSTM_ASSERT_OK(backend->Synchronize());
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> logits,
                             RunRows(*backend, {{0, five, LogitsMode::kLast}}));
  EXPECT_EQ(static_cast<int64_t>(logits.size()), vocab_);
}

ModelConfig SmallRandomConfig() {
  ModelConfig config;  // the tiny config of docs §9
  config.vocab_size = 1000;
  config.hidden_size = config.embedding_dim = 256;
  config.num_blocks = config.num_hidden_layers = 2;
  config.num_heads = 4;
  return config;
}

class CudaRandomModelTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { XLSTM_SKIP_WITHOUT_CUDA(); }
};

TEST_P(CudaRandomModelTest, CreateRandomIsDeterministicInTheSeed) {
  const ModelConfig config = SmallRandomConfig();
  const CudaBackendOptions options = Options(GetParam(), 4);
  XLSTM_ASSERT_OK_AND_ASSIGN(auto a, CudaBackend::CreateRandom(config, 7, options));
  XLSTM_ASSERT_OK_AND_ASSIGN(auto b, CudaBackend::CreateRandom(config, 7, options));
  XLSTM_ASSERT_OK_AND_ASSIGN(auto c, CudaBackend::CreateRandom(config, 8, options));
  EXPECT_EQ(a->config().vocab_size, config.vocab_size);
  EXPECT_EQ(a->config().hidden_size, config.hidden_size);
  EXPECT_EQ(a->config().num_blocks, config.num_blocks);
  EXPECT_EQ(a->weight_type(), GetParam() ? ActType::kF32 : ActType::kBF16);
  EXPECT_EQ(a->num_slots(), 4);

  const auto ids = RandomIds(20, config.vocab_size, 1);
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> la,
                             RunRows(*a, {{1, ids, LogitsMode::kAll}}));
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> lb,
                             RunRows(*b, {{1, ids, LogitsMode::kAll}}));
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> lc,
                             RunRows(*c, {{1, ids, LogitsMode::kAll}}));
  ASSERT_EQ(static_cast<int64_t>(la.size()), 20 * config.vocab_size);
  const float cap = static_cast<float>(*config.output_logit_soft_cap);
  float lo = la[0], hi = la[0];
  for (float v : la) {
    ASSERT_TRUE(std::isfinite(v));
    ASSERT_LE(std::fabs(v), cap);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  EXPECT_LT(lo, hi) << "all logits equal";
  EXPECT_TRUE(BitIdentical(la, lb)) << "same seed, different model";
  int64_t equal = 0;
  for (size_t i = 0; i < la.size(); ++i) equal += la[i] == lc[i];
  EXPECT_LT(equal, static_cast<int64_t>(la.size()) / 10) << "seeds 7 and 8 give the same model";
  XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> state, a->ReadSlot(1));
  EXPECT_FALSE(AllZero(state));
}

INSTANTIATE_TEST_SUITE_P(WeightModes, CudaRandomModelTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(ModeName(info.param));
                         });

TEST_F(CudaBackendTest, LoadEqualsCreateFromLoadedWeights) {
  for (const std::string case_name : {"default", "softcaps_sharded", "fused"}) {
    SCOPED_TRACE(case_name);
    XLSTM_ASSERT_OK_AND_ASSIGN(auto weights, ModelWeights::Load(FixtureDir(case_name)));
    for (bool fp32 : {true, false}) {
      SCOPED_TRACE(ModeName(fp32));
      XLSTM_ASSERT_OK_AND_ASSIGN(auto loaded,
                                 CudaBackend::Load(FixtureDir(case_name), Options(fp32, 2)));
      XLSTM_ASSERT_OK_AND_ASSIGN(auto created, CudaBackend::Create(*weights, Options(fp32, 2)));
      EXPECT_EQ(loaded->config().num_blocks, weights->config.num_blocks);
      EXPECT_EQ(loaded->config().vocab_size, weights->config.vocab_size);
      EXPECT_EQ(loaded->weight_bytes(), created->weight_bytes());
      const auto ids = RandomIds(40, weights->config.vocab_size, 5);
      XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> a,
                                 RunRows(*loaded, {{1, ids, LogitsMode::kAll}}));
      XLSTM_ASSERT_OK_AND_ASSIGN(const std::vector<float> b,
                                 RunRows(*created, {{1, ids, LogitsMode::kAll}}));
      EXPECT_TRUE(BitIdentical(a, b));
    }
  }
  EXPECT_FALSE(CudaBackend::Load(FixtureDir("no_such_case"), Options(true, 2)).ok());
}

}  // namespace
}  // namespace xlstm::engine::cuda
