// The xlstm.v1.Inference gRPC service on the callback API: one reactor per RPC, and no reaction
// ever blocks (engine work is submitted to the Engine's inbox; results come back through the
// engine's callbacks, which queue messages and start writes).
//
// Lifecycle: created before the model is loaded (RPCs answer UNAVAILABLE "loading"); SetEngine
// makes it serve; BeginDrain makes new RPCs answer UNAVAILABLE while in-flight ones finish.
// The Engine, TextCodec and Metrics given to it must outlive the gRPC server.
#ifndef XLSTM_SERVER_INFERENCE_SERVICE_H_
#define XLSTM_SERVER_INFERENCE_SERVICE_H_

#include <atomic>
#include <string>

#include "engine/serving/engine.h"
#include "server/metrics.h"
#include "server/server_options.h"
#include "server/text_codec.h"
#include "xlstm/v1/inference.grpc.pb.h"

namespace xlstm::server {

class InferenceService : public v1::Inference::CallbackService {
 public:
  InferenceService(const ServerOptions& options, Metrics* metrics)
      : options_(options), metrics_(metrics) {}

  // Called once, after loading. `codec` may be null (no tokenizer).
  void SetEngine(engine::Engine* engine, const TextCodec* codec, std::string config_json);
  void BeginDrain() { draining_.store(true); }

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* context,
                                  const v1::ScoreRequest* request,
                                  v1::ScoreResponse* response) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* context,
                                       const v1::DetokenizeRequest* request,
                                       v1::DetokenizeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::GetModelInfoRequest* request,
                                         v1::GetModelInfoResponse* response) override;

  // Shared with the reactors.
  const ServerOptions& options() const { return options_; }
  Metrics* metrics() const { return metrics_; }
  engine::Engine* engine() const { return engine_.load(); }
  const TextCodec* codec() const { return codec_.load(); }
  // OK, or UNAVAILABLE while loading or draining (the refusal is counted in the metrics).
  grpc::Status CheckServing() const;

 private:
  const ServerOptions options_;
  Metrics* metrics_;  // may be null
  std::atomic<engine::Engine*> engine_{nullptr};
  std::atomic<const TextCodec*> codec_{nullptr};
  std::atomic<bool> draining_{false};
  std::string config_json_;  // written before engine_ is published
};

// absl::Status -> grpc::Status, code for code.
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace xlstm::server

#endif  // XLSTM_SERVER_INFERENCE_SERVICE_H_
