// Helpers shared by the service's reactors (generate_reactor, score_reactor, the text RPCs):
// engine -> proto mappings, the gRPC deadline on the engine's clock, and the request log.
//
// Thread safety: free functions without state; callable from any thread.
#ifndef XLSTM_SERVER_REACTOR_UTIL_H_
#define XLSTM_SERVER_REACTOR_UTIL_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "engine/serving/request.h"
#include "grpcpp/grpcpp.h"
#include "server/request_validation.h"
#include "server/text_codec.h"
#include "xlstm/v1/inference.pb.h"

namespace xlstm::server {

class InferenceService;

double Seconds(engine::Clock::duration d);

v1::FinishReason ToProto(engine::FinishReason reason);

// The gRPC deadline as a steady-clock time point (none when the client set none).
std::optional<engine::Clock::time_point> SteadyDeadline(const grpc::CallbackServerContext* context);

// gRPC cancels a call whose deadline passed, and that cancel can reach the engine before the
// engine's own deadline check: report such an end as the deadline it is.
absl::Status MapCancelAtDeadline(absl::Status status,
                                 const std::optional<engine::Clock::time_point>& deadline);

// The service's limits and model, for request validation. Only while the engine is set.
ValidationContext MakeValidation(const InferenceService& service);

// Appends alternatives to `out` with their text when the model has a tokenizer (`codec` may be
// null). The text is what Detokenize returns for the one id, special tokens kept.
template <typename Alternatives, typename AddFn>
void AddTopLogprobs(const TextCodec* codec, const Alternatives& alternatives, AddFn add) {
  for (const auto& alt : alternatives) {
    v1::TopLogprob* top = add();
    top->set_id(alt.token);
    top->set_logprob(static_cast<float>(alt.logprob));
    if (codec != nullptr) {
      const int32_t id = alt.token;
      absl::StatusOr<std::string> text = codec->Decode(absl::MakeConstSpan(&id, 1), false);
      if (text.ok()) top->set_text(*std::move(text));
    }
  }
}

// A client's request id as the request log shows it for a request refused before validation
// bounded it: at most `kLoggedRequestIdBytes` bytes, so that an oversized id cannot flood the log.
inline constexpr size_t kLoggedRequestIdBytes = 256;
std::string LoggedRequestId(absl::string_view request_id);

// The request log's line for a call refused before it reached the engine (`rpc` a string
// literal: "generate", "score", "embed").
void LogRefusedCall(const char* rpc, absl::string_view request_id, const grpc::Status& status,
                    engine::Clock::time_point arrival);

}  // namespace xlstm::server

#endif  // XLSTM_SERVER_REACTOR_UTIL_H_
