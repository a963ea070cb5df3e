// Hugging Face tokenizer.json (byte-level BPE, the GPT-NeoX / xLSTM family): text -> ids and
// ids -> text, identical to the `tokenizers` library's `Tokenizer.encode(text).ids` and
// `Tokenizer.decode(ids, skip_special_tokens)`.
//
// Supported tokenizer.json contents: model BPE; normalizer null / NFC; pre_tokenizer ByteLevel;
// decoder ByteLevel; post_processor null / ByteLevel (adds no tokens); truncation and padding
// null; added tokens (special or not, normalized or not, lstrip / rstrip / single_word). Other
// kinds are rejected at load with an error that names the field and lists what is supported.
//
// Encode adds no BOS (neither does HF for this family: the ByteLevel post-processor adds
// nothing); callers that need one use TokenizerFiles (tokenizer_files.h).
//
// Differences from HF, on purpose: Encode rejects invalid UTF-8 (HF cannot receive it), and
// Decode rejects ids outside the vocabulary with InvalidArgument (HF silently drops them).
//
// Thread-safety: a Tokenizer is immutable after loading and safe to use from many threads at
// once (its internal word cache is synchronized). Streaming decoding state lives in
// IncrementalDecoder (incremental_decoder.h), one per request.
#ifndef XLSTM_ENGINE_TOKENIZER_TOKENIZER_H_
#define XLSTM_ENGINE_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/tokenizer/added_tokens.h"
#include "engine/tokenizer/bpe_model.h"
#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/normalizer.h"

namespace xlstm::tokenizer {

class Tokenizer {
 public:
  // Loads a tokenizer.json file. NotFound when it cannot be read; InvalidArgument (message
  // starting with the path) for malformed JSON or unsupported / inconsistent contents.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromFile(const std::string& path);
  // Same, from the file's contents; `source` names it in error messages.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJsonString(std::string_view contents,
                                                                   std::string_view source);

  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Token ids of `text` (no BOS). InvalidArgument naming the byte offset when `text` is not
  // valid UTF-8.
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text) const;

  // Text of `ids`. Byte sequences that are not valid UTF-8 (a character split by the end of
  // `ids`, say) become U+FFFD exactly as in HF (maximal invalid subsequences). With
  // `skip_special_tokens`, special added tokens are left out. InvalidArgument for an id that
  // is not in the vocabulary.
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids, bool skip_special_tokens) const;

  // Appends the raw bytes that `id` decodes to (nothing for a special token when
  // `skip_special_tokens`). InvalidArgument for an id outside the vocabulary. The building block
  // of Decode and IncrementalDecoder.
  absl::Status AppendTokenBytes(int32_t id, bool skip_special_tokens, std::string* bytes) const;

  // Number of id slots: one more than the largest id of the vocabulary or the added tokens
  // (50277 for GPT-NeoX-20B, like HF's get_vocab_size(with_added_tokens=True)).
  int vocab_size() const { return static_cast<int>(id_bytes_.size()); }
  // Id of a token string (added tokens first, then the BPE vocabulary), as HF token_to_id.
  std::optional<int32_t> TokenToId(std::string_view token) const;
  // Token string of an id (the vocabulary's byte-level form), as HF id_to_token.
  std::optional<std::string> IdToToken(int32_t id) const;
  // Whether `id` decodes to a special token (left out by skip_special_tokens).
  bool IsSpecial(int32_t id) const {
    return id >= 0 && id < vocab_size() && (id_flags_[id] & kSpecialFlag) != 0;
  }
  const AddedVocabulary& added_tokens() const { return added_; }

 private:
  static constexpr uint8_t kKnownFlag = 1;
  static constexpr uint8_t kSpecialFlag = 2;

  Tokenizer() = default;
  absl::Status EncodeSegment(std::string_view segment, std::vector<int32_t>* ids) const;

  Normalizer normalizer_;
  std::unique_ptr<ByteLevelPreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  AddedVocabulary added_;
  std::vector<std::string> id_bytes_;  // Decoded bytes of each id.
  std::vector<uint8_t> id_flags_;      // kKnownFlag / kSpecialFlag per id.
};

}  // namespace xlstm::tokenizer

#endif  // XLSTM_ENGINE_TOKENIZER_TOKENIZER_H_
