#include "server/request_validation.h"

#include <algorithm>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace xlstm::server {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, " ", what));
}

absl::Status CheckUtf8(absl::string_view field, absl::string_view text) {
  const int64_t bad = FirstInvalidUtf8(text);
  if (bad < 0) return absl::OkStatus();
  return Invalid(field, absl::StrCat("is not valid UTF-8 (byte offset ", bad, ")"));
}

}  // namespace

absl::Status CheckRequestId(absl::string_view request_id) {
  XLSTM_RETURN_IF_ERROR(engine::ValidateRequestId(request_id));
  return CheckUtf8("request_id", request_id);
}

namespace {

engine::ModelBounds BoundsOf(const ValidationContext& ctx) {
  return {ctx.config->vocab_size, ctx.num_slots};
}

// A text field's ids. The caller has checked its length (CheckTextLength).
absl::StatusOr<std::vector<int32_t>> EncodeText(const ValidationContext& ctx,
                                                absl::string_view field, absl::string_view text,
                                                std::optional<bool> add_special_tokens) {
  XLSTM_RETURN_IF_ERROR(CheckUtf8(field, text));
  if (ctx.codec == nullptr) {
    return Invalid(field, "needs a tokenizer, and this model has none (send token ids)");
  }
  absl::StatusOr<std::vector<int32_t>> ids = ctx.codec->Encode(text, add_special_tokens);
  if (!ids.ok()) return Invalid(field, ids.status().message());
  return ids;
}

template <typename Message>
std::optional<bool> AddSpecialTokens(const Message& request) {
  if (!request.has_add_special_tokens()) return std::nullopt;
  return request.add_special_tokens();
}

absl::StatusOr<std::vector<int32_t>> GeneratePrompt(const ValidationContext& ctx,
                                                    const v1::GenerateRequest& request) {
  switch (request.prompt_case()) {
    case v1::GenerateRequest::kText: {
      const std::string& text = request.text();
      if (text.empty()) return Invalid("prompt.text", "is empty");
      XLSTM_RETURN_IF_ERROR(CheckTextLength(ctx, "prompt.text", text.size()));
      XLSTM_ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                             EncodeText(ctx, "prompt.text", text, AddSpecialTokens(request)));
      if (ids.empty()) return Invalid("prompt.text", "encodes to no tokens");
      return ids;
    }
    case v1::GenerateRequest::kIds:
      if (request.ids().ids().empty()) return Invalid("prompt.ids", "is empty");
      return std::vector<int32_t>(request.ids().ids().begin(), request.ids().ids().end());
    default:
      return Invalid("prompt", "is empty: set text or ids");
  }
}

// Unset optional fields take the sampler's neutral values.
engine::SamplingParams Sampling(const v1::SamplingOptions& s, uint64_t seed) {
  engine::SamplingParams p;
  p.temperature = s.has_temperature() ? s.temperature() : 1.0;
  p.top_k = s.top_k();
  p.top_p = s.has_top_p() ? s.top_p() : 1.0;
  p.min_p = s.min_p();
  p.repetition_penalty = s.has_repetition_penalty() ? s.repetition_penalty() : 1.0;
  p.presence_penalty = s.presence_penalty();
  p.frequency_penalty = s.frequency_penalty();
  p.seed = s.has_seed() ? s.seed() : seed;
  return p;
}

absl::StatusOr<engine::StoppingParams> Stopping(const v1::StoppingOptions& st,
                                                const engine::RequestLimits& limits) {
  engine::StoppingParams p;
  // 0 is proto3's unset.
  p.max_new_tokens = st.max_new_tokens() == 0
                         ? std::min(limits.default_max_new_tokens, limits.max_new_tokens)
                         : st.max_new_tokens();
  p.min_new_tokens = st.min_new_tokens();
  p.ignore_eos = st.ignore_eos();
  p.stop_token_ids.assign(st.stop_token_ids().begin(), st.stop_token_ids().end());
  for (int i = 0; i < st.stop_size(); ++i) {
    XLSTM_RETURN_IF_ERROR(CheckUtf8(absl::StrCat("stopping.stop[", i, "]"), st.stop(i)));
    p.stop_strings.push_back(st.stop(i));
  }
  p.include_stop_str_in_output = st.include_stop_str_in_output();
  return p;
}

