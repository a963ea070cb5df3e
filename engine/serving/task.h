// A request as the engine loop drives it. Generate and Score are the two kinds (generate_task.h,
// score_task.h); the loop never asks which one it holds. A task says which of its sequences have
// tokens to feed, adds what it asks of the backend for a planned chunk to the step, and absorbs
// that chunk's results. Everything else (queueing, admission, expiry, ending) is the loop's.
//
// Lifecycle: waiting -> Admit (slots acquired and zeroed) -> steps -> End, exactly once, however
// it ends. The loop releases the slots; End only delivers the outcome to the request's consumer.
//
// Threading: created on a submitting thread, then owned and used by the engine thread only.
#ifndef XLSTM_ENGINE_SERVING_TASK_H_
#define XLSTM_ENGINE_SERVING_TASK_H_

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/serving/request.h"
#include "engine/serving/slot_pool.h"
#include "engine/serving/step_batch.h"

namespace xlstm::engine {

// Tokens one sequence still has to feed; the planner takes chunks from the front.
class PendingTokens {
 public:
  void Assign(std::vector<int32_t> tokens) {
    tokens_ = std::move(tokens);
    fed_ = 0;
  }
  int32_t remaining() const { return static_cast<int32_t>(tokens_.size() - fed_); }
  // The next `count` tokens; valid until the next Assign.
  absl::Span<const int32_t> Next(int32_t count) const {
    return absl::MakeConstSpan(tokens_).subspan(fed_, static_cast<size_t>(count));
  }
  void Consume(int32_t count) { fed_ += static_cast<size_t>(count); }

 private:
  std::vector<int32_t> tokens_;
  size_t fed_ = 0;
};

// One sequence that wants to run this step.
struct SequenceFeed {
  int32_t sequence = 0;   // the task's own index
  int32_t remaining = 0;  // tokens it still has to feed (>= 1)
  bool decode = false;    // a decoding sequence: one token per step, always scheduled
};

class Task {
 public:
  using Id = uint64_t;

  Task(Clock::time_point arrival, std::optional<Clock::time_point> deadline) : deadline_(deadline) {
    timings_.arrival = arrival;
  }
  virtual ~Task() = default;
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;

  Id id() const { return id_; }
  void set_id(Id id) { id_ = id; }
  const std::optional<Clock::time_point>& deadline() const { return deadline_; }
  bool ExpiredAt(Clock::time_point now) const { return deadline_ && now >= *deadline_; }
  // How a cancel that arrives at `now` ends the task: gRPC cancels a call whose deadline passed,
  // often before our own deadline check sees it, so a cancel close to the deadline is the
  // deadline's (see the .cc for how close).
  absl::Status CancelStatus(Clock::time_point now) const;

  // The slots it holds from admission to its end (empty while waiting).
  const std::vector<int32_t>& slots() const { return slots_; }
  std::vector<int32_t> TakeSlots() { return std::move(slots_); }

  // State slots it needs at once (validated to be <= the backend's slots).
  virtual int32_t slots_needed() const = 0;
  // Takes its freshly zeroed slots and prepares its first feeds. An error is a backend fault.
  absl::Status Admit(std::vector<int32_t> slots, SlotPool& pool, Clock::time_point now);
  // Appends the sequences that have tokens to feed.
  virtual void ListFeeds(std::vector<SequenceFeed>& feeds) const = 0;
  // Adds `tokens` tokens of `sequence` to `step`, with whatever it asks for them.
  virtual void AddToStep(int32_t sequence, int32_t tokens, StepBatch& step) = 0;
  // Takes the results of the chunk added by AddToStep. An error is a backend fault.
  virtual absl::Status Absorb(int32_t sequence, int32_t tokens, const RowResult& result,
                              SlotPool& pool, Clock::time_point now) = 0;
  // Everything it was asked for is produced: the loop ends it with OK.
  virtual bool finished() const = 0;
  // Delivers the outcome to the consumer; the last call on the task. Its slots are released.
  void End(absl::Status status, Clock::time_point now);

 protected:
  // The kind's share of Admit / End.
  virtual absl::Status Start(SlotPool& pool) = 0;
  virtual void Deliver(absl::Status status, const RequestTimings& timings) = 0;
  void NoteFirstOutput(Clock::time_point now);

 private:
  Id id_ = 0;
  std::optional<Clock::time_point> deadline_;
  std::vector<int32_t> slots_;
  RequestTimings timings_;
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SERVING_TASK_H_
