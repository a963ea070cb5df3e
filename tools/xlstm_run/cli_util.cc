#include "tools/xlstm_run/cli_util.h"

#include <charconv>
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "tools/xlstm_run/flags.h"

namespace xlstm::run {

absl::Status FlagError(absl::string_view flag, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", message));
}

absl::StatusOr<std::vector<int32_t>> ParseIdList(absl::string_view flag, absl::string_view text) {
  std::vector<int32_t> ids;
  if (absl::StripAsciiWhitespace(text).empty()) return ids;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    int64_t value = 0;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size() || value < 0 ||
        value > INT32_MAX) {
      return FlagError(flag,
                       absl::StrCat("'", part, "' is not a token id (a non-negative integer)"));
    }
    ids.push_back(static_cast<int32_t>(value));
  }
  return ids;
}

absl::StatusOr<std::unique_ptr<engine::CpuModel>> LoadModelFromFlags() {
  const std::string backend = absl::GetFlag(FLAGS_backend);
  if (backend != "cpu" && backend != "auto") {
    return FlagError(
        "backend", absl::StrCat("'", backend, "' is not available in xlstm-run; use cpu or auto"));
  }
  const std::string model_dir = absl::GetFlag(FLAGS_model);
  if (model_dir.empty()) return FlagError("model", "is required (a model directory)");
  return engine::CpuModel::Load(model_dir);
}

absl::StatusOr<tokenizer::TokenizerFiles> LoadModelTokenizer(absl::string_view flag) {
  const std::string model_dir = absl::GetFlag(FLAGS_model);
  if (model_dir.empty()) return FlagError("model", "is required (a model directory)");
  if (!tokenizer::HasTokenizer(model_dir)) {
    return FlagError(flag, absl::StrCat("needs a tokenizer.json in ", model_dir,
                                        " (or pass token ids instead)"));
  }
  return tokenizer::LoadTokenizerFiles(model_dir);
}

absl::StatusOr<std::string> DecodeForOutput(const tokenizer::Tokenizer& tokenizer,
                                            absl::Span<const int32_t> ids) {
  return tokenizer.Decode(ids, /*skip_special_tokens=*/false);
}

int ReportError(absl::string_view command, const absl::Status& status) {
  std::fprintf(stderr, "xlstm-run %.*s: %.*s\n", static_cast<int>(command.size()), command.data(),
               static_cast<int>(status.message().size()), status.message().data());
  const bool usage =
      status.code() == absl::StatusCode::kInvalidArgument && status.message().substr(0, 2) == "--";
  return usage ? 2 : 1;
}

}  // namespace xlstm::run
