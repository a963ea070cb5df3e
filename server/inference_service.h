// The xlstm.v1.Inference gRPC service on the callback API: one reactor per RPC
// (generate_reactor.h, score_reactor.h; the text RPCs use the default unary reactor), and no
// reaction ever blocks: engine work goes to the Engine's inbox, text work (tokenizing, decoding)
// to a small bounded pool, and engine output comes back through per-request sinks whose messages
// are built on a delivery pool, never on the engine thread.
//
// Lifecycle: created before the model is loaded (RPCs answer UNAVAILABLE "loading"); SetEngine
// makes it serve; BeginDrain makes new RPCs answer UNAVAILABLE while in-flight ones finish.
// The Engine, TextCodec and Metrics given to it must outlive the gRPC server; the service itself
// must be destroyed after the gRPC server has shut down (its destructor joins its pools).
//
// Requests are parsed by our own deserializer (checked_request.h): bytes that do not parse get
// INVALID_ARGUMENT naming the message type, not gRPC's bare UNIMPLEMENTED.
//
// Thread safety: every method may be called from any thread.
#ifndef XLSTM_SERVER_INFERENCE_SERVICE_H_
#define XLSTM_SERVER_INFERENCE_SERVICE_H_

#include <atomic>
#include <memory>
#include <string>

#include "engine/serving/engine.h"
#include "server/checked_request.h"
#include "server/metrics.h"
#include "server/server_options.h"
#include "server/text_codec.h"
#include "server/token_auth.h"
#include "server/worker_pool.h"
#include "xlstm/v1/inference.grpc.pb.h"

namespace xlstm::server {

class InferenceService : public v1::Inference::CallbackService {
 public:
  // Text pool: a few threads (see the .cc); as many requests may wait for it as for the engine
  // (--max-queue), beyond that RESOURCE_EXHAUSTED at once.
  // `auth` (may be null: no authentication) must outlive the service.
  InferenceService(const ServerOptions& options, Metrics* metrics, TokenAuthenticator* auth);
  ~InferenceService() override;

  // Called once, after loading. `codec` may be null (no tokenizer).
  void SetEngine(engine::Engine* engine, const TextCodec* codec, std::string config_json);
  void BeginDrain() { draining_.store(true); }

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* context,
                                  const v1::ScoreRequest* request,
                                  v1::ScoreResponse* response) override;
  grpc::ServerUnaryReactor* Embed(grpc::CallbackServerContext* context,
                                  const v1::EmbedRequest* request,
                                  v1::EmbedResponse* response) override;
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
  // Tokenizing, validating text requests, decoding: bounded queue (TrySubmit).
  WorkerPool* text_pool() const { return text_pool_.get(); }
  // Engine output to messages, and writes: one queued task per call at most (Submit).
  WorkerPool* delivery_pool() const { return delivery_pool_.get(); }

 private:
  template <class Request, class Response>
  using UnaryMethod = grpc::ServerUnaryReactor* (InferenceService::*)(grpc::CallbackServerContext*,
                                                                      const Request*, Response*);

  void RegisterCheckedHandlers();
  template <class Request, class Response>
  void RegisterCheckedUnary(const char* name, UnaryMethod<Request, Response> method);
  // OK when the call may proceed: UNAUTHENTICATED without a valid token (when auth is on),
  // else INVALID_ARGUMENT for a request that did not parse (counted as refused, "invalid").
  grpc::Status Admit(grpc::CallbackServerContext* context, const absl::Status& parse_status) const;

  const ServerOptions options_;
  int checked_unary_methods_ = 0;  // registered by RegisterCheckedUnary
  Metrics* metrics_;               // may be null
  TokenAuthenticator* auth_;       // may be null: no authentication
  std::atomic<engine::Engine*> engine_{nullptr};
  std::atomic<const TextCodec*> codec_{nullptr};
  std::atomic<bool> draining_{false};
  std::string config_json_;  // written before engine_ is published
  // Last: destroyed (drained and joined) first, while what their tasks use still exists.
  std::unique_ptr<WorkerPool> text_pool_;
  std::unique_ptr<WorkerPool> delivery_pool_;
};

// absl::Status -> grpc::Status, code for code.
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace xlstm::server

#endif  // XLSTM_SERVER_INFERENCE_SERVICE_H_
