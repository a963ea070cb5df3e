// Scheduler, slot pool, stop-string and request-validation unit tests: no backend work.
#include <numeric>

#include "engine/serving/request_validation.h"
#include "engine/serving/scheduler.h"
#include "engine/serving/slot_pool.h"
#include "engine/serving/stop_matcher.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/serving/fake_backend.h"

namespace xlstm::engine {
namespace {

int32_t Total(const std::vector<PlannedChunk>& plan) {
  int32_t t = 0;
  for (const auto& c : plan) t += c.tokens;
  return t;
}

TEST(PlanStepTest, DecodesAlwaysRunThenPrefillChunksFcfsUnderBudget) {
  std::vector<PlanCandidate> c = {{100, false}, {1, true}, {50, false}, {1, true}};
  auto plan = PlanStep(c, 32);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].candidate, 1u);
  EXPECT_EQ(plan[1].candidate, 3u);
  EXPECT_EQ(plan[2].candidate, 0u);  // the older prefill takes the rest of the budget
  EXPECT_EQ(plan[2].tokens, 30);
  EXPECT_EQ(Total(plan), 32);
}

TEST(PlanStepTest, SmallPrefillsShareTheBudget) {
  std::vector<PlanCandidate> c = {{5, false}, {7, false}, {100, false}};
  auto plan = PlanStep(c, 16);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].tokens, 5);
  EXPECT_EQ(plan[1].tokens, 7);
  EXPECT_EQ(plan[2].tokens, 4);
}

TEST(PlanStepTest, DecodesPastTheBudgetStillRunAndPrefillWaits) {
  std::vector<PlanCandidate> c = {{1, true}, {1, true}, {1, true}, {9, false}};
  auto plan = PlanStep(c, 2);
  EXPECT_EQ(plan.size(), 3u);
  for (const auto& p : plan) EXPECT_TRUE(c[p.candidate].decode);
}

TEST(SlotPoolTest, AcquireReleaseNeverLeaks) {
  testing::FakeBackend backend(4, 16);
  SlotPool pool(&backend);
  auto a = pool.Acquire(3);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(pool.used(), 3);
  auto b = pool.Acquire(2);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(pool.used(), 3);  // nothing taken by a failed acquire
  pool.Release(*a);
  EXPECT_EQ(pool.used(), 0);
  auto c = pool.Acquire(4);
  ASSERT_TRUE(c.ok());
  EXPECT_THAT(*c, ::testing::UnorderedElementsAre(0, 1, 2, 3));
  pool.Release(*c);
  EXPECT_EQ(pool.free(), 4);
}

TEST(StopStringMatcherTest, HoldsBackPartialMatchAndStopsWithoutLeaking) {
  StopStringMatcher m({"END"}, false);
  EXPECT_EQ(m.Add("hello E").emit, "hello ");
  EXPECT_EQ(m.Add("N").emit, "");
  auto r = m.Add("D tail");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.emit, "");
  EXPECT_EQ(m.Add("more").emit, "");
}

TEST(StopStringMatcherTest, ReleasesWhenThePrefixBreaks) {
  StopStringMatcher m({"END", "xyz"}, false);
  EXPECT_EQ(m.Add("aE").emit, "a");
  auto r = m.Add("Nx");
  EXPECT_EQ(r.emit, "EN");
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(m.Flush(), "x");
}

TEST(StopStringMatcherTest, IncludeStopAndEarliestMatch) {
  StopStringMatcher m({"bc", "abcd"}, true);
  auto r = m.Add("xxabcdef");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.emit, "xxabcd");  // "abcd" starts earlier than "bc"
}

using ::testing::HasSubstr;

GenerateRequest ValidGenerate() {
  GenerateRequest r;
  r.prompt = {1, 2, 3};
  r.stopping.max_new_tokens = 8;
  return r;
}

constexpr ModelBounds kBounds = {/*vocab_size=*/100, /*num_slots=*/4};

std::string GenerateError(const GenerateRequest& r, RequestLimits limits = {}) {
  return std::string(ValidateGenerate(r, limits, kBounds).message());
}

