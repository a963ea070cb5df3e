// DeviceSampler (engine/cuda/device_sampler.h) against the host reference of
// engine/sampling/token_choice.h on the same logits: every token id must be identical to
// ChooseToken's, every log-prob within 1e-6 of ChooseToken's / ScoreTarget's, every top list the
// same ids in the same order.
//
// The logits are random (fixed seeds) with the shapes that decide ties and cuts: exact ties
// (quantized values, all-equal rows, -0.0 next to +0.0), -inf entries (rows masked down to a few
// tokens), rows so wide that exp underflows to 0 at low temperature, and peaked rows like a real
// model's. Specs mix greedy and sampled jobs, temperatures, top-k (1, 5, beyond the vocabulary),
// top-p, min-p, repetition / presence / frequency penalties and bans (the argmax too), many jobs
// per call (more than one sort launch holds, more than one staging batch holds) and several
// jobs per row.
//
// The one place where the device may legitimately differ is a double sum landing within ~1e-15
// of a boundary (the device sums in another order). Random logits never get there, but an
// all-equal row can: its cumulative probabilities are multiples of 1/m, and top_p * m may be an
// integer exactly. Those specs are given top_p = 1 (see AvoidExactTopPBoundary).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/cuda/device_sampler.h"
#include "engine/sampling/logprobs.h"
#include "engine/sampling/sampler.h"
#include "engine/sampling/token_choice.h"
#include "gtest/gtest.h"
#include "tests/cuda/cuda_test_util.h"

