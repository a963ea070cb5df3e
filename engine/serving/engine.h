// The serving engine facade: continuous batching of Generate and Score requests over the
// backend's recurrent-state slots.
//
// Threading and ownership: the Engine owns the Backend and ONE engine thread, the only thread
// that ever calls the backend. Submit*, Cancel, Stats and Shutdown may be called from any
// thread; they only touch a mutex-protected inbox and never wait for model work (Shutdown waits
// for the drain, by design). Request callbacks run on the engine thread (see request.h).
//
// Each loop iteration: take the inbox; apply cancels and expired deadlines (their slots are
// freed at once); admit waiting requests FCFS into free slots (zeroed state); plan a step under
// the token budget (scheduler.h); run Backend::Forward; sample, check stops, emit.
#ifndef XLSTM_ENGINE_SERVING_ENGINE_H_
#define XLSTM_ENGINE_SERVING_ENGINE_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/backend.h"
#include "engine/serving/request.h"

namespace xlstm::engine {

struct EngineOptions {
  int32_t max_queue = 256;          // waiting requests; beyond: RESOURCE_EXHAUSTED at once
  int32_t step_token_budget = 512;  // tokens fed per step (decodes always run)
};

struct EngineStats {
  int32_t running = 0;  // admitted (holding slots)
  int32_t waiting = 0;  // submitted, not admitted yet
  int32_t slots_used = 0;
  int32_t slots_total = 0;
  uint64_t steps = 0;
  bool draining = false;
  bool failed = false;  // a backend fault ended the engine; see fault
  std::string fault;
};

// Per-step measurements, reported on the engine thread after each forward step.
struct StepStats {
  double schedule_seconds = 0;  // inbox, cancels, deadlines, admission, planning
  double forward_seconds = 0;   // Backend::Forward
  double sample_seconds = 0;    // sampling, stop checks, emission
  int32_t batch_rows = 0;       // sequences in the step
  int32_t tokens = 0;           // tokens fed
};

// Observes the loop (metrics). Called on the engine thread; must not block.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void OnStep(const StepStats& stats) = 0;
};

class Engine {
 public:
  using RequestId = uint64_t;

  // Starts the engine thread. `observer` (may be null) must outlive the engine.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(std::unique_ptr<Backend> backend,
                                                        EngineOptions options,
                                                        EngineObserver* observer = nullptr);
  ~Engine();  // Shutdown(zero grace) if not done yet.

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request. InvalidArgument (naming the field and limit) for a bad request;
  // ResourceExhausted when max_queue requests are waiting; Unavailable while draining or after
  // a fault. On success the request's on_done runs exactly once, later, on the engine thread.
  absl::StatusOr<RequestId> SubmitGenerate(GenerateRequest request);
  absl::StatusOr<RequestId> SubmitScore(ScoreRequest request);

  // Ends a request with CANCELLED, or DEADLINE_EXCEEDED when its deadline has passed (gRPC
  // cancels calls at their deadline), its slots freed at the next iteration. Unknown or finished
  // ids are ignored.
  void Cancel(RequestId id);

  // Refuses new work at once, lets admitted and waiting requests finish for up to `grace`,
  // then ends the rest with UNAVAILABLE and stops the engine thread. Blocks until it has.
  void Shutdown(absl::Duration grace);

  EngineStats Stats() const;
  const ModelConfig& config() const { return config_; }
  const std::string& backend_name() const { return backend_name_; }
  int32_t num_slots() const { return num_slots_; }
  const EngineOptions& options() const { return options_; }

 private:
  struct Request;
  struct Loop;

  Engine(std::unique_ptr<Backend> backend, EngineOptions options, EngineObserver* observer);
  absl::StatusOr<RequestId> Enqueue(std::unique_ptr<Request> request);
  void Run();

  const ModelConfig config_;
  const std::string backend_name_;
  const int32_t num_slots_;
  const EngineOptions options_;
  std::unique_ptr<Loop> loop_;  // engine-thread state, touched only by the engine thread

  mutable absl::Mutex mu_;
  absl::CondVar wake_;
  std::vector<std::unique_ptr<Request>> inbox_ ABSL_GUARDED_BY(mu_);
  std::vector<RequestId> cancels_ ABSL_GUARDED_BY(mu_);
  RequestId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  int32_t queued_ ABSL_GUARDED_BY(mu_) = 0;  // inbox + waiting (for the queue bound)
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time drain_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  EngineStats stats_ ABSL_GUARDED_BY(mu_);

  std::mutex shutdown_mu_;  // serializes Shutdown callers around the join
  std::thread thread_;
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SERVING_ENGINE_H_
