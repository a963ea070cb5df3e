// One Generate call: validates the request (off the callback thread when it has text to
// tokenize), submits it to the engine, and streams the engine's output from the request's
// GenerateSink, coalesced: whenever a write can start, everything pending for the call becomes
// one message per sample, so a slow reader costs one message per write, not one per token.
//
// What a call makes the server hold: the request itself (gRPC owns it until Finish; bounded by
// --max-message-bytes), what its sink holds (bounded by n x max_new_tokens, see result_sink.h),
// the chunks of one Take still to be written (at most one per sample), and one message in flight.
// Never a queue that grows with how slowly the client reads.
//
// Threading:
// - The constructor and the gRPC reactions (OnCancel, OnWriteDone, OnDone) run on gRPC threads
//   and never block: text prompts are validated on the service's text pool.
// - The sink's on_ready runs on the engine thread and only queues a delivery task (Pump) on the
//   service's delivery pool; the protos are built there or in OnWriteDone, never on the engine
//   thread. TTFT and inter-token histograms are recorded there too, from the engine's times.
// - mu_ guards the call's state; Take on the sink is called under mu_ (lock order: reactor, then
//   sink; the sink calls on_ready outside its own lock, and on_ready takes no reactor lock).
//
// Lifetime: reference counted. gRPC holds one reference until OnDone; each queued task (text
// validation, delivery) holds one while queued and running. Finish is called once, only after the
// engine's Finish on the sink has been taken (or when the request never reached the engine), and
// no gRPC operation is started after it.
#ifndef XLSTM_SERVER_GENERATE_REACTOR_H_
#define XLSTM_SERVER_GENERATE_REACTOR_H_

#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "engine/serving/engine.h"
#include "engine/serving/result_sink.h"
#include "grpcpp/grpcpp.h"
#include "xlstm/v1/inference.pb.h"

namespace xlstm::server {

class InferenceService;

class GenerateReactor final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  // Starts the call (refusal, validation inline or queued, submission). `request` is owned by
  // gRPC and lives until Finish.
  GenerateReactor(InferenceService* service, grpc::CallbackServerContext* context,
                  const v1::GenerateRequest* request);

  void OnCancel() override;
  void OnWriteDone(bool ok) override;
  void OnDone() override { Unref(); }

 private:
  enum class Action { kNone, kWrite, kWriteAndFinish, kFinish };

  ~GenerateReactor() override = default;
  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Validates the request and submits it to the engine, or finishes the call with the reason it
  // cannot run. On a gRPC thread (token ids) or a text-pool thread (text prompts).
  void Validate();
  // Logs and finishes a call that never reached the engine (the caller counts it in the metrics).
  void FinishRefused(const grpc::Status& status);
  // Engine thread: the sink has output after an empty Take.
  void OnSinkReady();
  // Delivery thread: starts the next write (or the Finish) if none is in flight.
  void Pump();

  // What to start next: a write of the next message, or the Finish (with `*status`). Decided
  // under mu_ and performed after releasing it (Perform), since gRPC may run reactions inline.
  Action NextLocked(grpc::Status* status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Perform(Action action, const grpc::Status& status);
  void ObserveTokenTimes(const engine::SinkBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void BuildMessage(engine::SampleChunk chunk, v1::GenerateResponse* msg)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records the request's end (metrics, log) when it is taken from the sink; maps a cancel at
  // the deadline to DEADLINE_EXCEEDED in `done`.
  void RecordEndLocked(engine::GenerateDone* done) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After the last chunks are written: the call's status, and whether a final message was built
  // into current_ (to be written with the Finish).
  bool FinalLocked(engine::GenerateDone done, grpc::Status* status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  InferenceService* const service_;
  const v1::GenerateRequest* const request_;
  const engine::Clock::time_point arrival_;
  const std::optional<engine::Clock::time_point> deadline_;
  std::atomic<int> refs_{1};

  // Written by Validate before the request is submitted; read-only afterwards.
  uint64_t seed_ = 0;
  std::shared_ptr<engine::GenerateSink> sink_;

  absl::Mutex mu_;
  engine::Engine::RequestId id_ ABSL_GUARDED_BY(mu_) = 0;
  bool submitted_ ABSL_GUARDED_BY(mu_) = false;
  bool cancel_seen_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;  // a write failed: the client is gone
  bool engine_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // Taken from the sink, not yet written: at most one chunk per sample, and the request's end.
  std::deque<engine::SampleChunk> taken_ ABSL_GUARDED_BY(mu_);
  std::optional<engine::GenerateDone> done_ ABSL_GUARDED_BY(mu_);
  // Per sample: when its previous token was emitted (inter-token latency).
  std::vector<std::optional<engine::Clock::time_point>> last_token_time_ ABSL_GUARDED_BY(mu_);
  bool first_token_seen_ ABSL_GUARDED_BY(mu_) = false;
  // The message being written: owned by the write in flight (between StartWrite and
  // OnWriteDone), written under mu_ only while no write is in flight.
  v1::GenerateResponse current_;
};

}  // namespace xlstm::server

#endif  // XLSTM_SERVER_GENERATE_REACTOR_H_
