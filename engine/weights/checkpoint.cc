#include "engine/weights/checkpoint.h"

#include <filesystem>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/untrusted_file.h"
#include "nlohmann/json.hpp"

namespace xlstm::engine {
namespace {

namespace fs = std::filesystem;

constexpr char kSingleFile[] = "model.safetensors";
constexpr char kIndexFile[] = "model.safetensors.index.json";

absl::StatusOr<std::string> ReadText(const fs::path& path) {
  return files::ReadRegularFile(path.string(), files::kMaxJsonFileBytes);
}

// Parses a JSON file's text; every nlohmann error (parse_error, and out_of_range for a number
// that overflows a double, 1e999) becomes InvalidArgument naming the file.
absl::StatusOr<nlohmann::json> ParseJson(const fs::path& path, const std::string& text) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": invalid JSON: ", e.what()));
  }
}

// Shard names come from a file we do not trust: they must be plain names in the model directory.
bool IsPlainFileName(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos && name != "." && name != "..";
}

// generation_config.json's eos_token_id, when present, is what HF generate() stops on.
absl::Status ApplyGenerationConfig(const fs::path& path, ModelConfig* config) {
  XLSTM_ASSIGN_OR_RETURN(const bool exists, files::Exists(path.string()));
  if (!exists) return absl::OkStatus();
  XLSTM_ASSIGN_OR_RETURN(std::string text, ReadText(path));
  XLSTM_ASSIGN_OR_RETURN(const nlohmann::json j, ParseJson(path, text));
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": expected a JSON object"));
  }
  auto it = j.find("eos_token_id");
  if (it == j.end()) return absl::OkStatus();
  std::vector<int64_t> ids;
  auto add = [&](const nlohmann::json& v) -> absl::Status {
    if (!v.is_number_integer()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path.string(), ": field 'eos_token_id' must be an integer or a list of integers"));
    }
    ids.push_back(v.get<int64_t>());
    return absl::OkStatus();
  };
  if (it->is_array()) {
    for (const auto& v : *it) XLSTM_RETURN_IF_ERROR(add(v));
  } else if (!it->is_null()) {
    XLSTM_RETURN_IF_ERROR(add(*it));
  }
  config->eos_token_ids = std::move(ids);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& model_dir) {
  const fs::path dir(model_dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat(model_dir, ": not a model directory"));
  }
  std::unique_ptr<Checkpoint> ckpt(new Checkpoint());
  ckpt->dir_ = model_dir;
  XLSTM_ASSIGN_OR_RETURN(ckpt->config_, ModelConfig::FromFile((dir / "config.json").string()));
  XLSTM_RETURN_IF_ERROR(ApplyGenerationConfig(dir / "generation_config.json", &ckpt->config_));

  XLSTM_ASSIGN_OR_RETURN(const bool single, files::Exists((dir / kSingleFile).string()));
  if (single) {
    XLSTM_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open((dir / kSingleFile).string()));
    XLSTM_RETURN_IF_ERROR(ckpt->AddFile(std::move(file)));
    return ckpt;
  }
  const fs::path index_path = dir / kIndexFile;
  XLSTM_ASSIGN_OR_RETURN(const bool indexed, files::Exists(index_path.string()));
  if (!indexed) {
    return absl::NotFoundError(absl::StrCat(model_dir, ": no ", kSingleFile, " and no ", kIndexFile,
                                            " (only safetensors weights are supported)"));
  }
  XLSTM_ASSIGN_OR_RETURN(std::string index_text, ReadText(index_path));
  XLSTM_ASSIGN_OR_RETURN(const nlohmann::json index, ParseJson(index_path, index_text));
  auto map_it = index.is_object() ? index.find("weight_map") : index.end();
  if (map_it == index.end() || !map_it->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(index_path.string(), ": missing object 'weight_map'"));
  }
  std::map<std::string, std::string> weight_map;  // tensor -> shard
  std::set<std::string> shards;
  for (auto it = map_it->begin(); it != map_it->end(); ++it) {
    if (!it->is_string() || !IsPlainFileName(it->get<std::string>())) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path.string(), ": weight_map['", it.key(),
                       "'] must be a file name in the model directory, got ", it->dump()));
    }
    weight_map[it.key()] = it->get<std::string>();
    shards.insert(it->get<std::string>());
  }
  for (const std::string& shard : shards) {
    XLSTM_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open((dir / shard).string()));
    XLSTM_RETURN_IF_ERROR(ckpt->AddFile(std::move(file)));
  }
  for (const auto& [tensor, shard] : weight_map) {
    auto it = ckpt->tensors_.find(tensor);
    if (it == ckpt->tensors_.end() || fs::path(it->second.file->path()).filename() != shard) {
      return absl::InvalidArgumentError(absl::StrCat(index_path.string(), ": lists tensor '",
                                                     tensor, "' in ", shard,
                                                     ", but that shard does not contain it"));
    }
  }
  for (const auto& [tensor, entry] : ckpt->tensors_) {
    if (weight_map.count(tensor) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(entry.file->path(), ": tensor '", tensor,
                                                     "' is not listed in ", kIndexFile));
    }
  }
  return ckpt;
}

absl::Status Checkpoint::AddFile(std::unique_ptr<SafetensorsFile> file) {
  for (const auto& [name, view] : file->tensors()) {
    auto [it, inserted] = tensors_.emplace(name, Entry{&view, file.get()});
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", name, "' appears in both ", it->second.file->path(), " and ", file->path()));
    }
  }
  files_.push_back(std::move(file));
  return absl::OkStatus();
}

absl::StatusOr<const TensorView*> Checkpoint::Take(const std::string& name,
                                                   const std::vector<int64_t>& shape) {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    return absl::NotFoundError(absl::StrCat(dir_, ": missing tensor '", name, "' (expected shape ",
                                            ShapeToString(shape), ")"));
  }
  const TensorView* view = it->second.view;
  if (view->shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        it->second.file->path(), ": tensor '", name, "' has shape ", ShapeToString(view->shape),
        ", expected ", ShapeToString(shape), " from config.json"));
  }
  if (!IsWeightDType(view->dtype)) {
    return absl::InvalidArgumentError(absl::StrCat(it->second.file->path(), ": tensor '", name,
                                                   "' has dtype ", DTypeName(view->dtype),
                                                   "; weights must be F32, BF16 or F16"));
  }
  taken_.insert(name);
  return view;
}

absl::Status Checkpoint::CheckAllTaken() const {
  for (const auto& [name, entry] : tensors_) {
    if (taken_.count(name) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(entry.file->path(), ": unexpected tensor '", name,
                       "' (not part of an xLSTM model with this config.json)"));
    }
  }
  return absl::OkStatus();
}

std::string Checkpoint::FileOf(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? std::string() : it->second.file->path();
}

}  // namespace xlstm::engine