namespace xlstm::engine::cuda {
namespace {

using ::xlstm::testing::BitIdentical;
using ::xlstm::testing::DeviceArray;
using ::xlstm::testing::TestStream;

constexpr double kLogprobTolerance = 1e-6;
constexpr float kInf = std::numeric_limits<float>::infinity();
// Failures described in full before the rest are only counted.
constexpr int kMaxReportedFailures = 12;

enum class RowKind { kNormal, kQuantized, kAllEqual, kMasked, kSignedZeros, kPeaked, kWide };
constexpr int kRowKinds = 7;

const char* KindName(RowKind kind) {
  switch (kind) {
    case RowKind::kNormal:
      return "normal";
    case RowKind::kQuantized:
      return "quantized (ties)";
    case RowKind::kAllEqual:
      return "all equal";
    case RowKind::kMasked:
      return "masked (-inf)";
    case RowKind::kSignedZeros:
      return "signed zeros";
    case RowKind::kPeaked:
      return "peaked";
    case RowKind::kWide:
      return "wide (underflow)";
  }
  return "?";
}

std::vector<float> MakeRow(RowKind kind, int64_t vocab, std::mt19937_64& rng) {
  std::vector<float> row(static_cast<size_t>(vocab));
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_int_distribution<int64_t> any_token(0, vocab - 1);
  switch (kind) {
    case RowKind::kNormal:
      for (float& v : row) v = static_cast<float>(2.0 * normal(rng));
      break;
    case RowKind::kQuantized:  // multiples of 0.5 in about [-5, 5]: many exact ties
      for (float& v : row) v = static_cast<float>(std::round(3.0 * normal(rng)) * 0.5);
      break;
    case RowKind::kAllEqual:
      std::fill(row.begin(), row.end(), 0.75f);
      break;
    case RowKind::kMasked: {
      const bool few = rng() % 2 == 0;  // all but two masked, else 30%
      for (float& v : row) {
        v = (few ? true : rng() % 10 < 3) ? -kInf : static_cast<float>(2.0 * normal(rng));
      }
      row[static_cast<size_t>(any_token(rng))] = 1.25f;
      row[static_cast<size_t>(any_token(rng))] = 0.5f;
      break;
    }
    case RowKind::kSignedZeros: {  // zeros of both signs, often the maximum
      const float values[] = {-0.0f, 0.0f, -0.5f, -1.0f, 0.0f, -0.0f, 0.25f};
      const int choices = rng() % 2 == 0 ? 6 : 7;
      for (float& v : row) v = values[rng() % choices];
      break;
    }
    case RowKind::kPeaked:
      for (float& v : row) v = static_cast<float>(normal(rng));
      row[static_cast<size_t>(any_token(rng))] = 9.0f;
      row[static_cast<size_t>(any_token(rng))] = 7.5f;
      break;
    case RowKind::kWide:  // differences of hundreds: exp underflows to 0 at T = 0.3
      for (float& v : row) v = static_cast<float>(80.0 * normal(rng));
      break;
  }
  return row;
}

// Logits [rows, vocab], row r of kind r % kRowKinds.
struct Logits {
  int64_t rows = 0, vocab = 0;
  std::vector<float> host;
  std::vector<RowKind> kinds;
  absl::Span<const float> row(int64_t r) const {
    return absl::MakeConstSpan(host).subspan(static_cast<size_t>(r * vocab),
                                             static_cast<size_t>(vocab));
  }
};

Logits MakeLogits(int64_t rows, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Logits l;
  l.rows = rows;
  l.vocab = vocab;
  for (int64_t r = 0; r < rows; ++r) {
    const RowKind kind = static_cast<RowKind>(r % kRowKinds);
    const std::vector<float> row = MakeRow(kind, vocab, rng);
    l.host.insert(l.host.end(), row.begin(), row.end());
    l.kinds.push_back(kind);
  }
  return l;
}

template <typename T>
T Pick(std::mt19937_64& rng, std::initializer_list<T> values) {
  return *(values.begin() + rng() % values.size());
}

// An all-equal candidate set (after adjustments and top-k, ignoring masked tokens) of m tokens
// has cumulative probabilities i / m: if top_p * m is an integer, the top-p cut lands exactly on a
// sum and only the summation order decides it (see the file comment). Such specs get top_p = 1.
void AvoidExactTopPBoundary(SampleSpec& spec, absl::Span<const float> raw) {
  if (spec.params.top_p >= 1.0 || spec.params.greedy()) return;
  std::vector<float> adjusted(raw.begin(), raw.end());
  ApplyAdjustments(spec.params, spec.adjustments, absl::MakeSpan(adjusted));
  std::sort(adjusted.begin(), adjusted.end(), std::greater<float>());
  const size_t k = spec.params.top_k > 0
                       ? std::min(adjusted.size(), static_cast<size_t>(spec.params.top_k))
                       : adjusted.size();
  size_t m = 0;
  while (m < k && adjusted[m] == adjusted[0]) ++m;
  bool rest_masked = true;
  for (size_t i = m; i < k; ++i) rest_masked &= adjusted[i] == -kInf;
  if (!rest_masked) return;
  const double x = spec.params.top_p * static_cast<double>(m);
  if (std::fabs(x - std::round(x)) < 1e-6) spec.params.top_p = 1.0;
}

// Jobs with their specs and the adjustment lists the specs point into.
struct JobSet {
  std::vector<std::vector<LogitAdjustment>> adjustments;
  std::vector<SampleSpec> specs;
  std::vector<SampleJob> jobs;
};

struct SpecOptions {
  int max_adjustments = 24;  // random lists of up to this many tokens (capped at vocab)
  int min_adjustments = 0;
};

JobSet MakeJobs(const Logits& logits, int num_jobs, uint64_t seed, const SpecOptions& options) {
  std::mt19937_64 rng(seed);
  const int64_t vocab = logits.vocab;
  JobSet set;
  set.adjustments.resize(static_cast<size_t>(num_jobs));
  set.specs.resize(static_cast<size_t>(num_jobs));
  for (int j = 0; j < num_jobs; ++j) {
    const int32_t row = static_cast<int32_t>(rng() % logits.rows);
    SampleSpec& spec = set.specs[static_cast<size_t>(j)];
    SamplingParams& p = spec.params;
    p.temperature = Pick(rng, {0.0, 0.3, 1.0, 2.0});
    p.top_k = Pick<int32_t>(rng, {0, 1, 5, static_cast<int32_t>(vocab + 3)});
    p.top_p = Pick(rng, {1.0, 0.9, 0.3});
    p.min_p = Pick(rng, {0.0, 0.05, 0.5});
    p.repetition_penalty = Pick(rng, {1.0, 1.3, 0.8});
    p.presence_penalty = Pick(rng, {0.0, 0.5, -0.3});
    p.frequency_penalty = Pick(rng, {0.0, 0.2});
    p.seed = rng();
    spec.step = rng() % 1000;
    spec.logprob = rng() % 2 == 0;
    spec.top_logprobs = Pick(rng, {0, 0, 1, 5, 20});

    // Distinct tokens: the "prompt and output" of the sequence.
    std::vector<LogitAdjustment>& list = set.adjustments[static_cast<size_t>(j)];
    const int64_t cap = std::min<int64_t>(options.max_adjustments, vocab);
    const int64_t lo = std::min<int64_t>(options.min_adjustments, cap);
    const int64_t count = lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(cap - lo + 1));
    std::unordered_set<int32_t> used;
    while (static_cast<int64_t>(list.size()) < count) {
      const int32_t token = static_cast<int32_t>(rng() % vocab);
      if (!used.insert(token).second) continue;
      LogitAdjustment a;
      a.token = token;
      a.repeated = rng() % 4 != 0;
      const int generated = static_cast<int>(rng() % 3);
      if (generated > 0) {
        a.subtract = static_cast<float>(p.presence_penalty + p.frequency_penalty * generated);
      }
      a.banned = rng() % 20 == 0;
      list.push_back(a);
    }
    if (rng() % 5 == 0) {  // ban the row's argmax (e.g. EOS before min_new_tokens)
      const int32_t argmax = Argmax(logits.row(row));
      if (used.count(argmax) == 0) {
        LogitAdjustment a;
        a.token = argmax;
        list.push_back(a);
      }
      for (LogitAdjustment& a : list) a.banned |= a.token == argmax;
    }
    std::shuffle(list.begin(), list.end(), rng);  // any order
    spec.adjustments = list;
    AvoidExactTopPBoundary(spec, logits.row(row));
    set.jobs.push_back(SampleJob{row, &spec});
  }
  return set;
}

std::string Describe(const SampleSpec& spec) {
  const SamplingParams& p = spec.params;
  return absl::StrFormat(
      "T=%g top_k=%d top_p=%g min_p=%g rp=%g seed=%u step=%u adjustments=%d logprob=%d top=%d",
      p.temperature, p.top_k, p.top_p, p.min_p, p.repetition_penalty, p.seed, spec.step,
      spec.adjustments.size(), spec.logprob, spec.top_logprobs);
}

bool NearLogprob(double got, double want) {
  return got == want || std::fabs(got - want) <= kLogprobTolerance;  // == covers -inf
}

// "" when the lists agree: the same ids in order, log-probs within tolerance.
std::string CompareTop(const std::vector<TokenLogProbEntry>& got,
                       const std::vector<TokenLogProbEntry>& want) {
  if (got.size() != want.size()) {
    return absl::StrCat("top list of ", got.size(), " entries, want ", want.size());
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i].token != want[i].token || !NearLogprob(got[i].logprob, want[i].logprob)) {
      return absl::StrCat("top[", i, "] = (", got[i].token, ", ", got[i].logprob, "), want (",
                          want[i].token, ", ", want[i].logprob, ")");
    }
  }
  return "";
}

class DeviceSamplerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    XLSTM_SKIP_WITHOUT_CUDA();
    XLSTM_ASSERT_OK(stream_.Create());
  }

  // Runs `set` on the device and compares every result with ChooseToken.
  void ExpectSampleMatchesHost(DeviceSampler& sampler, const Logits& logits, const JobSet& set) {
    XLSTM_ASSERT_OK_AND_ASSIGN(auto device_logits,
                               DeviceArray<float>::FromHost(absl::MakeConstSpan(logits.host)));
    std::vector<TokenChoice> got;
    got.push_back(TokenChoice{});  // Sample appends
    XLSTM_ASSERT_OK(sampler.Sample(device_logits.get(), logits.rows, set.jobs, got));
    ASSERT_EQ(got.size(), set.jobs.size() + 1);
    int failures = 0, greedy = 0, with_logprob = 0;
    for (size_t j = 0; j < set.jobs.size(); ++j) {
      const SampleJob& job = set.jobs[j];
      const TokenChoice want = ChooseToken(*job.spec, logits.row(job.logits_row));
      const TokenChoice& g = got[j + 1];
      greedy += job.spec->params.greedy() ? 1 : 0;
      std::string problem;
      if (g.token != want.token) {
        problem = absl::StrCat("token ", g.token, ", want ", want.token);
      } else if (!NearLogprob(g.logprob, want.logprob)) {
        problem = absl::StrCat("logprob ", g.logprob, ", want ", want.logprob);
      } else {
        problem = CompareTop(g.top, want.top);
      }
      with_logprob += job.spec->logprob || job.spec->top_logprobs > 0 ? 1 : 0;
      if (!problem.empty() && ++failures <= kMaxReportedFailures) {
        ADD_FAILURE() << "job " << j << " (vocab " << logits.vocab << ", row " << job.logits_row
                      << ", " << KindName(logits.kinds[static_cast<size_t>(job.logits_row)]) << ", "
                      << Describe(*job.spec) << "): " << problem;
      }
    }
    EXPECT_EQ(failures, 0) << "of " << set.jobs.size() << " jobs";
    // The logits are read only.
    XLSTM_ASSERT_OK_AND_ASSIGN(std::vector<float> after, device_logits.Download());
    EXPECT_TRUE(BitIdentical(after, logits.host));
    std::printf(
        "[   info   ] vocab %lld: %zu jobs (%d greedy, %d with log-probs) match "
        "ChooseToken\n",
        static_cast<long long>(logits.vocab), set.jobs.size(), greedy, with_logprob);
  }

  // Score jobs on every row: random targets, the argmax, a later tied maximum, a masked token.
  void ExpectScoreMatchesHost(DeviceSampler& sampler, const Logits& logits, int num_jobs,
                              uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<ScoreJob> jobs;
    for (int j = 0; j < num_jobs; ++j) {
      ScoreJob job;
      job.logits_row = static_cast<int32_t>(rng() % logits.rows);
      const absl::Span<const float> row = logits.row(job.logits_row);
      const int32_t argmax = Argmax(row);
      switch (rng() % 4) {
        case 0:
          job.target = argmax;
          break;
        case 1: {  // the last index holding the maximum (not the argmax when tied)
          int32_t last = argmax;
          for (size_t i = 0; i < row.size(); ++i) {
            if (row[i] == row[static_cast<size_t>(argmax)]) last = static_cast<int32_t>(i);
          }
          job.target = last;
          break;
        }
        case 2: {  // a masked token when there is one
          job.target = static_cast<int32_t>(rng() % logits.vocab);
          for (size_t i = 0; i < row.size(); ++i) {
            if (row[i] == -kInf) job.target = static_cast<int32_t>(i);
          }
          break;
        }
        default:
          job.target = static_cast<int32_t>(rng() % logits.vocab);
      }
      job.top_logprobs = Pick(rng, {0, 1, 5, 20});
      jobs.push_back(job);
    }
    XLSTM_ASSERT_OK_AND_ASSIGN(auto device_logits,
                               DeviceArray<float>::FromHost(absl::MakeConstSpan(logits.host)));
    std::vector<TargetScore> got;
    XLSTM_ASSERT_OK(sampler.Score(device_logits.get(), logits.rows, jobs, got));
    ASSERT_EQ(got.size(), jobs.size());
    int failures = 0;
    for (size_t j = 0; j < jobs.size(); ++j) {
      const ScoreJob& job = jobs[j];
      const TargetScore want =
          ScoreTarget(logits.row(job.logits_row), job.target, job.top_logprobs);
      std::string problem;
      if (!NearLogprob(got[j].logprob, want.logprob)) {
        problem = absl::StrCat("logprob ", got[j].logprob, ", want ", want.logprob);
      } else if (got[j].is_argmax != want.is_argmax) {
        problem = absl::StrCat("is_argmax ", got[j].is_argmax, ", want ", want.is_argmax);
      } else {
        problem = CompareTop(got[j].top, want.top);
      }
      if (!problem.empty() && ++failures <= kMaxReportedFailures) {
        ADD_FAILURE() << "score job " << j << " (vocab " << logits.vocab << ", row "
                      << job.logits_row << ", "
                      << KindName(logits.kinds[static_cast<size_t>(job.logits_row)]) << ", target "
                      << job.target << ", top " << job.top_logprobs << "): " << problem;
      }
    }
    EXPECT_EQ(failures, 0) << "of " << jobs.size() << " score jobs";
  }

  TestStream stream_;
};

