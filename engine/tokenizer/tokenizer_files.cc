#include "engine/tokenizer/tokenizer_files.h"

#include <filesystem>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/untrusted_file.h"
#include "nlohmann/json.hpp"

namespace xlstm::tokenizer {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// Parses an optional JSON file: nullopt when absent.
absl::StatusOr<std::optional<json>> ReadOptionalJson(const fs::path& path) {
  XLSTM_ASSIGN_OR_RETURN(const bool exists, files::Exists(path.string()));
  if (!exists) return std::optional<json>();
  XLSTM_ASSIGN_OR_RETURN(const std::string contents,
                         files::ReadRegularFile(path.string(), files::kMaxJsonFileBytes));
  try {
    json parsed = json::parse(contents);
    if (!parsed.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(path.string(), ": must be a JSON object"));
    }
    return std::optional<json>(std::move(parsed));
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": malformed JSON: ", e.what()));
  }
}

// The token string of `field` ("bos_token"...) in `config`: a string, or an object with a
// string "content" (AddedToken form). nullopt when absent or null.
absl::StatusOr<std::optional<std::string>> TokenField(const std::optional<json>& config,
                                                      const char* field, const fs::path& path) {
  if (!config.has_value() || !config->contains(field) || (*config)[field].is_null()) {
    return std::optional<std::string>();
  }
  const json& value = (*config)[field];
  if (value.is_string()) return std::optional<std::string>(value.get<std::string>());
  if (value.is_object() && value.contains("content") && value["content"].is_string()) {
    return std::optional<std::string>(value["content"].get<std::string>());
  }
  return absl::InvalidArgumentError(absl::StrCat(
      path.string(), ": \"", field, "\" must be a string or an object with a string \"content\""));
}

// Resolves `field` from the config, then the special-tokens map, else `fallback`.
absl::StatusOr<int32_t> ResolveTokenId(const Tokenizer& tokenizer, const char* field,
                                       const std::optional<json>& config,
                                       const fs::path& config_path,
                                       const std::optional<json>& special_map,
                                       const fs::path& map_path, int32_t fallback) {
  for (const auto& [file, path] :
       {std::pair<const std::optional<json>*, const fs::path*>{&config, &config_path},
        {&special_map, &map_path}}) {
    XLSTM_ASSIGN_OR_RETURN(std::optional<std::string> token, TokenField(*file, field, *path));
    if (!token.has_value()) continue;
    std::optional<int32_t> id = tokenizer.TokenToId(*token);
    if (!id.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(path->string(), ": \"", field, "\" token \"",
                                                     *token, "\" is not in the vocabulary"));
    }
    return *id;
  }
  if (fallback >= tokenizer.vocab_size()) {
    return absl::InvalidArgumentError(absl::StrCat("no ", field, " configured and the default id ",
                                                   fallback, " is not in the vocabulary"));
  }
  return fallback;
}

}  // namespace

absl::StatusOr<std::vector<int32_t>> TokenizerFiles::EncodePrompt(std::string_view text) const {
  XLSTM_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tokenizer->Encode(text));
  if (add_bos) ids.insert(ids.begin(), bos_id);
  return ids;
}

bool HasTokenizer(const std::string& model_dir) {
  // Anything at that path counts (a FIFO, a symlink loop): loading it then fails naming the
  // file, rather than the model silently serving without text support.
  absl::StatusOr<bool> exists = files::Exists((fs::path(model_dir) / "tokenizer.json").string());
  return !exists.ok() || *exists;
}

absl::StatusOr<TokenizerFiles> LoadTokenizerFiles(const std::string& model_dir) {
  const fs::path dir(model_dir);
  const fs::path tokenizer_path = dir / "tokenizer.json";
  XLSTM_ASSIGN_OR_RETURN(const bool exists, files::Exists(tokenizer_path.string()));
  if (!exists) return absl::NotFoundError(absl::StrCat(tokenizer_path.string(), ": not found"));
  TokenizerFiles files;
  XLSTM_ASSIGN_OR_RETURN(files.tokenizer, Tokenizer::FromFile(tokenizer_path.string()));

  const fs::path config_path = dir / "tokenizer_config.json";
  const fs::path map_path = dir / "special_tokens_map.json";
  XLSTM_ASSIGN_OR_RETURN(std::optional<json> config, ReadOptionalJson(config_path));
  XLSTM_ASSIGN_OR_RETURN(std::optional<json> special_map, ReadOptionalJson(map_path));

  XLSTM_ASSIGN_OR_RETURN(files.bos_id, ResolveTokenId(*files.tokenizer, "bos_token", config,
                                                      config_path, special_map, map_path, 0));
  XLSTM_ASSIGN_OR_RETURN(files.eos_id, ResolveTokenId(*files.tokenizer, "eos_token", config,
                                                      config_path, special_map, map_path, 0));
  if (config.has_value() && config->contains("add_bos_token") &&
      !(*config)["add_bos_token"].is_null()) {
    if (!(*config)["add_bos_token"].is_boolean()) {
      return absl::InvalidArgumentError(
          absl::StrCat(config_path.string(), ": \"add_bos_token\" must be a boolean"));
    }
    files.add_bos = (*config)["add_bos_token"].get<bool>();
  }
  return files;
}

}  // namespace xlstm::tokenizer
