// One Score call: validates the items (off the callback thread when they have text to
// tokenize), submits one engine request per item, and answers when all have ended; the first
// error cancels the rest.
//
// Threading:
// - The constructor and OnCancel run on gRPC threads and never block: items with text are
//   validated on the service's text pool.
// - Each item's on_done runs on the engine thread and only stores its result; the last one queues
//   Respond on the service's delivery pool, which builds the response (top alternatives with their
//   text), records the metrics and the log line, and finishes the call.
// - mu_ guards the call's state and `response_` until Respond.
//
// Lifetime: deleted in OnDone. Finish is called exactly once, by Respond or by a refusal, and
// only after every submitted item's on_done has run; nothing touches the reactor after it.
#ifndef XLSTM_SERVER_SCORE_REACTOR_H_
#define XLSTM_SERVER_SCORE_REACTOR_H_

#include <cstddef>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "engine/serving/engine.h"
#include "grpcpp/grpcpp.h"
#include "xlstm/v1/inference.pb.h"

namespace xlstm::server {

class InferenceService;

class ScoreReactor final : public grpc::ServerUnaryReactor {
 public:
  // `request` and `response` are owned by gRPC and live until Finish.
  ScoreReactor(InferenceService* service, grpc::CallbackServerContext* context,
               const v1::ScoreRequest* request, v1::ScoreResponse* response);

  void OnCancel() override;
  void OnDone() override { delete this; }

 private:
  ~ScoreReactor() override = default;

  // Validates and submits the items, or finishes the call with the reason it cannot run.
  void Validate();
  // Logs and finishes a call that never reached the engine (the caller counts it).
  void FinishRefused(const grpc::Status& status);
  // Engine thread.
  void OnItemDone(size_t item, engine::ScoreDone done);
  // Builds the response from every item's result and finishes the call.
  void Respond();

  InferenceService* const service_;
  const v1::ScoreRequest* const request_;
  v1::ScoreResponse* const response_;
  const engine::Clock::time_point arrival_;
  const std::optional<engine::Clock::time_point> deadline_;

  absl::Mutex mu_;
  bool cancel_seen_ ABSL_GUARDED_BY(mu_) = false;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;  // submitted items whose on_done has not run
  std::vector<engine::Engine::RequestId> ids_ ABSL_GUARDED_BY(mu_);  // submitted, by item
  std::vector<std::optional<engine::ScoreDone>> results_ ABSL_GUARDED_BY(mu_);  // by item
  std::optional<absl::Status> error_ ABSL_GUARDED_BY(mu_);                      // the first error
};

}  // namespace xlstm::server

#endif  // XLSTM_SERVER_SCORE_REACTOR_H_
