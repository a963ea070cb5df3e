// The host rules of token_choice.h (the reference the CUDA sampler is compared with) and the
// Backend seam's host helpers.
#include "engine/sampling/token_choice.h"

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <vector>

#include "engine/backend.h"
#include "engine/sampling/logprobs.h"
#include "gtest/gtest.h"

namespace xlstm::engine {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(TokenChoiceTest, AdjustmentsFollowHfRepetitionPenaltyThenSubtractThenBan) {
  SamplingParams p;
  p.repetition_penalty = 2.0;
  std::vector<float> logits = {4.0f, -4.0f, 1.0f, 3.0f, 5.0f};
  const std::vector<LogitAdjustment> adjust = {{0, true, 0.0f, false},   // positive: divided
                                               {1, true, 0.0f, false},   // negative: multiplied
                                               {2, false, 0.5f, false},  // presence/frequency only
                                               {3, true, 1.0f, false},   // both: 3 / 2 - 1
                                               {4, false, 0.0f, true}};  // banned
  ApplyAdjustments(p, adjust, absl::MakeSpan(logits));
  EXPECT_EQ(logits, (std::vector<float>{2.0f, -8.0f, 0.5f, 0.5f, -kInf}));
}

TEST(TokenChoiceTest, GreedyTakesTheFirstMaximumOfTheAdjustedLogits) {
  SamplingParams p;
  p.temperature = 0;
  const std::vector<float> logits = {1.0f, 3.0f, 2.5f, 3.0f};
  EXPECT_EQ(DrawToken(p, logits, 0), 1);
  const std::vector<LogitAdjustment> ban1 = {{1, false, 0.0f, true}};
  EXPECT_EQ(ChooseToken({p, 0, ban1}, logits).token, 3);
}

TEST(TokenChoiceTest, DrawsFollowTheTemperedSoftmaxOfTheTopK) {
  SamplingParams p;
  p.temperature = 0.7;
  p.top_k = 3;
  p.seed = 11;
  const std::vector<float> logits = {0.5f, 2.0f, 1.0f, 1.5f, -3.0f};
  // Expected: softmax(l / T) over tokens 1, 3, 2.
  std::map<int32_t, double> expected;
  double total = 0;
  for (int32_t t : {1, 3, 2}) total += expected[t] = std::exp(logits[t] / p.temperature);
  std::map<int32_t, int> counts;
  const int n = 40000;
  for (int step = 0; step < n; ++step) ++counts[DrawToken(p, logits, step)];
  EXPECT_EQ(counts.count(0) + counts.count(4), 0u) << "outside the top 3";
  for (auto [t, e] : expected) EXPECT_NEAR(counts[t] / double(n), e / total, 0.01) << t;
}

TEST(TokenChoiceTest, TopPAndMinPCutPrefixesAndTiesKeepTheLowerId) {
  SamplingParams p;
  p.seed = 5;
  // Probabilities at T=1: tokens 1 and 3 tie at the top.
  const std::vector<float> logits = {0.0f, 2.0f, 1.0f, 2.0f};
  p.top_p = 0.3;  // the first token in (logit desc, id asc) order alone reaches 0.3
  for (uint64_t s = 0; s < 100; ++s) EXPECT_EQ(DrawToken(p, logits, s), 1);
  p.top_p = 1.0;
  p.min_p = 0.5;  // e^-1 = 0.37 < 0.5: tokens 2 and 0 drop, the tie stays
  std::map<int32_t, int> counts;
  for (uint64_t s = 0; s < 2000; ++s) ++counts[DrawToken(p, logits, s)];
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_NEAR(counts[1] / 2000.0, 0.5, 0.05);
}

TEST(TokenChoiceTest, BannedTokensAreNeverDrawn) {
  SamplingParams p;
  p.temperature = 5.0;  // flat: every unbanned token is likely
  std::vector<float> logits(50, 0.0f);
  std::vector<LogitAdjustment> bans;
  for (int32_t t = 0; t < 50; t += 2) bans.push_back({t, false, 0.0f, true});
  for (uint64_t s = 0; s < 500; ++s) {
    EXPECT_EQ(ChooseToken({p, s, bans}, logits).token % 2, 1) << "step " << s;
  }
}

TEST(TokenChoiceTest, LogprobsComeFromTheRawLogits) {
  SamplingParams p;
  p.temperature = 0;
  const std::vector<float> logits = {1.0f, 3.0f, 2.5f};
  const std::vector<LogitAdjustment> ban = {{1, false, 0.0f, true}};
  SampleSpec spec{p, 0, ban, true, 2};
  const TokenChoice c = ChooseToken(spec, logits);
  EXPECT_EQ(c.token, 2);
  EXPECT_DOUBLE_EQ(c.logprob, TokenLogProb(logits, 2));
  ASSERT_EQ(c.top.size(), 2u);
  EXPECT_EQ(c.top[0].token, 1);  // the banned token is still the most likely raw one
  EXPECT_EQ(c.top[1].token, 2);
  const TargetScore s = ScoreTarget(logits, 1, 1);
  EXPECT_TRUE(s.is_argmax);
  EXPECT_DOUBLE_EQ(s.logprob, TokenLogProb(logits, 1));
  EXPECT_FALSE(ScoreTarget(logits, 2, 0).is_argmax);
}

TEST(TokenChoiceTest, SamplerKeepsOneAdjustmentPerTokenAndMergesBans) {
  SamplingParams p;
  p.repetition_penalty = 1.5;
  p.presence_penalty = 0.25;
  p.frequency_penalty = 0.5;
  Sampler sampler(p);
  sampler.ObservePrompt(7);
  sampler.ObservePrompt(7);
  sampler.ObserveGenerated(3);
  sampler.ObserveGenerated(3);
  sampler.ObserveGenerated(7);
  const std::vector<int32_t> banned = {3, 9};
  std::map<int32_t, LogitAdjustment> by_token;
  for (const LogitAdjustment& a : sampler.Adjustments(banned)) {
    EXPECT_TRUE(by_token.emplace(a.token, a).second) << "token " << a.token << " twice";
  }
  ASSERT_EQ(by_token.size(), 3u);
  EXPECT_TRUE(by_token[7].repeated);
  EXPECT_FLOAT_EQ(by_token[7].subtract, 0.75f);
  EXPECT_FALSE(by_token[7].banned);
  EXPECT_FLOAT_EQ(by_token[3].subtract, 1.25f);
  EXPECT_TRUE(by_token[3].banned);
  EXPECT_TRUE(by_token[9].banned);
  EXPECT_FALSE(by_token[9].repeated);
  EXPECT_EQ(sampler.Adjustments().size(), 2u) << "bans do not stick";

  Sampler plain(SamplingParams{});
  plain.ObservePrompt(1);
  plain.ObserveGenerated(2);
  EXPECT_TRUE(plain.Adjustments().empty()) << "no penalties: nothing to send";
}

TEST(TokenChoiceTest, ValidationNamesTheField) {
  SampleSpec spec;
  const std::vector<LogitAdjustment> bad = {{10, true, 0.0f, false}};
  spec.adjustments = bad;
  EXPECT_EQ(std::string(ValidateSampleSpec(spec, 10).message()),
            "logit adjustment 0: token 10 is outside the vocabulary [0, 10)");
  spec.adjustments = {};
  spec.top_logprobs = 21;
  EXPECT_FALSE(ValidateSampleSpec(spec, 10).ok());
  spec.top_logprobs = 0;
  spec.params.top_p = 2;
  EXPECT_EQ(std::string(ValidateSampleSpec(spec, 10).message()), "top_p is 2, must be in (0, 1]");

  const std::vector<int32_t> targets = {1, 12};
  EXPECT_EQ(std::string(ValidateScoreSpec({targets, 0}, 3, 20).message()),
            "score: 2 targets for 3 tokens (one target per token)");
  EXPECT_EQ(std::string(ValidateScoreSpec({targets, 0}, 2, 10).message()),
            "score: target 1 = 12 is outside the vocabulary [0, 10)");
  EXPECT_TRUE(ValidateScoreSpec({targets, 20}, 2, 20).ok());
}

TEST(BackendSeamTest, ARowAsksForOneKindOfOutput) {
  const std::vector<int32_t> tokens = {1, 2};
  const std::vector<int32_t> targets = {2, 3};
  const ScoreSpec score{targets, 0};
  const std::vector<SampleSpec> samples(2);
  ForwardRow row{0, tokens, LogitsMode::kLast};
  EXPECT_TRUE(ValidateRowOutputs(row, 0, 10).ok());
  row.samples = samples;
  EXPECT_EQ(std::string(ValidateRowOutputs(row, 4, 10).message()),
            "row 4 asks for more than one of logits, samples, score and hidden");
  row.logits = LogitsMode::kNone;
  EXPECT_TRUE(ValidateRowOutputs(row, 0, 10).ok());
  EXPECT_EQ(HostLogitsMode(row), LogitsMode::kLast);
  row.samples = {};
  row.score = &score;
  EXPECT_EQ(HostLogitsMode(row), LogitsMode::kAll);
  EXPECT_TRUE(ValidateRowOutputs(row, 0, 10).ok());
  // Hidden states are a kind of their own: with a score too is one too many, alone they need no
  // logits from the head.
  row.hidden = LogitsMode::kAll;
  EXPECT_FALSE(ValidateRowOutputs(row, 0, 10).ok());
  row.score = nullptr;
  EXPECT_TRUE(ValidateRowOutputs(row, 0, 10).ok());
  EXPECT_EQ(HostLogitsMode(row), LogitsMode::kNone);
}

TEST(BackendSeamTest, ReduceRowOnHostAppendsInRowOrder) {
  const int64_t vocab = 4;
  const std::vector<float> two_rows = {0, 5, 1, 2, /*next*/ 3, 0, 0, 1};
  const std::vector<int32_t> tokens = {1, 2};
  const std::vector<int32_t> targets = {1, 3};
  const ScoreSpec score{targets, 1};
  ForwardOutput out;
  ForwardRow scored{0, tokens, LogitsMode::kNone};
  scored.score = &score;
  ReduceRowOnHost(scored, two_rows, vocab, out);
  ASSERT_EQ(out.scores.size(), 2u);
  EXPECT_TRUE(out.scores[0].is_argmax);
  EXPECT_FALSE(out.scores[1].is_argmax);
  EXPECT_DOUBLE_EQ(out.scores[1].logprob,
                   TokenLogProb(absl::MakeConstSpan(two_rows).subspan(4, 4), 3));
  ASSERT_EQ(out.scores[1].top.size(), 1u);
  EXPECT_EQ(out.scores[1].top[0].token, 0);

  SampleSpec greedy;
  greedy.params.temperature = 0;
  const std::vector<SampleSpec> specs = {greedy, greedy};
  ForwardRow sampled{1, tokens, LogitsMode::kNone};
  sampled.samples = specs;
  ReduceRowOnHost(sampled, absl::MakeConstSpan(two_rows).subspan(4, 4), vocab, out);
  ASSERT_EQ(out.samples.size(), 2u);
  EXPECT_EQ(out.samples[0].token, 0);
  EXPECT_EQ(out.samples[1].token, 0);
  EXPECT_TRUE(out.logits.empty());
}

}  // namespace
}  // namespace xlstm::engine