TEST_F(DeviceSamplerTest, SampleMatchesChooseTokenVocab7) {
  // 1100 jobs: more than one staging batch (512 jobs) and many sort launches of 64 rows.
  XLSTM_ASSERT_OK_AND_ASSIGN(auto sampler, DeviceSampler::Create(7, 64, stream_.get()));
  const Logits logits = MakeLogits(21, 7, 101);
  ExpectSampleMatchesHost(*sampler, logits, MakeJobs(logits, 1100, 102, {}));
}

TEST_F(DeviceSamplerTest, SampleMatchesChooseTokenVocab1000) {
  XLSTM_ASSERT_OK_AND_ASSIGN(auto sampler, DeviceSampler::Create(1000, 64, stream_.get()));
  const Logits logits = MakeLogits(28, 1000, 201);
  ExpectSampleMatchesHost(*sampler, logits, MakeJobs(logits, 300, 202, {}));
}

TEST_F(DeviceSamplerTest, SampleMatchesChooseTokenVocab1000SmallSortGroups) {
  // max_rows 5: five rows per sort launch, so 300 jobs take dozens of groups.
  XLSTM_ASSERT_OK_AND_ASSIGN(auto sampler, DeviceSampler::Create(1000, 5, stream_.get()));
  EXPECT_EQ(sampler->sort_rows(), 5);
  const Logits logits = MakeLogits(14, 1000, 301);
  ExpectSampleMatchesHost(*sampler, logits, MakeJobs(logits, 300, 302, {}));
}

