#include "server/inference_service.h"

#include <algorithm>
#include <filesystem>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "nlohmann/json.hpp"
#include "server/embed_reactor.h"
#include "server/generate_reactor.h"
#include "server/reactor_util.h"
#include "server/request_validation.h"
#include "server/score_reactor.h"

namespace xlstm::server {
namespace {

// Tokenizing is CPU-bound: a few threads keep several requests moving without taking the cores
// the engine thread and gRPC's threads need.
int TextThreads() {
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(cores / 4, 2, 8);
}

// Building messages and starting writes is short; two threads keep one slow task from delaying
// every stream.
constexpr int kDeliveryThreads = 2;

grpc::Status TextQueueFull(const WorkerPool& pool) {
  return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                      absl::StrCat("the server's text queue is full (", pool.queued(),
                                   " requests waiting to be tokenized); retry later"));
}

// The last component of the model directory: what GetModelInfo tells clients instead of the
// path, which would reveal the server's filesystem layout.
std::string ModelName(const std::string& model_dir) {
  std::filesystem::path dir(model_dir);
  if (!dir.has_filename()) dir = dir.parent_path();  // "models/x/" -> "models/x"
  return dir.filename().string();
}

// config.json for GetModelInfo: Hugging Face writes the local path it loaded from into
// "_name_or_path"; drop it (and anything that does not parse: the loader read this text
// already, so that cannot happen short of a race with a writer).
std::string WithoutLocalPaths(const std::string& config_json) {
  nlohmann::json config = nlohmann::json::parse(config_json, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object()) return "{}";
  config.erase("_name_or_path");
  return config.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Ends a Generate call at once: its request bytes did not parse.
class RefusedWriteReactor : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  explicit RefusedWriteReactor(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

// The generated service numbers its methods in the order of the .proto; the handlers below are
// registered by those numbers, taken from the descriptor by name so that a method added to the
// .proto cannot shift another's handler onto it.
const google::protobuf::ServiceDescriptor* ServiceDescriptor() {
  const google::protobuf::ServiceDescriptor* service =
      v1::GenerateRequest::descriptor()->file()->FindServiceByName("Inference");
  XLSTM_CHECK(service != nullptr);
  return service;
}

int MethodIndex(const char* name) {
  const google::protobuf::MethodDescriptor* method = ServiceDescriptor()->FindMethodByName(name);
  XLSTM_CHECK(method != nullptr);
  return method->index();
}

}  // namespace

InferenceService::InferenceService(const ServerOptions& options, Metrics* metrics,
                                   TokenAuthenticator* auth)
    : options_(options),
      metrics_(metrics),
      auth_(auth),
      text_pool_(std::make_unique<WorkerPool>("xlstm-text", TextThreads(),
                                              static_cast<size_t>(std::max(1, options.max_queue)))),
      delivery_pool_(std::make_unique<WorkerPool>("xlstm-deliver", kDeliveryThreads, 0)) {
  RegisterCheckedHandlers();
}

// Replaces the generated handlers (which let gRPC answer an unparsable request UNIMPLEMENTED
// with no message) by ones that parse the request themselves (checked_request.h).
void InferenceService::RegisterCheckedHandlers() {
  using grpc::internal::CallbackServerStreamingHandler;
  using grpc::internal::CallbackUnaryHandler;
  MarkMethodCallback(
      MethodIndex("Generate"),
      new CallbackServerStreamingHandler<CheckedRequest<v1::GenerateRequest>, v1::GenerateResponse>(
          [this](grpc::CallbackServerContext* context,
                 const CheckedRequest<v1::GenerateRequest>* request)
              -> grpc::ServerWriteReactor<v1::GenerateResponse>* {
            if (grpc::Status admitted = Admit(context, request->parse_status); !admitted.ok()) {
              return new RefusedWriteReactor(admitted);
            }
            return Generate(context, &request->message);
          }));
  // Every unary method of the service, Embed included: a method left out here would keep
  // gRPC's generated handler, which checks no token.
  RegisterCheckedUnary("Score", &InferenceService::Score);
  RegisterCheckedUnary("Embed", &InferenceService::Embed);
  RegisterCheckedUnary("Tokenize", &InferenceService::Tokenize);
  RegisterCheckedUnary("Detokenize", &InferenceService::Detokenize);
  RegisterCheckedUnary("GetModelInfo", &InferenceService::GetModelInfo);
  // Generate and the unary methods above: every method of the service, or an RPC added to the
  // .proto would be served by a handler that checks neither tokens nor request bytes.
  XLSTM_CHECK(1 + checked_unary_methods_ == ServiceDescriptor()->method_count());
}

template <class Request, class Response>
void InferenceService::RegisterCheckedUnary(const char* name,
                                            UnaryMethod<Request, Response> method) {
  const int index = MethodIndex(name);
  ++checked_unary_methods_;
  MarkMethodCallback(
      index, new grpc::internal::CallbackUnaryHandler<CheckedRequest<Request>, Response>(
                 [this, method](grpc::CallbackServerContext* context,
                                const CheckedRequest<Request>* request, Response* response) {
                   if (grpc::Status admitted = Admit(context, request->parse_status);
                       !admitted.ok()) {
                     grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
                     reactor->Finish(admitted);
                     return reactor;
                   }
                   return (this->*method)(context, &request->message, response);
                 }));
}

grpc::Status InferenceService::Admit(grpc::CallbackServerContext* context,
                                     const absl::Status& parse_status) const {
  // Authentication first: an unauthenticated caller learns nothing, not even whether its bytes
  // parsed. The token itself never reaches a log or a status message.
  if (auth_ != nullptr) {
    const auto& metadata = context->client_metadata();
    const auto it = metadata.find("authorization");
    const absl::string_view value = it == metadata.end()
                                        ? absl::string_view()
                                        : absl::string_view(it->second.data(), it->second.size());
    if (!auth_->Allows(value)) {
      if (metrics_) metrics_->RequestRefused("unauthenticated");
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          it == metadata.end() ? "missing 'authorization: Bearer <token>' metadata"
                                               : "the bearer token is not valid");
    }
  }
  if (!parse_status.ok()) {
    if (metrics_) metrics_->RequestRefused("invalid");
    return ToGrpc(parse_status);
  }
  return grpc::Status::OK;
}

InferenceService::~InferenceService() = default;

grpc::Status ToGrpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

void InferenceService::SetEngine(engine::Engine* engine, const TextCodec* codec,
                                 std::string config_json) {
  config_json_ = WithoutLocalPaths(config_json);
  codec_.store(codec);
  engine_.store(engine);
}

grpc::Status InferenceService::CheckServing() const {
  if (engine_.load() == nullptr) {
    if (metrics_) metrics_->RequestRejected("loading");
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the model is still loading");
  }
  if (draining_.load()) {
    if (metrics_) metrics_->RequestRejected("draining");
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "the server is draining; not accepting new requests");
  }
  return grpc::Status::OK;
}

