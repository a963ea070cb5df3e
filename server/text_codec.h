// The model's tokenizer as the server uses it: prompt text to ids (with BOS when the model
// asks for it), ids to text, and streaming decoders for the engine's TextDecoder seam. Absent
// (Load returns null) when the model directory has no tokenizer.json or the build has no
// tokenizer; text fields are then rejected with INVALID_ARGUMENT.
//
// Thread safety: immutable after Load; Encode/Decode may run on any gRPC thread. The decoders it
// makes are per-request and run on the engine thread.
#ifndef XLSTM_SERVER_TEXT_CODEC_H_
#define XLSTM_SERVER_TEXT_CODEC_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "engine/serving/request.h"

namespace xlstm::server {

class TextCodec {
 public:
  virtual ~TextCodec() = default;
  // Null (and OK) when there is no tokenizer to load.
  static absl::StatusOr<std::unique_ptr<TextCodec>> Load(const std::string& model_dir);

  // Token ids of `text`. `add_special_tokens`: the wire's optional field of that name. Unset
  // (nullopt) means "as the tokenizer config says", like HF, where add_special_tokens defaults
  // to true and the tokenizer decides what that adds: here BOS when tokenizer_config.json's
  // add_bos_token is true or absent (tokenizer_files.h), so nullopt and true give the same ids.
  // false adds nothing.
  virtual absl::StatusOr<std::vector<int32_t>> Encode(
      absl::string_view text, std::optional<bool> add_special_tokens) const = 0;
  // The most bytes of input text that one token can stand for, so that text longer than
  // max_tokens x this cannot fit in max_tokens tokens and is refused before tokenizing
  // (engine::CheckTextFitsTokens). 0: no bound is known (nothing is refused by length).
  virtual int64_t max_text_bytes_per_token() const = 0;
  virtual absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids,
                                             bool skip_special_tokens) const = 0;
  virtual std::unique_ptr<engine::TextDecoder> MakeDecoder(bool skip_special_tokens) const = 0;
};

// Byte offset of the first invalid UTF-8 sequence, or -1 when `text` is valid.
int64_t FirstInvalidUtf8(absl::string_view text);

}  // namespace xlstm::server

#endif  // XLSTM_SERVER_TEXT_CODEC_H_