TEST_F(DeviceSamplerTest, SampleSpreadsLongAdjustmentListsOverBatchesVocab1000) {
  // 160 jobs with 500..1000 adjustments each (long prompts under a repetition penalty): more
  // than the 65536 adjustments one staging batch holds.
  XLSTM_ASSERT_OK_AND_ASSIGN(auto sampler, DeviceSampler::Create(1000, 64, stream_.get()));
  ASSERT_LT(sampler->adjustment_capacity(), 160 * 500);
  const Logits logits = MakeLogits(14, 1000, 401);
  SpecOptions options;
  options.min_adjustments = 500;
  options.max_adjustments = 1000;
  ExpectSampleMatchesHost(*sampler, logits, MakeJobs(logits, 160, 402, options));
}

TEST_F(DeviceSamplerTest, SampleMatchesChooseTokenVocab50304) {
  XLSTM_ASSERT_OK_AND_ASSIGN(auto sampler, DeviceSampler::Create(50304, 64, stream_.get()));
  const Logits logits = MakeLogits(14, 50304, 501);
  SpecOptions options;
  options.max_adjustments = 300;
  ExpectSampleMatchesHost(*sampler, logits, MakeJobs(logits, 120, 502, options));
}

TEST_F(DeviceSamplerTest, ScoreMatchesScoreTargetVocab7) {
  XLSTM_ASSERT_OK_AND_ASSIGN(auto sampler, DeviceSampler::Create(7, 64, stream_.get()));
  ExpectScoreMatchesHost(*sampler, MakeLogits(21, 7, 601), 1100, 602);  // > 512: two batches
}

TEST_F(DeviceSamplerTest, ScoreMatchesScoreTargetVocab1000) {
  XLSTM_ASSERT_OK_AND_ASSIGN(auto sampler, DeviceSampler::Create(1000, 64, stream_.get()));
  ExpectScoreMatchesHost(*sampler, MakeLogits(28, 1000, 701), 400, 702);
}

TEST_F(DeviceSamplerTest, ScoreMatchesScoreTargetVocab50304) {
  XLSTM_ASSERT_OK_AND_ASSIGN(auto sampler, DeviceSampler::Create(50304, 64, stream_.get()));
  ExpectScoreMatchesHost(*sampler, MakeLogits(14, 50304, 801), 200, 802);
}

