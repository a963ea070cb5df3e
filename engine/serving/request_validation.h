// The one validation of a request: types, limits and the field names of the messages. The server
// maps its wire types onto engine requests and then calls these same functions (so a message
// names a field as the wire spells it: "prompt.ids[3]", "stopping.max_new_tokens",
// "items[2].continuation_ids[0][1]"); the Engine calls them again on Submit for callers that
// bypass the server (tools, tests). Backends keep only the cheap checks of their own contract.
//
// Every InvalidArgument names the field, the value and the limit, and for a configurable limit
// the option that sets it ("the limit (max_prompt_tokens) is 8").
//
// Thread safety: pure functions of their arguments; call them from any thread.
#ifndef XLSTM_ENGINE_SERVING_REQUEST_VALIDATION_H_
#define XLSTM_ENGINE_SERVING_REQUEST_VALIDATION_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/sampling/token_choice.h"
#include "engine/serving/request.h"

namespace xlstm::engine {

// Alternatives per generated or scored position: what a backend can return (token_choice.h).
inline constexpr int32_t kMaxTopLogprobs = kMaxTopLogprobsPerToken;
// A request id is echoed in every response message and in logs: a client must not make the
// server hold (and copy) megabytes of it.
inline constexpr size_t kMaxRequestIdBytes = 256;

// The configurable limits of one request. Each default here is the only default of that limit:
// the server's option table starts from these.
struct RequestLimits {
  // Generate: the prompt. Score: one item's context and continuations together.
  int32_t max_prompt_tokens = 4096;
  int32_t max_new_tokens = 4096;        // the largest max_new_tokens a request may ask for
  int32_t default_max_new_tokens = 64;  // what the server uses when a request leaves it unset
  int32_t max_n = 16;                   // parallel samples (never more than the state slots)
  int32_t max_stop_strings = 16;
  int32_t max_stop_string_bytes = 256;
  int32_t max_score_items = 64;    // items per Score request
  int32_t max_continuations = 16;  // per Score item (never more than the state slots)
  int32_t max_embed_inputs = 64;   // inputs per Embed request
  // Rows an Embed input returns with pooling = all: each is hidden_size floats on the wire.
  int32_t max_embed_positions = 512;
};

// What a request is checked against besides the limits.
struct ModelBounds {
  int64_t vocab_size = 0;
  int32_t num_slots = 0;
};

// InvalidArgument for the first problem found, naming its wire field. Stop strings need a
// `make_decoder`; the result callbacks (sink, on_done) are the Engine's to check, since the
// server validates before it makes them.
absl::Status ValidateGenerate(const GenerateRequest& request, const RequestLimits& limits,
                              const ModelBounds& model);

// One Score item. `item_field` prefixes the field names ("items[2]"); empty for a bare request.
absl::Status ValidateScore(const ScoreRequest& request, const RequestLimits& limits,
                           const ModelBounds& model, absl::string_view item_field = "");

// The number of items of a Score request ("items").
absl::Status ValidateScoreItemCount(int64_t items, const RequestLimits& limits);

// One Embed input. `input_field` names it ("inputs[2]"); empty for a bare request ("input").
absl::Status ValidateEmbed(const EmbedRequest& request, const RequestLimits& limits,
                           const ModelBounds& model, absl::string_view input_field = "");

// The floats an Embed answer holds (one row per input, or one per token with pooling = all,
// each `hidden_size` floats) must fit in one gRPC message of `max_message_bytes`: a request
// whose answer could not be sent is refused before any work, naming the limit.
absl::Status ValidateEmbedResponseBytes(const std::vector<EmbedRequest>& inputs,
                                        int64_t hidden_size, int64_t max_message_bytes);

// The number of inputs of an Embed request ("inputs").
absl::Status ValidateEmbedInputCount(int64_t inputs, const RequestLimits& limits);

// "request_id" no longer than kMaxRequestIdBytes.
absl::Status ValidateRequestId(absl::string_view request_id);

// Rejects text that cannot fit in `max_tokens` tokens before anyone spends time tokenizing it:
// one token stands for at most `max_text_bytes_per_token` bytes of input text, so longer text
// needs more tokens than allowed. `limit_name` names the token limit ("max_prompt_tokens").
// `max_text_bytes_per_token` <= 0 means the tokenizer gives no such bound (nothing is checked).
absl::Status CheckTextFitsTokens(absl::string_view field, size_t text_bytes, int64_t max_tokens,
                                 absl::string_view limit_name, int64_t max_text_bytes_per_token);

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SERVING_REQUEST_VALIDATION_H_