// One Score item's engine request; `field` is "items[i]".
absl::StatusOr<engine::ScoreRequest> ScoreItem(const ValidationContext& ctx,
                                               const v1::ScoreRequest& request,
                                               const v1::ScoreItem& item,
                                               const std::string& field) {
  if (!item.continuation_texts().empty() && !item.continuation_ids().empty()) {
    return Invalid(field, "sets both continuation_texts and continuation_ids");
  }
  // The item's context and continuations share max_prompt_tokens, and so its text bytes.
  size_t text_bytes = item.has_context_text() ? item.context_text().size() : 0;
  for (const std::string& text : item.continuation_texts()) text_bytes += text.size();
  XLSTM_RETURN_IF_ERROR(CheckTextLength(ctx, field, text_bytes));

  engine::ScoreRequest r;
  r.top_logprobs = request.top_logprobs();
  if (item.has_context_text()) {
    const std::string context_field = field + ".context_text";
    if (item.context_text().empty()) return Invalid(context_field, "is empty");
    XLSTM_ASSIGN_OR_RETURN(
        r.context, EncodeText(ctx, context_field, item.context_text(), AddSpecialTokens(request)));
  } else if (item.has_context_ids()) {
    r.context.assign(item.context_ids().ids().begin(), item.context_ids().ids().end());
  }
  for (int j = 0; j < item.continuation_texts_size(); ++j) {
    const std::string continuation_field = absl::StrCat(field, ".continuation_texts[", j, "]");
    // A continuation continues the context: it never starts with special tokens.
    XLSTM_ASSIGN_OR_RETURN(
        std::vector<int32_t> ids,
        EncodeText(ctx, continuation_field, item.continuation_texts(j), /*add_special_tokens=*/
                   false));
    if (ids.empty()) return Invalid(continuation_field, "is empty");
    r.continuations.push_back(std::move(ids));
  }
  for (const v1::TokenIds& ids : item.continuation_ids()) {
    r.continuations.emplace_back(ids.ids().begin(), ids.ids().end());
  }
  return r;
}

// The wire's pooling; proto3 keeps unknown enum values, which are refused here.
absl::StatusOr<engine::Pooling> EmbedPooling(const v1::EmbedRequest& request) {
  switch (request.pooling()) {
    case v1::POOLING_UNSPECIFIED:
    case v1::POOLING_LAST:
      return engine::Pooling::kLast;
    case v1::POOLING_MEAN:
      return engine::Pooling::kMean;
    case v1::POOLING_ALL:
      return engine::Pooling::kAll;
    default:
      return Invalid("pooling", absl::StrCat("= ", static_cast<int>(request.pooling()),
                                             " is not one of POOLING_LAST (1), POOLING_MEAN (2), "
                                             "POOLING_ALL (3)"));
  }
}

// One Embed input's ids; `field` is "inputs[i]".
absl::StatusOr<std::vector<int32_t>> EmbedInputIds(const ValidationContext& ctx,
                                                   const v1::EmbedRequest& request,
                                                   const v1::EmbedInput& input,
                                                   const std::string& field) {
  switch (input.input_case()) {
    case v1::EmbedInput::kText: {
      const std::string text_field = field + ".text";
      if (input.text().empty()) return Invalid(text_field, "is empty");
      XLSTM_RETURN_IF_ERROR(CheckTextLength(ctx, text_field, input.text().size()));
      XLSTM_ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                             EncodeText(ctx, text_field, input.text(), AddSpecialTokens(request)));
      if (ids.empty()) return Invalid(text_field, "encodes to no tokens");
      return ids;
    }
    case v1::EmbedInput::kIds:
      return std::vector<int32_t>(input.ids().ids().begin(), input.ids().ids().end());
    default:
      return Invalid(field, "is empty: set text or ids");
  }
}

}  // namespace

absl::Status CheckTextLength(const ValidationContext& ctx, absl::string_view field,
                             size_t text_bytes) {
  if (ctx.codec == nullptr) return absl::OkStatus();  // refused as text needing a tokenizer
  return engine::CheckTextFitsTokens(field, text_bytes, ctx.options->max_prompt_tokens,
                                     "max_prompt_tokens", ctx.codec->max_text_bytes_per_token());
}

