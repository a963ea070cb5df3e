#include "engine/serving/inbox.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace xlstm::engine {

Inbox::Inbox(int32_t max_queue, int32_t slots_total) : max_queue_(max_queue) {
  stats_.slots_total = slots_total;
}

absl::StatusOr<Task::Id> Inbox::Push(std::unique_ptr<Task> task) {
  absl::MutexLock lock(&mu_);
  if (stats_.failed) return absl::UnavailableError(absl::StrCat("engine failed: ", stats_.fault));
  if (stats_.draining) {
    return absl::UnavailableError("server is draining; not accepting new requests");
  }
  if (queued_ >= max_queue_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("request queue is full (max_queue = ", max_queue_, ")"));
  }
  const Task::Id id = next_id_++;
  task->set_id(id);
  ++queued_;
  tasks_.push_back(std::move(task));
  return id;
}

void Inbox::Cancel(Task::Id id) {
  absl::MutexLock lock(&mu_);
  cancels_.push_back(id);
}

void Inbox::StartDrain(absl::Duration grace) {
  absl::MutexLock lock(&mu_);
  stats_.draining = true;
  drain_deadline_ = std::min(drain_deadline_, absl::Now() + grace);
}

EngineStats Inbox::Stats() const {
  absl::MutexLock lock(&mu_);
  EngineStats stats = stats_;
  stats.waiting = queued_;
  return stats;
}

bool Inbox::HasNews() const { return !tasks_.empty() || !cancels_.empty() || stats_.draining; }

Inbox::Delivery Inbox::Take(bool sleep_until_news) {
  absl::MutexLock lock(&mu_);
  if (sleep_until_news) mu_.Await(absl::Condition(this, &Inbox::HasNews));
  Delivery delivery;
  delivery.tasks.swap(tasks_);
  delivery.cancels.swap(cancels_);
  delivery.drain_expired = stats_.draining && absl::Now() >= drain_deadline_;
  return delivery;
}

void Inbox::Publish(const LoopCounts& counts) {
  absl::MutexLock lock(&mu_);
  stats_.running = counts.running;
  stats_.slots_used = counts.slots_used;
  stats_.steps = counts.steps;
  queued_ -= counts.left_queue;
}

void Inbox::SetFailed(const std::string& fault) {
  absl::MutexLock lock(&mu_);
  if (stats_.failed) return;
  stats_.failed = true;
  stats_.fault = fault;
}

bool Inbox::ShouldStop() const {
  absl::MutexLock lock(&mu_);
  return stats_.draining && tasks_.empty();
}

}  // namespace xlstm::engine
