// Proto -> engine request mapping with validation at the edge: every error is INVALID_ARGUMENT
// and names the field and the limit. Runs on gRPC threads (tokenizes text prompts).
#ifndef XLSTM_SERVER_REQUEST_VALIDATION_H_
#define XLSTM_SERVER_REQUEST_VALIDATION_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model_config.h"
#include "engine/serving/request.h"
#include "server/server_options.h"
#include "server/text_codec.h"
#include "xlstm/v1/inference.pb.h"

namespace xlstm::server {

struct ValidationContext {
  const ServerOptions* options;
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

}  // namespace xlstm::server

#endif  // XLSTM_SERVER_REQUEST_VALIDATION_H_
