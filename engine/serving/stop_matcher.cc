#include "engine/serving/stop_matcher.h"

#include <algorithm>
#include <utility>

namespace xlstm::engine {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops, bool include_stop_in_output)
    : include_stop_(include_stop_in_output) {
  for (std::string& s : stops) {
    if (!s.empty()) stops_.push_back(std::move(s));
  }
}

StopStringMatcher::Result StopStringMatcher::Add(absl::string_view delta) {
  Result result;
  if (stopped_) return result;
  held_.append(delta.data(), delta.size());
  // The held text holds no complete stop string (it would have ended the stream), so the
  // earliest match over all stops is the one to end at.
  size_t best = std::string::npos;
  size_t best_len = 0;
  for (const std::string& stop : stops_) {
    const size_t pos = held_.find(stop);
    if (pos != std::string::npos && (pos < best || (pos == best && stop.size() > best_len))) {
      best = pos;
      best_len = stop.size();
    }
  }
  if (best != std::string::npos) {
    result.emit = held_.substr(0, include_stop_ ? best + best_len : best);
    result.stopped = true;
    stopped_ = true;
    held_.clear();
    return result;
  }
  // Hold back the longest suffix that is a proper prefix of some stop string. Stop strings are
  // valid UTF-8, so such a suffix starts on a character boundary.
  size_t hold = 0;
  for (const std::string& stop : stops_) {
    const size_t max_k = std::min(stop.size() - 1, held_.size());
    for (size_t k = max_k; k > hold; --k) {
      if (absl::string_view(held_).substr(held_.size() - k) ==
          absl::string_view(stop).substr(0, k)) {
        hold = k;
        break;
      }
    }
  }
  result.emit = held_.substr(0, held_.size() - hold);
  held_.erase(0, held_.size() - hold);
  return result;
}

std::string StopStringMatcher::Flush() {
  std::string out;
  if (!stopped_) out.swap(held_);
  held_.clear();
  return out;
}

}  // namespace xlstm::engine
