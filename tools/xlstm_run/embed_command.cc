// xlstm-run embed: the hidden states after the final norm (HF xLSTMModel's last_hidden_state) of
// one input (--ids or --prompt), pooled as --pooling (last, mean, all) and optionally
// L2-normalised, on the CPU reference model. The same numbers the server's Embed returns on the
// CPU backend, and the same JSON as `xlstm-client embed --json`.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "engine/serving/embedding_pooling.h"
#include "nlohmann/json.hpp"
#include "tools/xlstm_run/cli_util.h"
#include "tools/xlstm_run/commands.h"
#include "tools/xlstm_run/flags.h"

namespace xlstm::run {
namespace {

absl::StatusOr<engine::Pooling> PoolingFlag() {
  const std::string pooling = absl::GetFlag(FLAGS_pooling);
  if (pooling == "last") return engine::Pooling::kLast;
  if (pooling == "mean") return engine::Pooling::kMean;
  if (pooling == "all") return engine::Pooling::kAll;
  return FlagError("pooling", absl::StrCat("'", pooling, "' is not last, mean or all"));
}

// The input's ids: --ids as given, or --prompt encoded as the server encodes a text input.
absl::StatusOr<std::vector<int32_t>> InputIds() {
  XLSTM_ASSIGN_OR_RETURN(std::vector<int32_t> ids, ParseIdList("ids", absl::GetFlag(FLAGS_ids)));
  const std::string text = absl::GetFlag(FLAGS_prompt);
  if (!text.empty()) {
    if (!ids.empty()) return FlagError("prompt", "give either --prompt or --ids, not both");
    XLSTM_ASSIGN_OR_RETURN(tokenizer::TokenizerFiles tok, LoadModelTokenizer("prompt"));
    XLSTM_ASSIGN_OR_RETURN(ids, tok.EncodePrompt(text));
  }
  if (ids.empty()) return FlagError("ids", "needs at least one token (or give --prompt)");
  return ids;
}

void Print(const std::vector<float>& values, int32_t positions, int64_t dim, int32_t tokens) {
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json embedding = {{"positions", positions}, {"tokens", tokens}, {"values", values}};
    nlohmann::json out = {{"hidden_size", dim},
                          {"prompt_tokens", tokens},
                          {"embeddings", nlohmann::json::array({embedding})}};
    std::printf("%s\n", out.dump().c_str());
    return;
  }
  for (int32_t row = 0; row < positions; ++row) {
    std::string line = absl::StrCat(0, "\t", row, "\t");
    for (int64_t d = 0; d < dim; ++d) {
      absl::StrAppend(&line, d == 0 ? "" : " ", absl::StrFormat("%.9g", values[row * dim + d]));
    }
    std::printf("%s\n", line.c_str());
  }
}

absl::Status Embed() {
  XLSTM_ASSIGN_OR_RETURN(const engine::Pooling pooling, PoolingFlag());
  XLSTM_ASSIGN_OR_RETURN(const std::vector<int32_t> ids, InputIds());
  XLSTM_ASSIGN_OR_RETURN(std::unique_ptr<engine::CpuModel> model, LoadModelFromFlags());
  const int64_t vocab = model->config().vocab_size, dim = model->config().hidden_size;
  for (int32_t id : ids) {
    if (id >= vocab) {
      return FlagError(
          "ids", absl::StrCat("token id ", id, " is outside the vocabulary [0, ", vocab, ")"));
    }
  }
  // One prefill of the whole input; only the positions the pooling needs are normed.
  engine::RecurrentState state = model->NewState();
  const engine::SequenceChunk chunk{
      &state, ids, engine::LogitsMode::kNone,
      pooling == engine::Pooling::kLast ? engine::LogitsMode::kLast : engine::LogitsMode::kAll};
  std::vector<float> hidden;
  XLSTM_RETURN_IF_ERROR(model->Forward(absl::MakeConstSpan(&chunk, 1), &hidden).status());
  engine::EmbeddingPooler pooler(pooling, dim);
  pooler.Add(hidden);
  int32_t positions = 0;
  const std::vector<float> values = pooler.Finish(absl::GetFlag(FLAGS_normalize), positions);
  Print(values, positions, dim, static_cast<int32_t>(ids.size()));
  return absl::OkStatus();
}

}  // namespace

int RunEmbed() {
  absl::Status status = Embed();
  return status.ok() ? 0 : ReportError("embed", status);
}

}  // namespace xlstm::run
