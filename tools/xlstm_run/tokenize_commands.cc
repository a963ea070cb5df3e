// xlstm-run tokenize / detokenize: text <-> token ids with a tokenizer.json.
//
//   xlstm-run tokenize   --tokenizer FILE|DIR --text "..." [--json]
//   xlstm-run detokenize --tokenizer FILE|DIR --ids 1,2,3 [--skip_special_tokens] [--json]
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
#include "tools/xlstm_run/cli_util.h"
#include "tools/xlstm_run/commands.h"
#include "tools/xlstm_run/flags.h"

namespace xlstm::run {
namespace {

using ::xlstm::tokenizer::Tokenizer;

// --tokenizer names a tokenizer.json, or a model directory that holds one.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return Tokenizer::FromFile((std::filesystem::path(path) / "tokenizer.json").string());
  }
  return Tokenizer::FromFile(path);
}

// JSON text of `value`; invalid UTF-8 (which Decode never produces) is replaced, never thrown.
std::string Dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

int RunTokenize() {
  const std::string path = absl::GetFlag(FLAGS_tokenizer);
  if (path.empty()) {
    std::fprintf(stderr, "xlstm-run tokenize: --tokenizer FILE is required\n");
    return 2;
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadTokenizer(path);
  if (!tokenizer.ok()) {
    std::fprintf(stderr, "xlstm-run tokenize: %s\n", tokenizer.status().ToString().c_str());
    return 1;
  }
  const std::string text = absl::GetFlag(FLAGS_text);
  absl::StatusOr<std::vector<int32_t>> ids = (*tokenizer)->Encode(text);
  if (!ids.ok()) {
    std::fprintf(stderr, "xlstm-run tokenize: %s\n", ids.status().ToString().c_str());
    return 1;
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("%s\n", Dump(nlohmann::json{{"ids", *ids}}).c_str());
    return 0;
  }
  std::string joined;
  for (size_t i = 0; i < ids->size(); ++i) {
    if (i > 0) joined += ',';
    joined += std::to_string((*ids)[i]);
  }
  std::printf("%zu tokens: %s\n", ids->size(), joined.c_str());
  for (const int32_t id : *ids) {
    absl::StatusOr<std::string> piece = (*tokenizer)->Decode({id}, false);
    std::printf("%8d  %s\n", id, piece.ok() ? Dump(*piece).c_str() : "?");
  }
  return 0;
}

int RunDetokenize() {
  const std::string path = absl::GetFlag(FLAGS_tokenizer);
  if (path.empty()) {
    std::fprintf(stderr, "xlstm-run detokenize: --tokenizer FILE is required\n");
    return 2;
  }
  const absl::StatusOr<std::vector<int32_t>> ids = ParseIdList("ids", absl::GetFlag(FLAGS_ids));
  if (!ids.ok()) {
    std::fprintf(stderr, "xlstm-run detokenize: %s\n", std::string(ids.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadTokenizer(path);
  if (!tokenizer.ok()) {
    std::fprintf(stderr, "xlstm-run detokenize: %s\n", tokenizer.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<std::string> text =
      (*tokenizer)->Decode(*ids, absl::GetFlag(FLAGS_skip_special_tokens));
  if (!text.ok()) {
    std::fprintf(stderr, "xlstm-run detokenize: %s\n", text.status().ToString().c_str());
    return 1;
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("%s\n", Dump(nlohmann::json{{"text", *text}}).c_str());
  } else {
    std::fwrite(text->data(), 1, text->size(), stdout);
    std::fputc('\n', stdout);
  }
  return 0;
}

}  // namespace xlstm::run