TEST_F(DeviceSamplerTest, BadRowsAreRejected) {
  XLSTM_ASSERT_OK_AND_ASSIGN(auto sampler, DeviceSampler::Create(7, 4, stream_.get()));
  const Logits logits = MakeLogits(3, 7, 901);
  XLSTM_ASSERT_OK_AND_ASSIGN(auto device_logits,
                             DeviceArray<float>::FromHost(absl::MakeConstSpan(logits.host)));
  SampleSpec spec;
  for (int32_t bad_row : {3, -1}) {
    const SampleJob jobs[] = {{0, &spec}, {bad_row, &spec}};
    std::vector<TokenChoice> out(1);
    const absl::Status status = sampler->Sample(device_logits.get(), 3, jobs, out);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_EQ(out.size(), 1u) << "nothing appended on error";
  }
  {
    const ScoreJob bad_row[] = {{0, 1, 0}, {3, 1, 0}};
    const ScoreJob bad_target[] = {{0, 7, 0}};
    std::vector<TargetScore> out;
    EXPECT_EQ(sampler->Score(device_logits.get(), 3, bad_row, out).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(sampler->Score(device_logits.get(), 3, bad_target, out).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(out.empty());
  }
  // The sampler still works afterwards, and an empty call appends nothing.
  const SampleJob good[] = {{2, &spec}};
  std::vector<TokenChoice> out;
  XLSTM_ASSERT_OK(sampler->Sample(device_logits.get(), 3, {}, out));
  EXPECT_TRUE(out.empty());
  XLSTM_ASSERT_OK(sampler->Sample(device_logits.get(), 3, good, out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].token, ChooseToken(spec, logits.row(2)).token);
}

// Cost per decode step at the 7B's vocabulary (not asserted; printed for the benchmark notes).
TEST_F(DeviceSamplerTest, MeasureSampleCostVocab50304) {
  constexpr int64_t kVocab = 50304, kRows = 256;
  XLSTM_ASSERT_OK_AND_ASSIGN(auto sampler, DeviceSampler::Create(kVocab, kRows, stream_.get()));
  std::printf("[ measured ] DeviceSampler vocab %lld, max_rows %lld: workspace %.1f MiB\n",
              static_cast<long long>(kVocab), static_cast<long long>(kRows),
              static_cast<double>(sampler->workspace_bytes()) / (1 << 20));
  std::mt19937_64 rng(1001);
  std::vector<float> host(static_cast<size_t>(kRows * kVocab));
  std::normal_distribution<double> normal(0.0, 3.0);
  for (float& v : host) v = static_cast<float>(normal(rng));
  XLSTM_ASSERT_OK_AND_ASSIGN(auto device_logits,
                             DeviceArray<float>::FromHost(absl::MakeConstSpan(host)));

  // A typical chat setting: T 0.8, top-p 0.95, repetition penalty 1.1 on 64 recent tokens.
  std::vector<LogitAdjustment> penalized(64);
  for (size_t i = 0; i < penalized.size(); ++i) {
    penalized[i].token = static_cast<int32_t>(i * 701 % kVocab);
    penalized[i].repeated = true;
  }
  SampleSpec greedy;
  greedy.params.temperature = 0;
  SampleSpec sampled;
  sampled.params.temperature = 0.8;
  sampled.params.top_p = 0.95;
  sampled.params.repetition_penalty = 1.1;
  sampled.adjustments = penalized;
  SampleSpec top_k;
  top_k.params.temperature = 1.0;
  top_k.params.top_k = 50;

  auto time_call = [&](const SampleSpec& spec, int n, const char* what) {
    std::vector<SampleJob> jobs;
    for (int i = 0; i < n; ++i) jobs.push_back(SampleJob{static_cast<int32_t>(i % kRows), &spec});
    std::vector<TokenChoice> out;
    for (int i = 0; i < 2; ++i) {  // warm-up
      out.clear();
      XLSTM_ASSERT_OK(sampler->Sample(device_logits.get(), kRows, jobs, out));
    }
    constexpr int kIterations = 10;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kIterations; ++i) {
      out.clear();
      XLSTM_ASSERT_OK(sampler->Sample(device_logits.get(), kRows, jobs, out));
    }
    const double us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count() /
        kIterations;
    std::printf("[ measured ] DeviceSampler::Sample vocab %lld, %3d %s jobs: %8.1f us per call\n",
                static_cast<long long>(kVocab), n, what, us);
    if (n > 64) return;  // the host reference is slow at this size; 64 is plenty
    for (int i = 0; i < n; ++i) {
      const auto row = absl::MakeConstSpan(host).subspan(static_cast<size_t>((i % kRows) * kVocab),
                                                         static_cast<size_t>(kVocab));
      EXPECT_EQ(out[static_cast<size_t>(i)].token, ChooseToken(spec, row).token)
          << what << ", job " << i << " of " << n;
    }
  };
  for (int n : {1, 64, 256}) time_call(greedy, n, "greedy");
  for (int n : {1, 64, 256}) time_call(sampled, n, "sampled (T 0.8, top-p 0.95, 64 penalized)");
  for (int n : {1, 64, 256}) time_call(top_k, n, "sampled (T 1, top-k 50)");

  std::vector<ScoreJob> scores;
  for (int i = 0; i < 256; ++i) scores.push_back(ScoreJob{i, (i * 37) % 50304, 5});
  std::vector<TargetScore> out;
  XLSTM_ASSERT_OK(sampler->Score(device_logits.get(), kRows, scores, out));
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) {
    out.clear();
    XLSTM_ASSERT_OK(sampler->Score(device_logits.get(), kRows, scores, out));
  }
  std::printf(
      "[ measured ] DeviceSampler::Score vocab %lld, 256 targets with top 5: %8.1f us "
      "per call\n",
      static_cast<long long>(kVocab),
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() /
          10);
}

}  // namespace
}  // namespace xlstm::engine::cuda
