// xlstm-run init-random: a random-weight model directory in HF's layout, from a config.json
// (fields left out take HF's defaults; model_type may be omitted).
#include <cstdio>
#include <filesystem>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/untrusted_file.h"
#include "engine/weights/random_init.h"
#include "nlohmann/json.hpp"
#include "tools/xlstm_run/cli_util.h"
#include "tools/xlstm_run/commands.h"
#include "tools/xlstm_run/flags.h"

namespace xlstm::run {
namespace {

absl::StatusOr<engine::DType> DTypeFromFlag(const std::string& name) {
  if (name == "float32" || name == "f32" || name == "fp32") return engine::DType::kF32;
  if (name == "bfloat16" || name == "bf16") return engine::DType::kBF16;
  if (name == "float16" || name == "f16" || name == "fp16") return engine::DType::kF16;
  return FlagError("dtype", absl::StrCat("'", name, "' is not one of float32, bfloat16, float16"));
}

absl::Status InitRandom() {
  const std::string config_path = absl::GetFlag(FLAGS_config);
  const std::string out_dir = absl::GetFlag(FLAGS_out);
  if (config_path.empty()) return FlagError("config", "is required (a config.json)");
  if (out_dir.empty()) return FlagError("out", "is required (the model directory to write)");
  XLSTM_ASSIGN_OR_RETURN(engine::DType dtype, DTypeFromFlag(absl::GetFlag(FLAGS_dtype)));

  XLSTM_ASSIGN_OR_RETURN(std::string json_text,
                         files::ReadRegularFile(config_path, files::kMaxJsonFileBytes));
  // A hand-written config may leave model_type out; it can only be xlstm here.
  try {
    nlohmann::json j = nlohmann::json::parse(json_text);
    if (j.is_object() && !j.contains("model_type")) {
      j["model_type"] = "xlstm";
      json_text = j.dump();
    }
  } catch (const nlohmann::json::exception&) {
    // FromJson reports the parse error (or the overflowing number) with the file name.
  }
  XLSTM_ASSIGN_OR_RETURN(engine::ModelConfig config,
                         engine::ModelConfig::FromJson(json_text, config_path));
  if (absl::Status sized = engine::CheckRandomModelSize(config, dtype); !sized.ok()) {
    // Name the config: its dims are what makes the model too large.
    return absl::Status(sized.code(), absl::StrCat(config_path, ": ", sized.message()));
  }
  XLSTM_RETURN_IF_ERROR(
      engine::WriteRandomModel(config, absl::GetFlag(FLAGS_seed), dtype, out_dir));

  const std::string tokenizer = absl::GetFlag(FLAGS_tokenizer);
  if (!tokenizer.empty()) {
    std::error_code ec;
    std::filesystem::copy_file(tokenizer, std::filesystem::path(out_dir) / "tokenizer.json",
                               std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) {
      return absl::NotFoundError(
          absl::StrCat("--tokenizer: cannot copy ", tokenizer, ": ", ec.message()));
    }
  }
  std::fprintf(stderr, "wrote %s (%lld blocks, hidden %lld, vocab %lld)\n", out_dir.c_str(),
               static_cast<long long>(config.num_blocks),
               static_cast<long long>(config.hidden_size),
               static_cast<long long>(config.vocab_size));
  return absl::OkStatus();
}

}  // namespace

int RunInitRandom() {
  absl::Status status = InitRandom();
  return status.ok() ? 0 : ReportError("init-random", status);
}

}  // namespace xlstm::run
