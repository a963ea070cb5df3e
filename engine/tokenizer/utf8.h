// UTF-8 helpers shared by the tokenizer: validation (with the offending byte offset), code point
// iteration, and the lossy conversion that Hugging Face `tokenizers` applies when decoded bytes are
// not valid UTF-8 (Rust's String::from_utf8_lossy: every maximal invalid subsequence becomes one
// U+FFFD). All functions are pure and thread-safe.
#ifndef XLSTM_ENGINE_TOKENIZER_UTF8_H_
#define XLSTM_ENGINE_TOKENIZER_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace xlstm::tokenizer {

// The replacement character U+FFFD, UTF-8 encoded.
inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

// Returns the byte offset of the first byte that does not start a valid UTF-8 sequence (overlong
// forms, surrogates and code points above U+10FFFF are invalid, as is a sequence cut off by the
// end of the text), or nullopt when `text` is entirely valid.
std::optional<size_t> FindInvalidUtf8(std::string_view text);

// Decodes the code point starting at `text[pos]`, which must be valid UTF-8 (checked by the
// caller), and stores its byte length in `*len`.
char32_t DecodeUtf8At(std::string_view text, size_t pos, size_t* len);

// Appends the UTF-8 encoding of `cp` to `out`.
void AppendUtf8(char32_t cp, std::string* out);

// Appends `bytes` to `out`, replacing each maximal invalid subsequence with U+FFFD exactly as
// Rust's String::from_utf8_lossy does (which is what HF `tokenizers` decoding does).
void AppendUtf8Lossy(std::string_view bytes, std::string* out);

// Length (0..3) of the suffix of `bytes` that is a valid but incomplete UTF-8 sequence, i.e. the
// bytes whose meaning depends on what comes next. Everything before that suffix can be converted
// with AppendUtf8Lossy without changing the result of converting the whole, longer text.
size_t IncompleteUtf8SuffixLength(std::string_view bytes);

// Unicode White_Space property (what Rust's char::is_whitespace and Oniguruma's \s match).
bool IsUnicodeWhitespace(char32_t cp);

}  // namespace xlstm::tokenizer

#endif  // XLSTM_ENGINE_TOKENIZER_UTF8_H_
