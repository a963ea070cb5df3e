// The hand-off between the threads that submit work (the Engine facade: any thread) and the
// engine loop (one thread): new tasks, cancels and the drain request go in; the loop takes them
// all at once each iteration and publishes its counters back for Stats().
//
// Threading: every method takes the inbox's mutex and returns without waiting for model work,
// except Take, which the engine thread calls to sleep while it holds no request.
#ifndef XLSTM_ENGINE_SERVING_INBOX_H_
#define XLSTM_ENGINE_SERVING_INBOX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/serving/engine_types.h"
#include "engine/serving/task.h"

namespace xlstm::engine {

class Inbox {
 public:
  Inbox(int32_t max_queue, int32_t slots_total);

  // Any thread. Queues `task` and gives it its id; Unavailable after a fault or while draining,
  // ResourceExhausted when max_queue requests wait already (the task is dropped untouched).
  absl::StatusOr<Task::Id> Push(std::unique_ptr<Task> task);
  void Cancel(Task::Id id);
  // Refuses new work from now on; the loop ends what is left once `grace` has passed. A second
  // call can only shorten the grace.
  void StartDrain(absl::Duration grace);
  EngineStats Stats() const;

  // What the engine thread takes each iteration.
  struct Delivery {
    std::vector<std::unique_ptr<Task>> tasks;
    std::vector<Task::Id> cancels;
    bool drain_expired = false;  // draining and the grace has passed: end everything
  };
  // Engine thread. With `sleep_until_news` (the loop holds no request) blocks until a task, a
  // cancel or the drain arrives; otherwise returns at once with whatever is there.
  Delivery Take(bool sleep_until_news);

  // Engine thread: what the loop holds, for Stats(). `left_queue` counts the tasks that stopped
  // waiting since the last call (admitted or ended), for the queue bound.
  struct LoopCounts {
    int32_t running = 0;
    int32_t slots_used = 0;
    uint64_t steps = 0;
    int32_t left_queue = 0;
  };
  void Publish(const LoopCounts& counts);
  // Engine thread: the engine failed; Push refuses from now on.
  void SetFailed(const std::string& fault);
  // Engine thread: whether the loop may stop, given that it holds no request. True once draining
  // with nothing left in the inbox.
  bool ShouldStop() const;

 private:
  bool HasNews() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int32_t max_queue_;
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Task>> tasks_ ABSL_GUARDED_BY(mu_);
  std::vector<Task::Id> cancels_ ABSL_GUARDED_BY(mu_);
  Task::Id next_id_ ABSL_GUARDED_BY(mu_) = 1;
  int32_t queued_ ABSL_GUARDED_BY(mu_) = 0;  // in the inbox or waiting in the loop
  absl::Time drain_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  EngineStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SERVING_INBOX_H_
