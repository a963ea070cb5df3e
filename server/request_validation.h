// Proto -> engine request mapping. Only what needs the proto happens here: the oneof cases,
// UTF-8 and tokenization of text fields (refused by byte length first), the defaults of unset
// fields, the parameters map and request_id; every other check is the engine's own validation
// (engine/serving/request_validation.h), called from here with the same limits, so a message
// names the wire field and the limit either way. Every error is INVALID_ARGUMENT, except
// FAILED_PRECONDITION from ToTokenIds when the model has no tokenizer.
//
// Threading: pure functions of their arguments (the codec is thread-safe). They may tokenize
// up to the byte bound: call them from a worker thread, not a gRPC callback thread.
#ifndef XLSTM_SERVER_REQUEST_VALIDATION_H_
#define XLSTM_SERVER_REQUEST_VALIDATION_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/model_config.h"
#include "engine/serving/request.h"
#include "engine/serving/request_validation.h"
#include "server/server_options.h"
#include "server/text_codec.h"
#include "xlstm/v1/inference.pb.h"

namespace xlstm::server {

struct ValidationContext {
  const ServerOptions* options;  // the request limits (RequestLimitsOf)
  const engine::ModelConfig* config;
  int32_t num_slots;
  const TextCodec* codec;  // null: no tokenizer
};

// Fills everything but the callbacks, arrival and deadline. `seed` is used when the request
// has none.
absl::StatusOr<engine::GenerateRequest> ToEngineGenerate(const ValidationContext& ctx,
                                                         const v1::GenerateRequest& request,
                                                         uint64_t seed);

// One engine request per item (callbacks, arrival, deadline left unset).
absl::StatusOr<std::vector<engine::ScoreRequest>> ToEngineScores(const ValidationContext& ctx,
                                                                 const v1::ScoreRequest& request);

// One engine request per input (callbacks, arrival, deadline left unset).
absl::StatusOr<std::vector<engine::EmbedRequest>> ToEngineEmbeds(const ValidationContext& ctx,
                                                                 const v1::EmbedRequest& request);

// The Tokenize RPC: the ids of `request.text` (UTF-8, at most what max_prompt_tokens tokens can
// hold), with special tokens per its optional add_special_tokens. FailedPrecondition when the
// model has no tokenizer.
absl::StatusOr<std::vector<int32_t>> ToTokenIds(const ValidationContext& ctx,
                                                const v1::TokenizeRequest& request);

// "request_id": at most engine::kMaxRequestIdBytes bytes, then valid UTF-8 (it is `bytes` on the
// wire so that this check, not the protobuf parser, refuses it).
absl::Status CheckRequestId(absl::string_view request_id);

// Refuses a text field by its byte length, before tokenizing: text that cannot fit in
// max_prompt_tokens tokens (engine::CheckTextFitsTokens with this codec's bound).
absl::Status CheckTextLength(const ValidationContext& ctx, absl::string_view field,
                             size_t text_bytes);

}  // namespace xlstm::server

#endif  // XLSTM_SERVER_REQUEST_VALIDATION_H_
