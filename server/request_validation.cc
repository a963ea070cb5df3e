#include "server/request_validation.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "engine/util/status_macros.h"

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

absl::Status CheckIds(absl::string_view field, const google::protobuf::RepeatedField<int32_t>& ids,
                      int64_t vocab) {
  for (int i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab) {
      return Invalid(absl::StrCat(field, "[", i, "]"),
                     absl::StrCat("= ", ids[i], " is outside the vocabulary [0, ", vocab, ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> EncodeText(const ValidationContext& ctx,
                                                absl::string_view field, const std::string& text,
                                                bool add_special_tokens) {
  XLSTM_RETURN_IF_ERROR(CheckUtf8(field, text));
  if (ctx.codec == nullptr) {
    return Invalid(field, "needs a tokenizer, and this model has none (send token ids)");
  }
  absl::StatusOr<std::vector<int32_t>> ids = ctx.codec->Encode(text, add_special_tokens);
  if (!ids.ok()) return Invalid(field, ids.status().message());
  return ids;
}

absl::Status CheckPromptLength(const ValidationContext& ctx, absl::string_view field,
                               size_t tokens) {
  if (static_cast<int64_t>(tokens) > ctx.options->max_prompt_tokens) {
    return Invalid(field, absl::StrCat("has ", tokens, " tokens; the limit (max_prompt_tokens) is ",
                                       ctx.options->max_prompt_tokens));
  }
  return absl::OkStatus();
}

absl::Status CheckTopLogprobs(int32_t top) {
  if (top < 0 || top > engine::kMaxTopLogprobs) {
    return Invalid("top_logprobs",
                   absl::StrCat("= ", top, " is outside [0, ", engine::kMaxTopLogprobs, "]"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<engine::GenerateRequest> ToEngineGenerate(const ValidationContext& ctx,
                                                         const v1::GenerateRequest& request,
                                                         uint64_t seed) {
  const ServerOptions& o = *ctx.options;
  const int64_t vocab = ctx.config->vocab_size;
  engine::GenerateRequest r;
  switch (request.prompt_case()) {
    case v1::GenerateRequest::kText: {
      if (request.text().empty()) return Invalid("prompt.text", "is empty");
      XLSTM_ASSIGN_OR_RETURN(
          r.prompt, EncodeText(ctx, "prompt.text", request.text(), request.add_special_tokens()));
      if (r.prompt.empty()) return Invalid("prompt.text", "encodes to no tokens");
      break;
    }
    case v1::GenerateRequest::kIds:
      if (request.ids().ids().empty()) return Invalid("prompt.ids", "is empty");
      XLSTM_RETURN_IF_ERROR(CheckIds("prompt.ids", request.ids().ids(), vocab));
      r.prompt.assign(request.ids().ids().begin(), request.ids().ids().end());
      break;
    default:
      return Invalid("prompt", "is empty: set text or ids");
  }
  XLSTM_RETURN_IF_ERROR(CheckPromptLength(ctx, "prompt", r.prompt.size()));

  const v1::SamplingOptions& s = request.sampling();
  if (s.has_temperature() && !(s.temperature() >= 0)) {
    return Invalid("sampling.temperature", absl::StrCat("= ", s.temperature(), " must be >= 0"));
  }
  if (s.has_top_p() && !(s.top_p() > 0 && s.top_p() <= 1)) {
    return Invalid("sampling.top_p", absl::StrCat("= ", s.top_p(), " is outside (0, 1]"));
  }
  r.sampling.temperature = s.has_temperature() ? s.temperature() : 1.0;
  r.sampling.top_k = s.top_k();
  r.sampling.top_p = s.has_top_p() ? s.top_p() : 1.0;
  r.sampling.min_p = s.min_p();
  r.sampling.repetition_penalty = s.has_repetition_penalty() ? s.repetition_penalty() : 1.0;
  r.sampling.presence_penalty = s.presence_penalty();
  r.sampling.frequency_penalty = s.frequency_penalty();
  r.sampling.seed = s.has_seed() ? s.seed() : seed;
  if (absl::Status st = r.sampling.Validate(); !st.ok()) {
    return Invalid("sampling:", st.message());
  }

  const v1::StoppingOptions& st = request.stopping();
  if (st.max_new_tokens() < 0 || st.max_new_tokens() > o.max_new_tokens_limit) {
    return Invalid("stopping.max_new_tokens",
                   absl::StrCat("= ", st.max_new_tokens(), " is outside [0, ",
                                o.max_new_tokens_limit, "] (max_new_tokens_limit)"));
  }
  r.stopping.max_new_tokens = st.max_new_tokens() == 0
                                  ? std::min(o.default_max_new_tokens, o.max_new_tokens_limit)
                                  : st.max_new_tokens();
  if (st.min_new_tokens() < 0 || st.min_new_tokens() > r.stopping.max_new_tokens) {
    return Invalid("stopping.min_new_tokens",
                   absl::StrCat("= ", st.min_new_tokens(), " is outside [0, max_new_tokens = ",
                                r.stopping.max_new_tokens, "]"));
  }
  r.stopping.min_new_tokens = st.min_new_tokens();
  r.stopping.ignore_eos = st.ignore_eos();
  XLSTM_RETURN_IF_ERROR(CheckIds("stopping.stop_token_ids", st.stop_token_ids(), vocab));
  r.stopping.stop_token_ids.assign(st.stop_token_ids().begin(), st.stop_token_ids().end());
  if (st.stop_size() > o.max_stop_strings) {
    return Invalid("stopping.stop", absl::StrCat("has ", st.stop_size(), " strings; the limit is ",
                                                 o.max_stop_strings));
  }
  for (int i = 0; i < st.stop_size(); ++i) {
    const std::string field = absl::StrCat("stopping.stop[", i, "]");
    if (st.stop(i).empty()) return Invalid(field, "is empty");
    if (static_cast<int64_t>(st.stop(i).size()) > o.max_stop_string_bytes) {
      return Invalid(field, absl::StrCat("has ", st.stop(i).size(), " bytes; the limit is ",
                                         o.max_stop_string_bytes));
    }
    XLSTM_RETURN_IF_ERROR(CheckUtf8(field, st.stop(i)));
    if (ctx.codec == nullptr) {
      return Invalid(field, "needs a tokenizer, and this model has none (use stop_token_ids)");
    }
    r.stopping.stop_strings.push_back(st.stop(i));
  }
  r.stopping.include_stop_str_in_output = st.include_stop_str_in_output();

  const int32_t n = request.n() == 0 ? 1 : request.n();
  const int32_t max_n = std::min(o.max_n, ctx.num_slots);
  if (n < 1 || n > max_n) {
    return Invalid("n", absl::StrCat("= ", request.n(), " is outside [1, ", max_n, "]"));
  }
  r.n = n;
  XLSTM_RETURN_IF_ERROR(CheckTopLogprobs(request.top_logprobs()));
  r.logprobs = request.logprobs();
  r.top_logprobs = request.top_logprobs();
  if (!request.parameters().empty()) {
    return Invalid(absl::StrCat("parameters[\"", request.parameters().begin()->first, "\"]"),
                   "is not a known parameter (none are supported yet)");
  }
  if (ctx.codec != nullptr) {
    const TextCodec* codec = ctx.codec;
    const bool skip = request.skip_special_tokens();
    r.make_decoder = [codec, skip] { return codec->MakeDecoder(skip); };
  }
  return r;
}

absl::StatusOr<std::vector<engine::ScoreRequest>> ToEngineScores(const ValidationContext& ctx,
                                                                 const v1::ScoreRequest& request) {
  const ServerOptions& o = *ctx.options;
  const int64_t vocab = ctx.config->vocab_size;
  if (request.items().empty()) return Invalid("items", "is empty");
  if (request.items_size() > o.max_score_items) {
    return Invalid("items", absl::StrCat("has ", request.items_size(), " items; the limit is ",
                                         o.max_score_items));
  }
  XLSTM_RETURN_IF_ERROR(CheckTopLogprobs(request.top_logprobs()));
  const int32_t max_cont = std::min(o.max_continuations, ctx.num_slots);
  std::vector<engine::ScoreRequest> out;
  for (int i = 0; i < request.items_size(); ++i) {
    const v1::ScoreItem& item = request.items(i);
    const std::string f = absl::StrCat("items[", i, "]");
    engine::ScoreRequest r;
    r.top_logprobs = request.top_logprobs();
    switch (item.context_case()) {
      case v1::ScoreItem::kContextText: {
        if (item.context_text().empty()) return Invalid(f + ".context_text", "is empty");
        XLSTM_ASSIGN_OR_RETURN(r.context, EncodeText(ctx, f + ".context_text", item.context_text(),
                                                     request.add_special_tokens()));
        break;
      }
      case v1::ScoreItem::kContextIds:
        XLSTM_RETURN_IF_ERROR(CheckIds(f + ".context_ids", item.context_ids().ids(), vocab));
        r.context.assign(item.context_ids().ids().begin(), item.context_ids().ids().end());
        break;
      default:
        break;
    }
    if (r.context.empty()) {
      return Invalid(f + ".context", "is empty (use the BOS token for an unconditional score)");
    }
    if (!item.continuation_texts().empty() && !item.continuation_ids().empty()) {
      return Invalid(f, "sets both continuation_texts and continuation_ids");
    }
    const int count = item.continuation_texts_size() + item.continuation_ids_size();
    if (count == 0) return Invalid(f + ".continuations", "are empty");
    if (count > max_cont) {
      return Invalid(f + ".continuations",
                     absl::StrCat("has ", count, " continuations; the limit is ", max_cont));
    }
    size_t total = r.context.size();
    for (int j = 0; j < item.continuation_texts_size(); ++j) {
      const std::string cf = absl::StrCat(f, ".continuation_texts[", j, "]");
      XLSTM_ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                             EncodeText(ctx, cf, item.continuation_texts(j), false));
      if (ids.empty()) return Invalid(cf, "is empty");
      total += ids.size();
      r.continuations.push_back(std::move(ids));
    }
    for (int j = 0; j < item.continuation_ids_size(); ++j) {
      const std::string cf = absl::StrCat(f, ".continuation_ids[", j, "]");
      if (item.continuation_ids(j).ids().empty()) return Invalid(cf, "is empty");
      XLSTM_RETURN_IF_ERROR(CheckIds(cf, item.continuation_ids(j).ids(), vocab));
      r.continuations.emplace_back(item.continuation_ids(j).ids().begin(),
                                   item.continuation_ids(j).ids().end());
      total += r.continuations.back().size();
    }
    XLSTM_RETURN_IF_ERROR(CheckPromptLength(ctx, f, total));
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace xlstm::server
