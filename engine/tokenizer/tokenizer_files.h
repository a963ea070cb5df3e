// Loading the tokenizer of a model directory: tokenizer.json plus, when present,
// tokenizer_config.json and special_tokens_map.json for the BOS / EOS tokens and whether BOS is
// prepended.
//
// Resolution (first that applies):
//   bos / eos token: tokenizer_config.json "bos_token" / "eos_token" (a string or an object
//     with "content"), then special_tokens_map.json's, then id 0 (<|endoftext|> of the
//     GPT-NeoX / xLSTM-7b vocabulary).
//   add_bos: tokenizer_config.json "add_bos_token", else true (xLSTM-7b expects BOS id 0
//     prepended by the caller).
// A named token that is not in the vocabulary is an error naming the file and field.
//
// Thread-safety: TokenizerFiles is immutable after loading; share it freely (see Tokenizer).
#ifndef XLSTM_ENGINE_TOKENIZER_TOKENIZER_FILES_H_
#define XLSTM_ENGINE_TOKENIZER_TOKENIZER_FILES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"

namespace xlstm::tokenizer {

struct TokenizerFiles {
  std::unique_ptr<Tokenizer> tokenizer;
  int32_t bos_id = 0;
  int32_t eos_id = 0;
  bool add_bos = true;

  // Encode(text), with bos_id in front when add_bos: the ids a model prompt starts with.
  absl::StatusOr<std::vector<int32_t>> EncodePrompt(std::string_view text) const;
};

// Whether `model_dir` has something at tokenizer.json (anything, even a FIFO or a symlink
// loop: LoadTokenizerFiles then refuses it naming the file).
bool HasTokenizer(const std::string& model_dir);

// Loads `model_dir`/tokenizer.json and the optional config files. NotFound when tokenizer.json
// is missing; InvalidArgument (naming the file) for malformed or inconsistent files.
absl::StatusOr<TokenizerFiles> LoadTokenizerFiles(const std::string& model_dir);

}  // namespace xlstm::tokenizer

#endif  // XLSTM_ENGINE_TOKENIZER_TOKENIZER_FILES_H_
