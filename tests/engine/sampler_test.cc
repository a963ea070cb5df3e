#include "engine/sampling/sampler.h"

#include <cmath>
#include <map>

#include "engine/sampling/logprobs.h"
#include "gtest/gtest.h"

namespace xlstm::engine {
namespace {

const std::vector<float> kLogits = {1.0f, 3.0f, 2.5f, -1.0f, 3.0f, 0.0f};

TEST(SamplerTest, GreedyPicksTheFirstMaximum) {
  SamplingParams p;
  p.temperature = 0;
  EXPECT_EQ(Sampler(p).Sample(kLogits, 0), 1);
  EXPECT_EQ(Argmax(kLogits), 1);
}

TEST(SamplerTest, SameSeedAndStepGiveTheSameToken) {
  SamplingParams p;
  p.seed = 42;
  Sampler a(p), b(p);
  for (uint64_t step = 0; step < 50; ++step)
    EXPECT_EQ(a.Sample(kLogits, step), b.Sample(kLogits, step));
}

TEST(SamplerTest, FrequenciesFollowTheSoftmax) {
  SamplingParams p;
  p.seed = 7;
  Sampler sampler(p);
  std::map<int32_t, int> counts;
  const int n = 20000;
  for (int step = 0; step < n; ++step) ++counts[sampler.Sample(kLogits, step)];
  for (int32_t t = 0; t < static_cast<int32_t>(kLogits.size()); ++t) {
    const double expected = std::exp(TokenLogProb(kLogits, t));
    EXPECT_NEAR(counts[t] / static_cast<double>(n), expected, 0.015) << "token " << t;
  }
}

TEST(SamplerTest, TopKTopPAndMinPRestrictTheCandidates) {
  SamplingParams p;
  p.seed = 3;
  p.top_k = 2;  // tokens 1 and 4 (tie broken by id)
  for (uint64_t s = 0; s < 200; ++s) {
    const int32_t t = Sampler(p).Sample(kLogits, s);
    EXPECT_TRUE(t == 1 || t == 4) << t;
  }
  p = SamplingParams{};
  p.top_p = 0.01;  // only the most likely token survives
  for (uint64_t s = 0; s < 50; ++s) EXPECT_EQ(Sampler(p).Sample(kLogits, s), 1);
  p = SamplingParams{};
  p.min_p = 0.5;  // p(2.5)/p(3) = 0.61 stays, the rest drop
  for (uint64_t s = 0; s < 200; ++s) {
    const int32_t t = Sampler(p).Sample(kLogits, s);
    EXPECT_TRUE(t == 1 || t == 4 || t == 2) << t;
  }
}

TEST(SamplerTest, PenaltiesMoveGreedyAwayFromSeenTokens) {
  SamplingParams p;
  p.temperature = 0;
  p.repetition_penalty = 2.0;
  Sampler rep(p);
  rep.ObservePrompt(1);
  rep.ObservePrompt(4);
  EXPECT_EQ(rep.Sample(kLogits, 0), 2);  // 3/2 < 2.5
  p.repetition_penalty = 1.0;
  p.frequency_penalty = 0.4;
  Sampler freq(p);
  freq.ObserveGenerated(1);
  freq.ObserveGenerated(1);
  EXPECT_EQ(freq.Sample(kLogits, 0), 4);
}

TEST(SamplerTest, ValidateNamesTheFieldAndLimit) {
  SamplingParams p;
  p.top_p = 0;
  EXPECT_EQ(std::string(p.Validate().message()), "top_p is 0, must be in (0, 1]");
  p = SamplingParams{};
  p.temperature = -1;
  EXPECT_EQ(std::string(p.Validate().message()), "temperature is -1, must be >= 0");
  EXPECT_TRUE(SamplingParams{}.Validate().ok());
}

TEST(SamplerTest, CounterUniformIsInUnitIntervalAndVaries) {
  double sum = 0;
  for (uint64_t i = 0; i < 1000; ++i) {
    const double u = CounterUniform(1, i);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 1000, 0.5, 0.05);
  EXPECT_NE(CounterUniform(1, 0), CounterUniform(2, 0));
}

TEST(LogProbsTest, TopLogProbsAreSortedAndNormalized) {
  auto top = TopLogProbs(kLogits, 3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].token, 1);
  EXPECT_EQ(top[1].token, 4);
  EXPECT_EQ(top[2].token, 2);
  double total = 0;
  for (size_t t = 0; t < kLogits.size(); ++t) total += std::exp(TokenLogProb(kLogits, t));
  EXPECT_NEAR(total, 1.0, 1e-12);
}

}  // namespace
}  // namespace xlstm::engine
