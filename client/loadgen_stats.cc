#include "client/loadgen_stats.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <string>

namespace xlstm::loadgen {

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  p = std::clamp(p, 0.0, 100.0);
  const double rank = p / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = rank - static_cast<double>(lo);
  return sorted[lo] + frac * (sorted[hi] - sorted[lo]);
}

Distribution Summarize(std::vector<double> values) {
  Distribution d;
  if (values.empty()) return d;
  std::sort(values.begin(), values.end());
  d.count = static_cast<int64_t>(values.size());
  double sum = 0;
  for (double v : values) sum += v;
  d.mean = sum / static_cast<double>(values.size());
  d.min = values.front();
  d.max = values.back();
  d.p50 = Percentile(values, 50);
  d.p90 = Percentile(values, 90);
  d.p99 = Percentile(values, 99);
  return d;
}

Summary Summarize(const std::vector<RequestRecord>& records, double window_start,
                  double window_end) {
  Summary s;
  s.window_seconds = std::max(0.0, window_end - window_start);
  std::vector<double> ttft, itl, e2e;
  int64_t window_tokens = 0, window_completions = 0;
  int64_t min_tokens = std::numeric_limits<int64_t>::max(), max_tokens = 0;
  for (const RequestRecord& r : records) {
    for (const auto& [t, k] : r.token_messages) {
      if (t >= window_start && t <= window_end) window_tokens += k;
    }
    if (r.status_code == 0 && r.end >= window_start && r.end <= window_end) ++window_completions;
    if (r.start < window_start) {
      ++s.warmup_requests;
      if (r.status_code != 0) ++s.warmup_errors;
      continue;
    }
    if (r.status_code != 0) {
      ++s.errors;
      ++s.errors_by_code[StatusCodeName(r.status_code)];
      continue;
    }
    ++s.requests;
    int64_t tokens = 0;
    double prev = 0;
    for (size_t i = 0; i < r.token_messages.size(); ++i) {
      const auto& [t, k] = r.token_messages[i];
      tokens += k;
      if (i == 0) {
        ttft.push_back(t - r.start);
      } else {
        for (int j = 0; j < k; ++j) itl.push_back((t - prev) / k);
      }
      prev = t;
    }
    s.output_tokens += tokens;
    min_tokens = std::min(min_tokens, tokens);
    max_tokens = std::max(max_tokens, tokens);
    e2e.push_back(r.end - r.start);
  }
  if (s.requests > 0) {
    s.min_tokens_per_request = min_tokens;
    s.max_tokens_per_request = max_tokens;
  }
  if (s.window_seconds > 0) {
    s.output_tokens_per_second = static_cast<double>(window_tokens) / s.window_seconds;
    s.requests_per_second = static_cast<double>(window_completions) / s.window_seconds;
  }
  s.ttft = Summarize(std::move(ttft));
  s.itl = Summarize(std::move(itl));
  s.e2e = Summarize(std::move(e2e));
  return s;
}

std::string StatusCodeName(int code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  if (code >= 0 && code < static_cast<int>(std::size(kNames))) return kNames[code];
  return "CODE_" + std::to_string(code);
}

}  // namespace xlstm::loadgen