grpc::ServerWriteReactor<v1::GenerateResponse>* InferenceService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  return new GenerateReactor(this, context, request);
}

grpc::ServerUnaryReactor* InferenceService::Score(grpc::CallbackServerContext* context,
                                                  const v1::ScoreRequest* request,
                                                  v1::ScoreResponse* response) {
  return new ScoreReactor(this, context, request, response);
}

grpc::ServerUnaryReactor* InferenceService::Embed(grpc::CallbackServerContext* context,
                                                  const v1::EmbedRequest* request,
                                                  v1::EmbedResponse* response) {
  return new EmbedReactor(this, context, request, response);
}

grpc::ServerUnaryReactor* InferenceService::Tokenize(grpc::CallbackServerContext* context,
                                                     const v1::TokenizeRequest* request,
                                                     v1::TokenizeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (engine_.load() == nullptr) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the model is still loading"));
    return reactor;
  }
  // Refused by size at once; the UTF-8 check and the encoding (linear or worse in the text) run
  // on the text pool.
  const ValidationContext validation = MakeValidation(*this);
  if (absl::Status sized = CheckTextLength(validation, "text", request->text().size());
      !sized.ok()) {
    reactor->Finish(ToGrpc(sized));
    return reactor;
  }
  const bool queued = text_pool_->TrySubmit([validation, context, request, response, reactor] {
    if (context->IsCancelled()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
      return;
    }
    absl::StatusOr<std::vector<int32_t>> ids = ToTokenIds(validation, *request);
    if (!ids.ok()) {
      reactor->Finish(ToGrpc(ids.status()));
      return;
    }
    response->mutable_ids()->Add(ids->begin(), ids->end());
    reactor->Finish(grpc::Status::OK);
  });
  if (!queued) reactor->Finish(TextQueueFull(*text_pool_));
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::Detokenize(grpc::CallbackServerContext* context,
                                                       const v1::DetokenizeRequest* request,
                                                       v1::DetokenizeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const TextCodec* codec = codec_.load();
  if (engine_.load() == nullptr || codec == nullptr) {
    reactor->Finish(grpc::Status(
        engine_.load() == nullptr ? grpc::StatusCode::UNAVAILABLE
                                  : grpc::StatusCode::FAILED_PRECONDITION,
        engine_.load() == nullptr ? "the model is still loading" : "this model has no tokenizer"));
    return reactor;
  }
  // A message can hold millions of ids: decode them on the text pool.
  const bool queued = text_pool_->TrySubmit([codec, context, request, response, reactor] {
    if (context->IsCancelled()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
      return;
    }
    std::vector<int32_t> ids(request->ids().begin(), request->ids().end());
    absl::StatusOr<std::string> text = codec->Decode(ids, request->skip_special_tokens());
    if (!text.ok()) {
      reactor->Finish(ToGrpc(text.status()));
      return;
    }
    response->set_text(*std::move(text));
    reactor->Finish(grpc::Status::OK);
  });
  if (!queued) reactor->Finish(TextQueueFull(*text_pool_));
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::GetModelInfo(grpc::CallbackServerContext* context,
                                                         const v1::GetModelInfoRequest*,
                                                         v1::GetModelInfoResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  engine::Engine* e = engine_.load();
  if (e == nullptr) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the model is still loading"));
    return reactor;
  }
  response->set_model_name(ModelName(options_.model_dir));
  response->set_config_json(config_json_);
  response->set_vocab_size(e->config().vocab_size);
  for (int64_t id : e->config().eos_token_ids) response->add_eos_token_ids(id);
  response->set_backend(e->backend_name());
  response->set_num_slots(e->num_slots());
  response->set_has_tokenizer(codec_.load() != nullptr);
  response->set_slots_used(e->Stats().slots_used);
  v1::Limits* l = response->mutable_limits();
  l->set_max_prompt_tokens(options_.max_prompt_tokens);
  l->set_max_new_tokens(options_.max_new_tokens_limit);
  l->set_max_queue(options_.max_queue);
  l->set_step_token_budget(options_.step_token_budget);
  l->set_max_n(std::min(options_.max_n, e->num_slots()));
  l->set_max_top_logprobs(engine::kMaxTopLogprobs);
  l->set_max_stop_strings(options_.max_stop_strings);
  l->set_max_stop_string_bytes(options_.max_stop_string_bytes);
  l->set_max_message_bytes(options_.max_message_bytes);
  l->set_max_score_items(options_.max_score_items);
  l->set_max_continuations(std::min(options_.max_continuations, e->num_slots()));
  l->set_max_embed_inputs(options_.max_embed_inputs);
  l->set_max_embed_positions(options_.max_embed_positions);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace xlstm::server
