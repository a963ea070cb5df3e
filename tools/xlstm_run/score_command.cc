// xlstm-run score: log P(continuation[i] | context + continuation[:i]) for every continuation
// token, their sum, and whether greedy decoding would have produced the continuation.
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "engine/sampling/logprobs.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "tools/xlstm_run/cli_util.h"
#include "tools/xlstm_run/commands.h"
#include "tools/xlstm_run/flags.h"

namespace xlstm::run {
namespace {

absl::Status Score() {
  XLSTM_ASSIGN_OR_RETURN(std::vector<int32_t> context,
                         ParseIdList("context-ids", absl::GetFlag(FLAGS_context_ids)));
  XLSTM_ASSIGN_OR_RETURN(std::vector<int32_t> continuation,
                         ParseIdList("continuation-ids", absl::GetFlag(FLAGS_continuation_ids)));
  const std::string context_text = absl::GetFlag(FLAGS_context);
  const std::string continuation_text = absl::GetFlag(FLAGS_continuation);
  if (!context_text.empty() || !continuation_text.empty()) {
    if (!context.empty() || !continuation.empty()) {
      return FlagError("context", "give either text (--context/--continuation) or ids, not both");
    }
    XLSTM_ASSIGN_OR_RETURN(tokenizer::TokenizerFiles tok, LoadModelTokenizer("context"));
    // As lm-eval-harness does: context and continuation are tokenized separately, BOS in front
    // of the context.
    XLSTM_ASSIGN_OR_RETURN(context, tok.EncodePrompt(context_text));
    XLSTM_ASSIGN_OR_RETURN(continuation, tok.tokenizer->Encode(continuation_text));
  }
  if (context.empty()) {
    return FlagError("context-ids",
                     "needs at least one token (the first continuation token is predicted from "
                     "it; use the BOS id for an unconditional score)");
  }
  if (continuation.empty()) return FlagError("continuation-ids", "needs at least one token");
  XLSTM_ASSIGN_OR_RETURN(std::unique_ptr<engine::CpuModel> model, LoadModelFromFlags());
  const int64_t vocab = model->config().vocab_size;
  for (auto [flag, ids] :
       {std::pair<const char*, const std::vector<int32_t>*>{"context-ids", &context},
        {"continuation-ids", &continuation}}) {
    for (int32_t id : *ids) {
      if (id >= vocab) {
        return FlagError(
            flag, absl::StrCat("token id ", id, " is outside the vocabulary [0, ", vocab, ")"));
      }
    }
  }

  // The context up to its last token only advances the state; logits are needed from the
  // context's last token through the continuation's second-to-last.
  engine::RecurrentState state = model->NewState();
  if (context.size() > 1) {
    XLSTM_RETURN_IF_ERROR(model
                              ->Prefill(state,
                                        absl::MakeConstSpan(context).first(context.size() - 1),
                                        engine::LogitsMode::kNone)
                              .status());
  }
  std::vector<int32_t> scored = {context.back()};
  scored.insert(scored.end(), continuation.begin(), continuation.end() - 1);
  XLSTM_ASSIGN_OR_RETURN(std::vector<float> logits,
                         model->Prefill(state, scored, engine::LogitsMode::kAll));

  std::vector<double> logprobs;
  double sum = 0;
  bool is_greedy = true;
  for (size_t i = 0; i < continuation.size(); ++i) {
    absl::Span<const float> row(logits.data() + i * vocab, vocab);
    logprobs.push_back(engine::TokenLogProb(row, continuation[i]));
    sum += logprobs.back();
    is_greedy = is_greedy && engine::Argmax(row) == continuation[i];
  }
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json out = {{"logprobs", logprobs}, {"sum", sum}, {"is_greedy", is_greedy}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    for (size_t i = 0; i < continuation.size(); ++i) {
      std::printf("%d\t%.6f\n", continuation[i], logprobs[i]);
    }
    std::printf("sum\t%.6f\nis_greedy\t%s\n", sum, is_greedy ? "true" : "false");
  }
  return absl::OkStatus();
}

}  // namespace

int RunScore() {
  absl::Status status = Score();
  return status.ok() ? 0 : ReportError("score", status);
}

}  // namespace xlstm::run
