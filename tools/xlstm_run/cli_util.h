// Helpers shared by xlstm-run's subcommands: id-list parsing, model loading, error reporting.
#ifndef XLSTM_TOOLS_XLSTM_RUN_CLI_UTIL_H_
#define XLSTM_TOOLS_XLSTM_RUN_CLI_UTIL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/cpu/cpu_model.h"
#include "engine/tokenizer/tokenizer_files.h"

namespace xlstm::run {

// Parses "5,17,9" (spaces allowed around entries). `flag` names the flag in errors. An empty
// string gives an empty list.
absl::StatusOr<std::vector<int32_t>> ParseIdList(absl::string_view flag, absl::string_view text);

// Loads --model with --backend (only "cpu" in this build; "auto" means cpu here).
absl::StatusOr<std::unique_ptr<engine::CpuModel>> LoadModelFromFlags();

// The model directory's tokenizer (tokenizer.json and its config files). `flag` names the text
// flag that needs it, for the error when the directory has none.
absl::StatusOr<tokenizer::TokenizerFiles> LoadModelTokenizer(absl::string_view flag);

// Decoded text of `ids` for printing; invalid UTF-8 never reaches the output (HF's U+FFFD).
absl::StatusOr<std::string> DecodeForOutput(const tokenizer::Tokenizer& tokenizer,
                                            absl::Span<const int32_t> ids);

// Prints "xlstm-run <command>: <message>" to stderr and returns the exit code for `status`
// (2 for InvalidArgument on a flag, 1 otherwise).
int ReportError(absl::string_view command, const absl::Status& status);

// A usage error for a flag: InvalidArgument "--flag: message".
absl::Status FlagError(absl::string_view flag, absl::string_view message);

}  // namespace xlstm::run

#endif  // XLSTM_TOOLS_XLSTM_RUN_CLI_UTIL_H_
