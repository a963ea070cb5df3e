// The ByteLevel pieces of tokenizer.json (GPT-2 style): the reversible byte <-> printable
// character map, the pre-tokenizer that splits text into words with the GPT-2 pattern (PCRE2,
// JIT-compiled), and the decoding of vocabulary strings back to bytes.
//
// Thread-safety: ByteLevelPreTokenizer is immutable after construction; Split may be called from
// many threads at once (each call uses its own PCRE2 match data).
#ifndef XLSTM_ENGINE_TOKENIZER_BYTE_LEVEL_H_
#define XLSTM_ENGINE_TOKENIZER_BYTE_LEVEL_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"

struct pcre2_real_code_8;  // PCRE2's compiled pattern (pcre2_code_8).

namespace xlstm::tokenizer {

// GPT-2's bytes_to_unicode: byte b maps to one printable code point; returned UTF-8 encoded.
const std::array<std::string, 256>& ByteToUnicode();
// The inverse of ByteToUnicode, or nullopt for a code point that no byte maps to.
std::optional<uint8_t> UnicodeToByte(char32_t cp);

// Bytes that the ByteLevel decoder produces for one vocabulary string: each character mapped
// back through UnicodeToByte, or, when any character is not in the map (e.g. an added token
// such as "  "), the string's own UTF-8 bytes. Mirrors HF's ByteLevel::decode_chain.
std::string ByteLevelTokenBytes(std::string_view token);

// The GPT-2 split pattern, with \s spelled out as the Unicode White_Space set that Oniguruma
// (HF's regex engine) uses for \s:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
extern const char kGpt2SplitPattern[];

struct ByteLevelOptions {
  bool add_prefix_space = false;
  bool use_regex = true;
};

// Parses a {"type": "ByteLevel", ...} object (pre_tokenizer, decoder or post_processor); `field`
// names it in errors.
absl::StatusOr<ByteLevelOptions> ParseByteLevel(const nlohmann::json& json, std::string_view field);

class ByteLevelPreTokenizer {
 public:
  static absl::StatusOr<std::unique_ptr<ByteLevelPreTokenizer>> Create(ByteLevelOptions options);
  ~ByteLevelPreTokenizer();
  ByteLevelPreTokenizer(const ByteLevelPreTokenizer&) = delete;
  ByteLevelPreTokenizer& operator=(const ByteLevelPreTokenizer&) = delete;

  const ByteLevelOptions& options() const { return options_; }

  // Splits valid UTF-8 `text` (one segment between added tokens, already normalized) into words
  // and calls `word` for each, in order, with the word's raw bytes. With add_prefix_space a
  // space is put in front of text that does not start with one (HF behaviour, per segment).
  // Empty text yields no words.
  absl::Status Split(std::string_view text, absl::FunctionRef<void(std::string_view)> word) const;

 private:
  explicit ByteLevelPreTokenizer(ByteLevelOptions options) : options_(options) {}
  absl::Status SplitRegex(std::string_view text,
                          absl::FunctionRef<void(std::string_view)> word) const;

  ByteLevelOptions options_;
  pcre2_real_code_8* code_ = nullptr;  // Owned; null when use_regex is false.
};

}  // namespace xlstm::tokenizer

#endif  // XLSTM_ENGINE_TOKENIZER_BYTE_LEVEL_H_
