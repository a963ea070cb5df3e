#include "engine/serving/engine_loop.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/serving/scheduler.h"

namespace xlstm::engine {
namespace {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Ends and removes the tasks for which `why` gives a status; returns how many.
template <typename Tasks, typename Why, typename End>
int32_t EndWhere(Tasks& tasks, const Why& why, const End& end) {
  int32_t ended = 0;
  for (auto it = tasks.begin(); it != tasks.end();) {
    if (std::optional<absl::Status> status = why(**it)) {
      end(**it, *std::move(status));
      it = tasks.erase(it);
      ++ended;
    } else {
      ++it;
    }
  }
  return ended;
}

}  // namespace

EngineLoop::EngineLoop(std::unique_ptr<Backend> backend, const EngineOptions& options, Inbox* inbox,
                       EngineObserver* observer)
    : backend_(std::move(backend)),
      options_(options),
      inbox_(inbox),
      observer_(observer),
      pool_(backend_.get()) {}

void EngineLoop::Run() {
  while (true) {
    Inbox::Delivery delivery = inbox_->Take(/*sleep_until_news=*/HoldsNothing());
    StepTimes times;
    times.start = Clock::now();  // after any idle wait: idle time is no phase of a step
    Accept(std::move(delivery.tasks));
    CancelAndExpire(delivery.cancels, times.start);
    if (delivery.drain_expired) {
      EndAll(absl::UnavailableError("server shut down before the request finished"));
    }
    absl::Status status = Admit();
    Publish();  // admissions show in Stats() while a long step runs
    if (status.ok() && Plan()) {
      times.forward_start = Clock::now();
      status = RunBackend();
      times.forward_end = Clock::now();
      if (status.ok()) status = AbsorbResults(times.forward_end);
      times.end = Clock::now();
      ObserveStep(times);
    }
    if (!status.ok()) Fail(status);
    Publish();
    if (HoldsNothing() && inbox_->ShouldStop()) return;
  }
}

void EngineLoop::Accept(std::vector<std::unique_ptr<Task>> tasks) {
  for (std::unique_ptr<Task>& task : tasks) {
    if (!fault_.empty()) {  // it raced the fault into the inbox
      EndTask(*task, absl::UnavailableError(absl::StrCat("engine failed: ", fault_)));
      ++left_queue_;
      continue;
    }
    waiting_.push_back(std::move(task));
  }
}

void EngineLoop::CancelAndExpire(const std::vector<Task::Id>& cancels, Clock::time_point now) {
  std::vector<Task::Id> cancelled = cancels;
  std::sort(cancelled.begin(), cancelled.end());
  // A cancel wins over the deadline (CancelStatus reports a cancel at the deadline as its
  // expiry); both free the task's slots before this iteration's admission.
  auto why = [&](const Task& task) -> std::optional<absl::Status> {
    if (std::binary_search(cancelled.begin(), cancelled.end(), task.id())) {
      return task.CancelStatus(now);
    }
    if (task.ExpiredAt(now)) return absl::DeadlineExceededError("deadline exceeded");
    return std::nullopt;
  };
  auto end = [this](Task& task, absl::Status status) { EndTask(task, std::move(status)); };
  left_queue_ += EndWhere(waiting_, why, end);
  EndWhere(active_, why, end);
}

absl::Status EngineLoop::Admit() {
  // FCFS: the head waits for enough free slots and nobody overtakes it. With no task active
  // every slot is free, and a task never needs more slots than there are (validated), so the
  // head of a non-empty queue always runs once the slots it waits for are released.
  while (!waiting_.empty() && fault_.empty() && waiting_.front()->slots_needed() <= pool_.free()) {
    active_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
    ++left_queue_;
    Task& task = *active_.back();
    XLSTM_ASSIGN_OR_RETURN(std::vector<int32_t> slots, pool_.Acquire(task.slots_needed()));
    XLSTM_RETURN_IF_ERROR(task.Admit(std::move(slots), pool_, Clock::now()));
  }
  EndFinished();  // a request with nothing to produce (max_new_tokens = 0)
  return absl::OkStatus();
}

bool EngineLoop::Plan() {
  std::vector<PlanCandidate> candidates;
  std::vector<PlannedRow> feeding;
  std::vector<SequenceFeed> feeds;
  for (const std::unique_ptr<Task>& task : active_) {
    feeds.clear();
    task->ListFeeds(feeds);
    for (const SequenceFeed& feed : feeds) {
      candidates.push_back({feed.remaining, feed.decode});
      feeding.push_back({task.get(), feed.sequence, 0});
    }
  }
  plan_.clear();
  step_.Clear();
  for (const PlannedChunk& chunk : PlanStep(candidates, options_.step_token_budget)) {
    PlannedRow row = feeding[chunk.candidate];
    row.tokens = chunk.tokens;
    row.task->AddToStep(row.sequence, row.tokens, step_);
    plan_.push_back(row);
  }
  return !plan_.empty();
}

absl::Status EngineLoop::RunBackend() {
  ++steps_;
  absl::Span<const ForwardRow> rows = step_.Rows();
  XLSTM_RETURN_IF_ERROR(backend_->Forward(rows, output_));
  size_t draws = 0, targets = 0;
  for (const ForwardRow& row : rows) {
    draws += row.samples.size();
    if (row.score != nullptr) targets += row.score->targets.size();
  }
  const size_t hidden = static_cast<size_t>(step_.hidden_rows() * backend_->config().hidden_size);
  if (output_.samples.size() != draws || output_.scores.size() != targets ||
      output_.hidden.size() != hidden) {
    return absl::InternalError(absl::StrCat("backend returned ", output_.samples.size(), " draws, ",
                                            output_.scores.size(), " scores and ",
                                            output_.hidden.size(), " hidden floats for ", draws,
                                            ", ", targets, " and ", hidden));
  }
  return absl::OkStatus();
}

absl::Status EngineLoop::AbsorbResults(Clock::time_point now) {
  for (size_t i = 0; i < plan_.size(); ++i) {
    const PlannedRow& row = plan_[i];
    XLSTM_RETURN_IF_ERROR(
        row.task->Absorb(row.sequence, row.tokens, step_.ResultOf(i, output_), pool_, now));
  }
  EndFinished();
  return absl::OkStatus();
}

void EngineLoop::Publish() {
  inbox_->Publish({static_cast<int32_t>(active_.size()), pool_.used(), steps_, left_queue_});
  left_queue_ = 0;
}

void EngineLoop::ObserveStep(const StepTimes& times) const {
  if (observer_ == nullptr) return;
  StepStats stats;
  stats.schedule_seconds = Seconds(times.forward_start - times.start);
  stats.forward_seconds = Seconds(times.forward_end - times.forward_start);
  stats.sample_seconds = Seconds(times.end - times.forward_end);
  stats.batch_rows = static_cast<int32_t>(step_.size());
  stats.tokens = step_.tokens();
  observer_->OnStep(stats);
}

void EngineLoop::EndAll(const absl::Status& status) {
  for (std::unique_ptr<Task>& task : active_) EndTask(*task, status);
  active_.clear();
  for (std::unique_ptr<Task>& task : waiting_) EndTask(*task, status);
  left_queue_ += static_cast<int32_t>(waiting_.size());
  waiting_.clear();
}

void EngineLoop::Fail(const absl::Status& fault) {
  fault_ = std::string(fault.message());
  inbox_->SetFailed(fault_);
  for (std::unique_ptr<Task>& task : active_) {
    EndTask(*task, absl::InternalError(absl::StrCat("engine fault: ", fault_)));
  }
  active_.clear();
  for (std::unique_ptr<Task>& task : waiting_) {
    EndTask(*task, absl::UnavailableError(absl::StrCat("engine failed: ", fault_)));
  }
  left_queue_ += static_cast<int32_t>(waiting_.size());
  waiting_.clear();
}

void EngineLoop::EndTask(Task& task, absl::Status status) {
  std::vector<int32_t> slots = task.TakeSlots();
  if (!slots.empty()) pool_.Release(slots);
  task.End(std::move(status), Clock::now());
}

void EngineLoop::EndFinished() {
  EndWhere(
      active_,
      [](const Task& task) -> std::optional<absl::Status> {
        if (task.finished()) return absl::OkStatus();
        return std::nullopt;
      },
      [this](Task& task, absl::Status status) { EndTask(task, std::move(status)); });
}

}  // namespace xlstm::engine
