// xlstm-run generate: prefill the prompt, then decode one token at a time until
// --max-new-tokens or the end-of-sequence token (which, as in HF generate(), is emitted).
#include <cstdio>
#include <optional>

#include "absl/flags/flag.h"
#include "absl/strings/str_join.h"
#include "engine/sampling/sampler.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "tools/xlstm_run/cli_util.h"
#include "tools/xlstm_run/commands.h"
#include "tools/xlstm_run/flags.h"

namespace xlstm::run {
namespace {

constexpr int32_t kMaxNewTokensLimit = 1 << 20;

absl::StatusOr<engine::SamplingParams> SamplingFromFlags() {
  engine::SamplingParams p;
  p.temperature = absl::GetFlag(FLAGS_greedy) ? 0.0 : absl::GetFlag(FLAGS_temperature);
  p.top_k = absl::GetFlag(FLAGS_top_k);
  p.top_p = absl::GetFlag(FLAGS_top_p);
  p.min_p = absl::GetFlag(FLAGS_min_p);
  p.repetition_penalty = absl::GetFlag(FLAGS_repetition_penalty);
  p.seed = absl::GetFlag(FLAGS_seed);
  if (absl::Status s = p.Validate(); !s.ok()) return FlagError("sampling", s.message());
  return p;
}

absl::Status Generate() {
  XLSTM_ASSIGN_OR_RETURN(std::vector<int32_t> prompt, ParseIdList("ids", absl::GetFlag(FLAGS_ids)));
  const std::string prompt_text = absl::GetFlag(FLAGS_prompt);
  if (!prompt.empty() && !prompt_text.empty()) {
    return FlagError("prompt", "give either --prompt or --ids, not both");
  }
  // With a tokenizer in the model directory the generated text is printed too.
  std::optional<tokenizer::TokenizerFiles> tok;
  if (!prompt_text.empty() || tokenizer::HasTokenizer(absl::GetFlag(FLAGS_model))) {
    XLSTM_ASSIGN_OR_RETURN(tok, LoadModelTokenizer("prompt"));
  }
  if (!prompt_text.empty()) {
    // The model was trained with BOS in front (tokenizer_config's add_bos_token, default on).
    XLSTM_ASSIGN_OR_RETURN(prompt, tok->EncodePrompt(prompt_text));
  }
  if (prompt.empty())
    return FlagError("ids", "is required: at least one prompt token id (or --prompt)");
  const int32_t max_new_tokens = absl::GetFlag(FLAGS_max_new_tokens);
  if (max_new_tokens < 0 || max_new_tokens > kMaxNewTokensLimit) {
    return FlagError("max-new-tokens",
                     absl::StrCat(max_new_tokens, " is outside [0, ", kMaxNewTokensLimit, "]"));
  }
  XLSTM_ASSIGN_OR_RETURN(engine::SamplingParams params, SamplingFromFlags());
  XLSTM_ASSIGN_OR_RETURN(std::unique_ptr<engine::CpuModel> model, LoadModelFromFlags());
  const engine::ModelConfig& config = model->config();
  for (int32_t id : prompt) {
    if (id >= config.vocab_size) {
      return FlagError("ids", absl::StrCat("token id ", id, " is outside the vocabulary [0, ",
                                           config.vocab_size, ")"));
    }
  }

  engine::Sampler sampler(params);
  for (int32_t id : prompt) sampler.ObservePrompt(id);
  const bool stop_at_eos = !absl::GetFlag(FLAGS_ignore_eos);
  std::vector<int32_t> generated;
  std::string finish_reason = "length";
  engine::RecurrentState state = model->NewState();
  if (max_new_tokens > 0) {
    XLSTM_ASSIGN_OR_RETURN(std::vector<float> logits,
                           model->Prefill(state, prompt, engine::LogitsMode::kLast));
    while (true) {
      const int32_t token = sampler.Sample(logits, generated.size());
      generated.push_back(token);
      sampler.ObserveGenerated(token);
      const bool is_eos = std::find(config.eos_token_ids.begin(), config.eos_token_ids.end(),
                                    token) != config.eos_token_ids.end();
      if (stop_at_eos && is_eos) {
        finish_reason = "eos_token";
        break;
      }
      if (static_cast<int32_t>(generated.size()) >= max_new_tokens) break;
      engine::RecurrentState* states[] = {&state};
      XLSTM_ASSIGN_OR_RETURN(logits, model->DecodeStep(states, absl::MakeConstSpan(&token, 1)));
    }
  }

  std::optional<std::string> text;
  if (tok.has_value()) {
    XLSTM_ASSIGN_OR_RETURN(text, DecodeForOutput(*tok->tokenizer, generated));
  }
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json out = {{"ids", generated}};
    if (text) out["text"] = *text;
    std::printf("%s\n", out.dump().c_str());
  } else if (text) {
    std::printf("%s\n", text->c_str());
  } else {
    std::printf("%s\n(finish reason: %s)\n", absl::StrJoin(generated, ",").c_str(),
                finish_reason.c_str());
  }
  return absl::OkStatus();
}

}  // namespace

int RunGenerate() {
  absl::Status status = Generate();
  return status.ok() ? 0 : ReportError("generate", status);
}

}  // namespace xlstm::run
