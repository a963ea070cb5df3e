#include "engine/serving/request_validation.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace xlstm::engine {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, " ", what));
}

// "FIELD has 9 tokens; the limit (max_prompt_tokens) is 8".
absl::Status CheckCount(absl::string_view field, int64_t count, absl::string_view unit,
                        int64_t limit, absl::string_view limit_name) {
  if (count <= limit) return absl::OkStatus();
  return Invalid(field, absl::StrCat("has ", count, unit.empty() ? "" : " ", unit, "; the limit (",
                                     limit_name, ") is ", limit));
}

absl::Status CheckIds(absl::string_view field, const std::vector<int32_t>& ids, int64_t vocab) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab) {
      return Invalid(absl::StrCat(field, "[", i, "]"),
                     absl::StrCat("= ", ids[i], " is outside the vocabulary [0, ", vocab, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckTopLogprobs(int32_t top) {
  if (top >= 0 && top <= kMaxTopLogprobs) return absl::OkStatus();
  return Invalid("top_logprobs", absl::StrCat("= ", top, " is outside [0, ", kMaxTopLogprobs, "]"));
}

// The wire's SamplingOptions, by their wire names. SamplingParams::Validate() stays the
// sampler's own contract; this is what a client is told.
absl::Status CheckSampling(const SamplingParams& s) {
  if (!(s.temperature >= 0) || !std::isfinite(s.temperature)) {
    return Invalid("sampling.temperature", absl::StrCat("= ", s.temperature, " must be >= 0"));
  }
  if (s.top_k < 0) return Invalid("sampling.top_k", absl::StrCat("= ", s.top_k, " must be >= 0"));
  if (!(s.top_p > 0 && s.top_p <= 1)) {
    return Invalid("sampling.top_p", absl::StrCat("= ", s.top_p, " is outside (0, 1]"));
  }
  if (!(s.min_p >= 0 && s.min_p <= 1)) {
    return Invalid("sampling.min_p", absl::StrCat("= ", s.min_p, " is outside [0, 1]"));
  }
  if (!(s.repetition_penalty > 0) || !std::isfinite(s.repetition_penalty)) {
    return Invalid("sampling.repetition_penalty",
                   absl::StrCat("= ", s.repetition_penalty, " must be > 0"));
  }
  for (const auto& [field, value] :
       {std::pair<const char*, double>{"sampling.presence_penalty", s.presence_penalty},
        {"sampling.frequency_penalty", s.frequency_penalty}}) {
    if (!(value >= -2 && value <= 2)) {
      return Invalid(field, absl::StrCat("= ", value, " is outside [-2, 2]"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckStopping(const StoppingParams& s, const RequestLimits& limits, int64_t vocab,
                           bool has_decoder) {
  if (s.max_new_tokens < 0 || s.max_new_tokens > limits.max_new_tokens) {
    return Invalid("stopping.max_new_tokens",
                   absl::StrCat("= ", s.max_new_tokens, " is outside [0, ", limits.max_new_tokens,
                                "] (max_new_tokens_limit)"));
  }
  if (s.min_new_tokens < 0 || s.min_new_tokens > s.max_new_tokens) {
    return Invalid("stopping.min_new_tokens",
                   absl::StrCat("= ", s.min_new_tokens,
                                " is outside [0, max_new_tokens = ", s.max_new_tokens, "]"));
  }
  XLSTM_RETURN_IF_ERROR(CheckIds("stopping.stop_token_ids", s.stop_token_ids, vocab));
  XLSTM_RETURN_IF_ERROR(CheckCount("stopping.stop", static_cast<int64_t>(s.stop_strings.size()),
                                   "strings", limits.max_stop_strings, "max_stop_strings"));
  for (size_t i = 0; i < s.stop_strings.size(); ++i) {
    const std::string field = absl::StrCat("stopping.stop[", i, "]");
    if (s.stop_strings[i].empty()) return Invalid(field, "is empty");
    XLSTM_RETURN_IF_ERROR(CheckCount(field, static_cast<int64_t>(s.stop_strings[i].size()), "bytes",
                                     limits.max_stop_string_bytes, "max_stop_string_bytes"));
  }
  if (!s.stop_strings.empty() && !has_decoder) {
    return Invalid("stopping.stop",
                   "needs a tokenizer, and this model has none (use stopping.stop_token_ids)");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateGenerate(const GenerateRequest& request, const RequestLimits& limits,
                              const ModelBounds& model) {
  if (request.prompt.empty()) return Invalid("prompt", "is empty");
  XLSTM_RETURN_IF_ERROR(CheckIds("prompt.ids", request.prompt, model.vocab_size));
  XLSTM_RETURN_IF_ERROR(CheckCount("prompt", static_cast<int64_t>(request.prompt.size()), "tokens",
                                   limits.max_prompt_tokens, "max_prompt_tokens"));
  XLSTM_RETURN_IF_ERROR(CheckSampling(request.sampling));
  XLSTM_RETURN_IF_ERROR(CheckStopping(request.stopping, limits, model.vocab_size,
                                      static_cast<bool>(request.make_decoder)));
  const int32_t max_n = std::min(limits.max_n, model.num_slots);
  if (request.n < 1 || request.n > max_n) {
    return Invalid("n", absl::StrCat("= ", request.n, " is outside [1, ", max_n, "] (max_n = ",
                                     limits.max_n, ", state slots = ", model.num_slots, ")"));
  }
  return CheckTopLogprobs(request.top_logprobs);
}

absl::Status ValidateScore(const ScoreRequest& request, const RequestLimits& limits,
                           const ModelBounds& model, absl::string_view item_field) {
  const std::string prefix = item_field.empty() ? "" : absl::StrCat(item_field, ".");
  if (request.context.empty()) {
    return Invalid(prefix + "context",
                   "is empty (the first continuation token is predicted from it; use the BOS "
                   "token for an unconditional score)");
  }
  XLSTM_RETURN_IF_ERROR(CheckIds(prefix + "context_ids", request.context, model.vocab_size));
  // The wire has continuation_texts or continuation_ids; the server reports empty texts itself.
  if (request.continuations.empty()) return Invalid(prefix + "continuations", "are empty");
  const int32_t max_continuations = std::min(limits.max_continuations, model.num_slots);
  XLSTM_RETURN_IF_ERROR(CheckCount(prefix + "continuations",
                                   static_cast<int64_t>(request.continuations.size()), "",
                                   max_continuations,
                                   absl::StrCat("max_continuations = ", limits.max_continuations,
                                                ", state slots = ", model.num_slots)));
  int64_t tokens = static_cast<int64_t>(request.context.size());
  for (size_t i = 0; i < request.continuations.size(); ++i) {
    const std::string field = absl::StrCat(prefix, "continuation_ids[", i, "]");
    if (request.continuations[i].empty()) return Invalid(field, "is empty");
    XLSTM_RETURN_IF_ERROR(CheckIds(field, request.continuations[i], model.vocab_size));
    tokens += static_cast<int64_t>(request.continuations[i].size());
  }
  XLSTM_RETURN_IF_ERROR(CheckCount(item_field.empty() ? "the request" : item_field, tokens,
                                   "tokens (context + continuations)", limits.max_prompt_tokens,
                                   "max_prompt_tokens"));
  return CheckTopLogprobs(request.top_logprobs);
}

absl::Status ValidateScoreItemCount(int64_t items, const RequestLimits& limits) {
  if (items == 0) return Invalid("items", "is empty");
  return CheckCount("items", items, "items", limits.max_score_items, "max_score_items");
}

absl::Status ValidateEmbed(const EmbedRequest& request, const RequestLimits& limits,
                           const ModelBounds& model, absl::string_view input_field) {
  const std::string field = input_field.empty() ? "input" : std::string(input_field);
  if (request.input.empty()) return Invalid(field, "is empty");
  XLSTM_RETURN_IF_ERROR(CheckIds(field + ".ids", request.input, model.vocab_size));
  const int64_t tokens = static_cast<int64_t>(request.input.size());
  XLSTM_RETURN_IF_ERROR(
      CheckCount(field, tokens, "tokens", limits.max_prompt_tokens, "max_prompt_tokens"));
  if (request.pooling == Pooling::kAll && tokens > limits.max_embed_positions) {
    return Invalid(field, absl::StrCat("has ", tokens,
                                       " tokens, more positions than pooling = all "
                                       "may return; the limit (max_embed_positions) is ",
                                       limits.max_embed_positions));
  }
  return absl::OkStatus();
}

absl::Status ValidateEmbedInputCount(int64_t inputs, const RequestLimits& limits) {
  if (inputs == 0) return Invalid("inputs", "is empty");
  return CheckCount("inputs", inputs, "inputs", limits.max_embed_inputs, "max_embed_inputs");
}

absl::Status ValidateEmbedResponseBytes(const std::vector<EmbedRequest>& inputs,
                                        int64_t hidden_size, int64_t max_message_bytes) {
  int64_t rows = 0;
  for (const EmbedRequest& input : inputs) {
    rows += input.pooling == Pooling::kAll ? static_cast<int64_t>(input.input.size()) : 1;
  }
  // Packed floats plus a generous allowance for the framing of each row and input.
  const int64_t bytes = rows * (hidden_size * 4 + 16) + static_cast<int64_t>(inputs.size()) * 64;
  if (bytes <= max_message_bytes) return absl::OkStatus();
  return Invalid(
      "inputs",
      absl::StrCat("would return ", rows, " rows of ", hidden_size, " floats (about ", bytes,
                   " bytes); the limit (max_message_bytes) is ", max_message_bytes));
}

absl::Status ValidateRequestId(absl::string_view request_id) {
  if (request_id.size() <= kMaxRequestIdBytes) return absl::OkStatus();
  return Invalid("request_id", absl::StrCat("has ", request_id.size(), " bytes; the limit is ",
                                            kMaxRequestIdBytes));
}

absl::Status CheckTextFitsTokens(absl::string_view field, size_t text_bytes, int64_t max_tokens,
                                 absl::string_view limit_name, int64_t max_text_bytes_per_token) {
  if (max_text_bytes_per_token <= 0) return absl::OkStatus();
  const int64_t max_bytes = max_tokens * max_text_bytes_per_token;
  if (static_cast<int64_t>(text_bytes) <= max_bytes) return absl::OkStatus();
  return Invalid(field,
                 absl::StrCat("has ", text_bytes, " bytes, more than ", max_tokens, " tokens (",
                              limit_name, ") can hold: ", max_bytes, " bytes at most (",
                              max_text_bytes_per_token, " bytes per token with this tokenizer)"));
}

}  // namespace xlstm::engine
