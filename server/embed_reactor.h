// One Embed call: validates the inputs (off the callback thread when they have text to
// tokenize), submits one engine request per input, and answers when all have ended; the first
// error cancels the rest. The same shape as ScoreReactor (score_reactor.h).
//
// Threading:
// - The constructor and OnCancel run on gRPC threads and never block: inputs with text are
//   validated on the service's text pool.
// - Each input's on_done runs on the engine thread and only stores its result; the last one
//   queues Respond on the service's delivery pool, which copies the embeddings into the
//   response, records the metrics and the log line, and finishes the call.
// - mu_ guards the call's state and `response_` until Respond.
//
// Lifetime: deleted in OnDone. Finish is called exactly once, by Respond or by a refusal, and
// only after every submitted input's on_done has run; nothing touches the reactor after it.
#ifndef XLSTM_SERVER_EMBED_REACTOR_H_
#define XLSTM_SERVER_EMBED_REACTOR_H_

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

class EmbedReactor final : public grpc::ServerUnaryReactor {
 public:
  // `request` and `response` are owned by gRPC and live until Finish.
  EmbedReactor(InferenceService* service, grpc::CallbackServerContext* context,
               const v1::EmbedRequest* request, v1::EmbedResponse* response);

  void OnCancel() override;
  void OnDone() override { delete this; }

 private:
  ~EmbedReactor() override = default;

  // Validates and submits the inputs, or finishes the call with the reason it cannot run.
  void Validate();
  // Submits the validated inputs (under mu_); the error that refuses the call when none was.
  std::optional<absl::Status> Submit(std::vector<engine::EmbedRequest> inputs)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Logs and finishes a call that never reached the engine (the caller counts it).
  void FinishRefused(const grpc::Status& status);
  // Engine thread.
  void OnInputDone(size_t input, engine::EmbedDone done);
  // Builds the response from every input's result and finishes the call.
  void Respond();

  InferenceService* const service_;
  const v1::EmbedRequest* const request_;
  v1::EmbedResponse* const response_;
  const engine::Clock::time_point arrival_;
  const std::optional<engine::Clock::time_point> deadline_;

  absl::Mutex mu_;
  bool cancel_seen_ ABSL_GUARDED_BY(mu_) = false;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;  // submitted inputs whose on_done has not run
  std::vector<engine::Engine::RequestId> ids_ ABSL_GUARDED_BY(mu_);  // submitted, by input
  std::vector<std::optional<engine::EmbedDone>> results_ ABSL_GUARDED_BY(mu_);  // by input
  std::optional<absl::Status> error_ ABSL_GUARDED_BY(mu_);                      // the first error
};

}  // namespace xlstm::server

#endif  // XLSTM_SERVER_EMBED_REACTOR_H_
