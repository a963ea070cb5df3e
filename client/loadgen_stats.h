// Statistics of an xlstm-loadgen run: per-request records in, latency distributions and
// throughput out. Plain C++ (no gRPC), so that it is unit-tested on its own.
//
// Times are seconds on one monotonic clock (the load generator's start is 0).
#ifndef XLSTM_CLIENT_LOADGEN_STATS_H_
#define XLSTM_CLIENT_LOADGEN_STATS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace xlstm::loadgen {

// The p-th percentile (p in [0, 100]) of `sorted` (ascending, non-empty) by linear
// interpolation between the two closest ranks: rank r = p/100 * (n-1) (0-based), result
// sorted[floor(r)] + (r - floor(r)) * (sorted[floor(r)+1] - sorted[floor(r)]). This is numpy's
// default ("linear") method: p0 is the minimum, p100 the maximum, p50 the usual median.
double Percentile(const std::vector<double>& sorted, double p);

// count, mean and percentiles of a sample; all 0 when count is 0.
struct Distribution {
  int64_t count = 0;
  double mean = 0;
  double min = 0;
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
  double max = 0;
};
Distribution Summarize(std::vector<double> values);

// One streamed Generate call as the client saw it.
struct RequestRecord {
  double start = 0;  // just before the call was issued
  double end = 0;    // when the call's status arrived
  // Every response message that carried tokens: (arrival time, number of tokens).
  std::vector<std::pair<double, int>> token_messages;
  int status_code = 0;  // grpc::StatusCode value; 0 = OK
};

// Aggregates over the measurement window [window_start, window_end]:
//  - latency distributions and token counts use the measured requests: those that started at or
//    after window_start (the ones that started before are warm-up and are left out), including
//    ones still running at window_end (the generator lets them finish);
//  - throughput counts what happened inside the window, whichever request it belonged to: token
//    messages that arrived in it, and successful requests that ended in it, divided by its length.
//    In steady state that is the server's rate, without the ramp-up and the tail.
struct Summary {
  int64_t requests = 0;  // measured requests that finished OK
  int64_t errors = 0;    // measured requests that finished with another status
  std::map<std::string, int64_t> errors_by_code;  // gRPC status code name -> count
  int64_t warmup_requests = 0;                    // requests started before window_start
  int64_t warmup_errors = 0;
  int64_t output_tokens = 0;  // over the measured requests that finished OK
  int64_t min_tokens_per_request = 0;
  int64_t max_tokens_per_request = 0;
  double window_seconds = 0;
  double output_tokens_per_second = 0;
  double requests_per_second = 0;
  // Seconds. TTFT: start to the first message with a token (requests that got none are left
  // out). ITL: per token after the first: a message that arrives `gap` after the previous token
  // message and carries k tokens contributes k samples of gap/k, so the ITL samples of a request
  // add up to its decode time. E2E: start to status.
  Distribution ttft;
  Distribution itl;
  Distribution e2e;
};
Summary Summarize(const std::vector<RequestRecord>& records, double window_start,
                  double window_end);

// "OK", "CANCELLED", ... "UNAUTHENTICATED" for gRPC status codes 0..16, else "CODE_<n>".
std::string StatusCodeName(int code);

}  // namespace xlstm::loadgen

#endif  // XLSTM_CLIENT_LOADGEN_STATS_H_
