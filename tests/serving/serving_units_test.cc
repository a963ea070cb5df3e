// Scheduler, slot pool and stop-string unit tests: no backend work.
#include <numeric>

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

}  // namespace
}  // namespace xlstm::engine
