// The continuous-batching loop, one method per stage. Each iteration:
//
//   take the inbox        new tasks join the queue; the loop sleeps only while it holds nothing
//   cancel and expire     cancels first, then deadlines; their slots are free for admission
//   admit                 FCFS into free slots (zeroed); the head waits for enough (no overtaking)
//   plan the step         decodes one token each, prefill/score chunks under the token budget
//   run the backend       one Backend::Forward for every planned row
//   absorb results        each task takes its rows' results; finished tasks end
//   publish               counters for Stats(), the step's times for the observer
//
// A task ends exactly once, through EndTask, the one place its slots are released. The first
// backend fault (admission, forward, or a state copy while absorbing) goes through Fail: every
// task ends, the inbox refuses new work, and what arrives later is ended at once.
//
// Threading: constructed on any thread, then used only by the engine thread (Run). Owns the
// backend; the Engine facade owns the loop and the Inbox it shares with it.
#ifndef XLSTM_ENGINE_SERVING_ENGINE_LOOP_H_
#define XLSTM_ENGINE_SERVING_ENGINE_LOOP_H_

#include <deque>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "engine/backend.h"
#include "engine/serving/engine_types.h"
#include "engine/serving/inbox.h"
#include "engine/serving/slot_pool.h"
#include "engine/serving/step_batch.h"
#include "engine/serving/task.h"

namespace xlstm::engine {

class EngineLoop {
 public:
  // `inbox` and `observer` (may be null) must outlive the loop.
  EngineLoop(std::unique_ptr<Backend> backend, const EngineOptions& options, Inbox* inbox,
             EngineObserver* observer);

  // Runs until the engine is drained (Inbox::StartDrain and nothing left).
  void Run();

 private:
  // A planned row: which task's sequence it feeds, and how many tokens.
  struct PlannedRow {
    Task* task;
    int32_t sequence;
    int32_t tokens;
  };
  // When the stages of one step ran (for StepStats).
  struct StepTimes {
    Clock::time_point start, forward_start, forward_end, end;
  };

  bool HoldsNothing() const { return waiting_.empty() && active_.empty(); }

  // The stages, in loop order.
  void Accept(std::vector<std::unique_ptr<Task>> tasks);
  void CancelAndExpire(const std::vector<Task::Id>& cancels, Clock::time_point now);
  absl::Status Admit();
  bool Plan();
  absl::Status RunBackend();
  absl::Status AbsorbResults(Clock::time_point now);
  void Publish();
  void ObserveStep(const StepTimes& times) const;

  // Ends every task, waiting or active, with `status` (drain past its grace).
  void EndAll(const absl::Status& status);
  // The one fault path.
  void Fail(const absl::Status& fault);
  // Releases the task's slots and delivers its outcome.
  void EndTask(Task& task, absl::Status status);
  // Ends the active tasks that `finished` says are done, with OK.
  void EndFinished();

  std::unique_ptr<Backend> backend_;
  const EngineOptions options_;
  Inbox* const inbox_;
  EngineObserver* const observer_;
  SlotPool pool_;
  std::deque<std::unique_ptr<Task>> waiting_;  // FCFS
  std::vector<std::unique_ptr<Task>> active_;  // in admission order (FCFS for prefill)
  std::vector<PlannedRow> plan_;               // this step's rows, in StepBatch order
  StepBatch step_;
  ForwardOutput output_;
  std::string fault_;  // set by Fail; non-empty: the engine failed
  uint64_t steps_ = 0;
  int32_t left_queue_ = 0;  // tasks that stopped waiting since the last Publish
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SERVING_ENGINE_LOOP_H_
