// xlstm-loadgen's statistics: percentiles (numpy's "linear" method), latency distributions,
// warm-up exclusion, window throughput and error counting.
#include "client/loadgen_stats.h"

#include <vector>

#include "gtest/gtest.h"

namespace xlstm::loadgen {
namespace {

TEST(LoadgenStatsTest, PercentileInterpolatesLinearlyBetweenClosestRanks) {
  // Reference values: numpy.percentile(values, p) (method="linear", the default).
  const std::vector<double> four = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(Percentile(four, 50), 2.5);
  EXPECT_DOUBLE_EQ(Percentile(four, 0), 1);
  EXPECT_DOUBLE_EQ(Percentile(four, 100), 4);
  EXPECT_NEAR(Percentile(four, 90), 3.7, 1e-12);
  std::vector<double> ten;
  for (int i = 1; i <= 10; ++i) ten.push_back(i);
  EXPECT_NEAR(Percentile(ten, 90), 9.1, 1e-12);
  EXPECT_NEAR(Percentile(ten, 99), 9.91, 1e-12);
  std::vector<double> hundred;
  for (int i = 1; i <= 100; ++i) hundred.push_back(i);
  EXPECT_NEAR(Percentile(hundred, 50), 50.5, 1e-12);
  EXPECT_NEAR(Percentile(hundred, 99), 99.01, 1e-12);
  EXPECT_DOUBLE_EQ(Percentile({0, 10}, 25), 2.5);
  EXPECT_DOUBLE_EQ(Percentile({7}, 0), 7);
  EXPECT_DOUBLE_EQ(Percentile({7}, 99), 7);
  // Out-of-range p is clamped; an empty sample gives 0 rather than reading out of bounds.
  EXPECT_DOUBLE_EQ(Percentile(four, 150), 4);
  EXPECT_DOUBLE_EQ(Percentile(four, -5), 1);
  EXPECT_DOUBLE_EQ(Percentile({}, 50), 0);
}

TEST(LoadgenStatsTest, DistributionSortsItsInput) {
  const Distribution d = Summarize(std::vector<double>{5, 1, 4, 2, 3});
  EXPECT_EQ(d.count, 5);
  EXPECT_DOUBLE_EQ(d.mean, 3);
  EXPECT_DOUBLE_EQ(d.min, 1);
  EXPECT_DOUBLE_EQ(d.p50, 3);
  EXPECT_NEAR(d.p90, 4.6, 1e-12);
  EXPECT_NEAR(d.p99, 4.96, 1e-12);
  EXPECT_DOUBLE_EQ(d.max, 5);
  const Distribution empty = Summarize(std::vector<double>{});
  EXPECT_EQ(empty.count, 0);
  EXPECT_EQ(empty.mean, 0);
  EXPECT_EQ(empty.max, 0);
}

TEST(LoadgenStatsTest, SummaryExcludesWarmupAndCountsThroughputInsideTheWindow) {
  // Window [1, 3].
  std::vector<RequestRecord> records(5);
  // Warm-up request; its token at 1.2 and its completion at 1.3 fall inside the window.
  records[0] = {0.5, 1.3, {{0.8, 1}, {1.2, 1}}, 0};
  // Measured: TTFT 0.1; ITL 0.2, then a 2-token message 0.4 later: two samples of 0.2.
  records[1] = {1.0, 1.8, {{1.1, 1}, {1.3, 1}, {1.7, 2}}, 0};
  // Measured, finishes after the window: counted in latencies, its late token not in throughput.
  records[2] = {2.5, 3.3, {{2.6, 1}, {3.2, 1}}, 0};
  // Measured, failed with DEADLINE_EXCEEDED after one token.
  records[3] = {2.0, 2.4, {{2.1, 1}}, 4};
  // Warm-up, refused.
  records[4] = {0.1, 0.2, {}, 14};

  const Summary s = Summarize(records, 1.0, 3.0);
  EXPECT_EQ(s.requests, 2);
  EXPECT_EQ(s.errors, 1);
  ASSERT_EQ(s.errors_by_code.size(), 1u);
  EXPECT_EQ(s.errors_by_code.at("DEADLINE_EXCEEDED"), 1);
  EXPECT_EQ(s.warmup_requests, 2);
  EXPECT_EQ(s.warmup_errors, 1);
  EXPECT_EQ(s.output_tokens, 6);
  EXPECT_EQ(s.min_tokens_per_request, 2);
  EXPECT_EQ(s.max_tokens_per_request, 4);
  EXPECT_DOUBLE_EQ(s.window_seconds, 2.0);
  // Tokens arriving in [1, 3]: 1 (warm-up) + 4 + 1 + 1 (the failed request's) = 7.
  EXPECT_DOUBLE_EQ(s.output_tokens_per_second, 3.5);
  // Successful completions in [1, 3]: records 0 and 1.
  EXPECT_DOUBLE_EQ(s.requests_per_second, 1.0);

  EXPECT_EQ(s.ttft.count, 2);
  EXPECT_NEAR(s.ttft.mean, 0.1, 1e-12);
  EXPECT_NEAR(s.ttft.max, 0.1, 1e-12);
  EXPECT_EQ(s.itl.count, 4);  // one per token after the first: 3 + 1
  EXPECT_NEAR(s.itl.mean, 0.3, 1e-12);
  EXPECT_NEAR(s.itl.p50, 0.2, 1e-12);
  EXPECT_NEAR(s.itl.p90, 0.48, 1e-12);  // rank 2.7 between 0.2 and 0.6
  EXPECT_NEAR(s.itl.max, 0.6, 1e-12);
  EXPECT_EQ(s.e2e.count, 2);
  EXPECT_NEAR(s.e2e.p50, 0.8, 1e-12);
}

TEST(LoadgenStatsTest, RequestsWithoutTokensAndEmptyRuns) {
  // A successful stream without tokens (only the final message) has no TTFT but an E2E latency.
  const Summary s = Summarize({{0.0, 0.5, {}, 0}}, 0.0, 1.0);
  EXPECT_EQ(s.requests, 1);
  EXPECT_EQ(s.output_tokens, 0);
  EXPECT_EQ(s.min_tokens_per_request, 0);
  EXPECT_EQ(s.ttft.count, 0);
  EXPECT_EQ(s.itl.count, 0);
  EXPECT_EQ(s.e2e.count, 1);
  EXPECT_DOUBLE_EQ(s.requests_per_second, 1.0);

  const Summary empty = Summarize({}, 0.0, 0.0);
  EXPECT_EQ(empty.requests, 0);
  EXPECT_EQ(empty.output_tokens_per_second, 0);
  EXPECT_EQ(empty.requests_per_second, 0);
  EXPECT_EQ(empty.e2e.count, 0);
}

TEST(LoadgenStatsTest, StatusCodeNames) {
  EXPECT_EQ(StatusCodeName(0), "OK");
  EXPECT_EQ(StatusCodeName(1), "CANCELLED");
  EXPECT_EQ(StatusCodeName(4), "DEADLINE_EXCEEDED");
  EXPECT_EQ(StatusCodeName(8), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(StatusCodeName(14), "UNAVAILABLE");
  EXPECT_EQ(StatusCodeName(16), "UNAUTHENTICATED");
  EXPECT_EQ(StatusCodeName(17), "CODE_17");
  EXPECT_EQ(StatusCodeName(-1), "CODE_-1");
}

}  // namespace
}  // namespace xlstm::loadgen
