#include "engine/serving/task.h"

#include <utility>

namespace xlstm::engine {
namespace {

// The engine's deadline and the client's are two clocks read at two moments (the server
// converts the gRPC deadline to a steady-clock time at arrival), and gRPC rounds a timeout up
// when it sends it (grpc-timeout keeps three significant digits: up to 1% late for a timeout of
// a second or more). A client's cancel at its own deadline thus reaches us up to that much
// before ours: such a cancel is the deadline's.
constexpr Clock::duration kMinDeadlineSlack = std::chrono::milliseconds(20);
constexpr int kDeadlineSlackDivisor = 100;  // 1% of the request's whole time budget

}  // namespace

absl::Status Task::CancelStatus(Clock::time_point now) const {
  if (deadline_) {
    const Clock::duration budget = *deadline_ - timings_.arrival;
    const Clock::duration slack = kMinDeadlineSlack + budget / kDeadlineSlackDivisor;
    if (now + slack >= *deadline_) return absl::DeadlineExceededError("deadline exceeded");
  }
  return absl::CancelledError("request cancelled");
}

absl::Status Task::Admit(std::vector<int32_t> slots, SlotPool& pool, Clock::time_point now) {
  slots_ = std::move(slots);
  timings_.admitted = now;
  timings_.was_admitted = true;
  return Start(pool);
}

void Task::End(absl::Status status, Clock::time_point now) {
  timings_.done = now;
  Deliver(std::move(status), timings_);
}

void Task::NoteFirstOutput(Clock::time_point now) {
  if (timings_.has_first_token) return;
  timings_.first_token = now;
  timings_.has_first_token = true;
}

}  // namespace xlstm::engine
