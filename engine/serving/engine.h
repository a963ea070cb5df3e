// The serving engine facade: continuous batching of Generate, Score and Embed requests over the
// backend's recurrent-state slots.
//
// Threading and ownership: the Engine owns the Backend and ONE engine thread, the only thread
// that ever calls the backend. Submit*, Cancel, Stats and Shutdown may be called from any
// thread; they only touch a mutex-protected inbox and never wait for model work (Shutdown waits
// for the drain, by design). Request callbacks run on the engine thread (see request.h).
//
// The loop itself, stage by stage, is engine_loop.h; what crosses threads is inbox.h.
#ifndef XLSTM_ENGINE_SERVING_ENGINE_H_
#define XLSTM_ENGINE_SERVING_ENGINE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/backend.h"
#include "engine/serving/engine_types.h"
#include "engine/serving/request.h"
#include "engine/serving/request_validation.h"

namespace xlstm::engine {

class EngineLoop;  // engine_loop.h
class Inbox;       // inbox.h

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

  // Queues a request. InvalidArgument for a bad request (request_validation.h, against
  // options().limits, the vocabulary and the slots); ResourceExhausted when max_queue requests
  // are waiting; Unavailable while draining or after a fault. On success the request ends
  // exactly once, later, on the engine thread (GenerateSink::Finish, or the Score / Embed
  // on_done).
  absl::StatusOr<RequestId> SubmitGenerate(GenerateRequest request);
  absl::StatusOr<RequestId> SubmitScore(ScoreRequest request);
  absl::StatusOr<RequestId> SubmitEmbed(EmbedRequest request);

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
  Engine(std::unique_ptr<Backend> backend, EngineOptions options, EngineObserver* observer);

  const ModelConfig config_;
  const std::string backend_name_;
  const int32_t num_slots_;
  const EngineOptions options_;
  const ModelBounds bounds_;                  // what requests are validated against
  const std::vector<int32_t> eos_token_ids_;  // the model's EOS ids inside the vocabulary
  std::unique_ptr<Inbox> inbox_;              // thread-safe; shared with the loop
  // Touched only by the engine thread once started. Declared after inbox_ so that it (and the
  // tasks it still holds) goes first.
  std::unique_ptr<EngineLoop> loop_;

  std::mutex shutdown_mu_;  // serializes Shutdown callers around the join
  std::thread thread_;
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SERVING_ENGINE_H_