TEST(RequestValidationTest, GenerateMessagesNameTheWireFieldAndTheLimit) {
  EXPECT_TRUE(ValidateGenerate(ValidGenerate(), RequestLimits{}, kBounds).ok());
  GenerateRequest r = ValidGenerate();
  r.prompt = {};
  EXPECT_EQ(GenerateError(r), "prompt is empty");
  r = ValidGenerate();
  r.prompt[2] = 100;
  EXPECT_EQ(GenerateError(r), "prompt.ids[2] = 100 is outside the vocabulary [0, 100)");
  RequestLimits limits;
  limits.max_prompt_tokens = 2;
  EXPECT_EQ(GenerateError(ValidGenerate(), limits),
            "prompt has 3 tokens; the limit (max_prompt_tokens) is 2");
  r = ValidGenerate();
  r.sampling.top_p = 0;
  EXPECT_EQ(GenerateError(r), "sampling.top_p = 0 is outside (0, 1]");
  r = ValidGenerate();
  r.sampling.temperature = -1;
  EXPECT_EQ(GenerateError(r), "sampling.temperature = -1 must be >= 0");
  r = ValidGenerate();
  r.stopping.max_new_tokens = 5000;
  EXPECT_THAT(GenerateError(r), HasSubstr("stopping.max_new_tokens = 5000 is outside [0, 4096]"));
  r = ValidGenerate();
  r.stopping.min_new_tokens = 9;
  EXPECT_THAT(GenerateError(r), HasSubstr("stopping.min_new_tokens = 9"));
  r = ValidGenerate();
  r.stopping.stop_token_ids = {5, -1};
  EXPECT_THAT(GenerateError(r), HasSubstr("stopping.stop_token_ids[1] = -1"));
  r = ValidGenerate();
  r.stopping.stop_strings.assign(17, "x");
  EXPECT_EQ(GenerateError(r), "stopping.stop has 17 strings; the limit (max_stop_strings) is 16");
  r = ValidGenerate();
  r.stopping.stop_strings = {"ok", std::string(257, 'y')};
  EXPECT_EQ(GenerateError(r),
            "stopping.stop[1] has 257 bytes; the limit (max_stop_string_bytes) is 256");
  r = ValidGenerate();
  r.stopping.stop_strings = {"ok"};
  EXPECT_THAT(GenerateError(r), HasSubstr("stopping.stop needs a tokenizer"));
  r = ValidGenerate();
  r.n = 5;  // max_n is 16, but only 4 slots
  EXPECT_THAT(GenerateError(r), HasSubstr("n = 5 is outside [1, 4]"));
  r = ValidGenerate();
  r.top_logprobs = kMaxTopLogprobs + 1;
  EXPECT_EQ(GenerateError(r), "top_logprobs = 21 is outside [0, 20]");
}

TEST(RequestValidationTest, ScoreMessagesNameTheItemField) {
  ScoreRequest r;
  r.context = {1, 2};
  r.continuations = {{3}, {4, 200}};
  EXPECT_EQ(ValidateScore(r, RequestLimits{}, kBounds, "items[2]").message(),
            "items[2].continuation_ids[1][1] = 200 is outside the vocabulary [0, 100)");
  r.continuations = {{3}, {}};
  EXPECT_EQ(ValidateScore(r, RequestLimits{}, kBounds, "items[0]").message(),
            "items[0].continuation_ids[1] is empty");
  r.continuations = {{3}, {4}, {5}, {6}, {7}};
  EXPECT_THAT(ValidateScore(r, RequestLimits{}, kBounds, "items[0]").message(),
              HasSubstr("items[0].continuations has 5; the limit"));
  RequestLimits limits;
  limits.max_prompt_tokens = 4;
  r.continuations = {{3, 4}, {5}};
  EXPECT_EQ(ValidateScore(r, limits, kBounds, "items[1]").message(),
            "items[1] has 5 tokens (context + continuations); the limit (max_prompt_tokens) is 4");
  r.context = {};
  EXPECT_THAT(ValidateScore(r, RequestLimits{}, kBounds).message(), HasSubstr("context is empty"));
  EXPECT_EQ(ValidateScoreItemCount(65, RequestLimits{}).message(),
            "items has 65 items; the limit (max_score_items) is 64");
}

TEST(RequestValidationTest, RequestIdAndTextLengthAreCappedBeforeAnyWork) {
  EXPECT_TRUE(ValidateRequestId(std::string(kMaxRequestIdBytes, 'a')).ok());
  EXPECT_EQ(ValidateRequestId(std::string(kMaxRequestIdBytes + 1, 'a')).message(),
            "request_id has 257 bytes; the limit is 256");
  // 10 tokens x 6 bytes per token: 60 bytes fit, 61 cannot.
  EXPECT_TRUE(CheckTextFitsTokens("prompt.text", 60, 10, "max_prompt_tokens", 6).ok());
  const absl::Status too_long = CheckTextFitsTokens("prompt.text", 61, 10, "max_prompt_tokens", 6);
  EXPECT_EQ(too_long.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_long.message(), HasSubstr("prompt.text has 61 bytes"));
  EXPECT_THAT(too_long.message(), HasSubstr("10 tokens (max_prompt_tokens)"));
  EXPECT_THAT(too_long.message(), HasSubstr("60 bytes at most"));
  // No bound known: nothing is refused by length.
  EXPECT_TRUE(CheckTextFitsTokens("prompt.text", 1 << 30, 10, "max_prompt_tokens", 0).ok());
}

}  // namespace
}  // namespace xlstm::engine