absl::StatusOr<engine::GenerateRequest> ToEngineGenerate(const ValidationContext& ctx,
                                                         const v1::GenerateRequest& request,
                                                         uint64_t seed) {
  const engine::RequestLimits limits = RequestLimitsOf(*ctx.options);
  XLSTM_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  engine::GenerateRequest r;
  XLSTM_ASSIGN_OR_RETURN(r.prompt, GeneratePrompt(ctx, request));
  r.sampling = Sampling(request.sampling(), seed);
  XLSTM_ASSIGN_OR_RETURN(r.stopping, Stopping(request.stopping(), limits));
  r.n = request.n() == 0 ? 1 : request.n();  // 0 is proto3's unset
  r.logprobs = request.logprobs();
  r.top_logprobs = request.top_logprobs();
  if (!request.parameters().empty()) {
    const v1::Parameter& first = request.parameters(0);
    XLSTM_RETURN_IF_ERROR(CheckUtf8("parameters[0].key", first.key()));
    // At most 64 bytes of the key in the message (cut on a UTF-8 boundary is not needed: the
    // message is bytes to gRPC, and JSON logs replace a split character).
    return Invalid(
        absl::StrCat("parameters[\"", absl::string_view(first.key()).substr(0, 64), "\"]"),
        "is not a known parameter (none are supported yet)");
  }
  if (ctx.codec != nullptr) {
    const TextCodec* codec = ctx.codec;
    const bool skip = request.skip_special_tokens();
    r.make_decoder = [codec, skip] { return codec->MakeDecoder(skip); };
  }
  XLSTM_RETURN_IF_ERROR(engine::ValidateGenerate(r, limits, BoundsOf(ctx)));
  return r;
}

absl::StatusOr<std::vector<engine::ScoreRequest>> ToEngineScores(const ValidationContext& ctx,
                                                                 const v1::ScoreRequest& request) {
  const engine::RequestLimits limits = RequestLimitsOf(*ctx.options);
  XLSTM_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  XLSTM_RETURN_IF_ERROR(engine::ValidateScoreItemCount(request.items_size(), limits));
  std::vector<engine::ScoreRequest> out;
  for (int i = 0; i < request.items_size(); ++i) {
    const std::string field = absl::StrCat("items[", i, "]");
    XLSTM_ASSIGN_OR_RETURN(engine::ScoreRequest r,
                           ScoreItem(ctx, request, request.items(i), field));
    XLSTM_RETURN_IF_ERROR(engine::ValidateScore(r, limits, BoundsOf(ctx), field));
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<std::vector<engine::EmbedRequest>> ToEngineEmbeds(const ValidationContext& ctx,
                                                                 const v1::EmbedRequest& request) {
  const engine::RequestLimits limits = RequestLimitsOf(*ctx.options);
  XLSTM_RETURN_IF_ERROR(engine::ValidateRequestId(request.request_id()));
  XLSTM_RETURN_IF_ERROR(engine::ValidateEmbedInputCount(request.inputs_size(), limits));
  XLSTM_ASSIGN_OR_RETURN(const engine::Pooling pooling, EmbedPooling(request));
  std::vector<engine::EmbedRequest> out;
  for (int i = 0; i < request.inputs_size(); ++i) {
    const std::string field = absl::StrCat("inputs[", i, "]");
    engine::EmbedRequest r;
    XLSTM_ASSIGN_OR_RETURN(r.input, EmbedInputIds(ctx, request, request.inputs(i), field));
    r.pooling = pooling;
    r.normalize = request.normalize();
    XLSTM_RETURN_IF_ERROR(engine::ValidateEmbed(r, limits, BoundsOf(ctx), field));
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<std::vector<int32_t>> ToTokenIds(const ValidationContext& ctx,
                                                const v1::TokenizeRequest& request) {
  if (ctx.codec == nullptr) return absl::FailedPreconditionError("this model has no tokenizer");
  XLSTM_RETURN_IF_ERROR(CheckTextLength(ctx, "text", request.text().size()));
  return EncodeText(ctx, "text", request.text(), AddSpecialTokens(request));
}

}  // namespace xlstm::server
