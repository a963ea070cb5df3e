#include "engine/tokenizer/byte_level.h"

#include <string>

#include "engine/tokenizer/absl_compat.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "absl/strings/str_cat.h"
#include "engine/tokenizer/utf8.h"
#include "nlohmann/json.hpp"

namespace xlstm::tokenizer {
namespace {

// GPT-2's bytes_to_unicode as code points: printable Latin-1 bytes map to themselves, the rest
// to U+0100 onwards in byte order.
std::array<char32_t, 256> ByteToCodePoint() {
  std::array<char32_t, 256> map{};
  auto printable = [](int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) map[b] = printable(b) ? static_cast<char32_t>(b) : next++;
  return map;
}

// Per-thread PCRE2 match data (one ovector pair is all the split needs, whatever the pattern).
pcre2_match_data* ThreadMatchData() {
  struct Holder {
    pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
    ~Holder() { pcre2_match_data_free(data); }
  };
  thread_local Holder holder;
  return holder.data;
}

}  // namespace

const char kGpt2SplitPattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+"
    "| ?[^\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
    "\\x{205F}\\x{3000}\\p{L}\\p{N}]+"
    "|[\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
    "\\x{205F}\\x{3000}]+"
    "(?![^\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
    "\\x{205F}\\x{3000}])"
    "|[\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
    "\\x{205F}\\x{3000}]+";

const std::array<std::string, 256>& ByteToUnicode() {
  static const std::array<std::string, 256>* const table = [] {
    auto* t = new std::array<std::string, 256>();
    const std::array<char32_t, 256> cps = ByteToCodePoint();
    for (int b = 0; b < 256; ++b) AppendUtf8(cps[b], &(*t)[b]);
    return t;
  }();
  return *table;
}

std::optional<uint8_t> UnicodeToByte(char32_t cp) {
  // Inverse of ByteToCodePoint: printable Latin-1 maps to itself; U+0100..U+0143 are the other
  // 68 bytes in order.
  static const std::array<int16_t, 324>* const inverse = [] {
    auto* inv = new std::array<int16_t, 324>();
    inv->fill(-1);
    const std::array<char32_t, 256> cps = ByteToCodePoint();
    for (int b = 0; b < 256; ++b) (*inv)[cps[b]] = static_cast<int16_t>(b);
    return inv;
  }();
  if (cp >= inverse->size() || (*inverse)[cp] < 0) return std::nullopt;
  return static_cast<uint8_t>((*inverse)[cp]);
}

std::string ByteLevelTokenBytes(std::string_view token) {
  std::string bytes;
  bytes.reserve(token.size());
  if (FindInvalidUtf8(token).has_value()) return std::string(token);
  for (size_t i = 0; i < token.size();) {
    size_t len;
    const char32_t cp = DecodeUtf8At(token, i, &len);
    const std::optional<uint8_t> b = UnicodeToByte(cp);
    if (!b.has_value()) return std::string(token);
    bytes.push_back(static_cast<char>(*b));
    i += len;
  }
  return bytes;
}

absl::StatusOr<ByteLevelOptions> ParseByteLevel(const nlohmann::json& json,
                                                std::string_view field) {
  ByteLevelOptions options;
  auto read_bool = [&](const char* key, bool* value) -> absl::Status {
    if (!json.contains(key) || json[key].is_null()) return absl::OkStatus();
    if (!json[key].is_boolean()) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", ToAbsl(field), ".", key, "\" must be a boolean"));
    }
    *value = json[key].get<bool>();
    return absl::OkStatus();
  };
  if (absl::Status s = read_bool("add_prefix_space", &options.add_prefix_space); !s.ok()) return s;
  if (absl::Status s = read_bool("use_regex", &options.use_regex); !s.ok()) return s;
  return options;
}

absl::StatusOr<std::unique_ptr<ByteLevelPreTokenizer>> ByteLevelPreTokenizer::Create(
    ByteLevelOptions options) {
  std::unique_ptr<ByteLevelPreTokenizer> pre(new ByteLevelPreTokenizer(options));
  if (!options.use_regex) return pre;
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kGpt2SplitPattern), PCRE2_ZERO_TERMINATED,
                    PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    return absl::InternalError(
        absl::StrCat("PCRE2 cannot compile the GPT-2 split pattern at offset ", error_offset, ": ",
                     reinterpret_cast<const char*>(message)));
  }
  // JIT is an optimization; the interpreter is used when it is unavailable.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  pre->code_ = code;
  return pre;
}

ByteLevelPreTokenizer::~ByteLevelPreTokenizer() { pcre2_code_free(code_); }

absl::Status ByteLevelPreTokenizer::Split(std::string_view text,
                                          absl::FunctionRef<void(std::string_view)> word) const {
  if (text.empty()) return absl::OkStatus();
  if (options_.add_prefix_space && text.front() != ' ') {
    std::string prefixed;
    prefixed.reserve(text.size() + 1);
    prefixed.push_back(' ');
    prefixed.append(text);
    return SplitRegex(prefixed, word);
  }
  return SplitRegex(text, word);
}

absl::Status ByteLevelPreTokenizer::SplitRegex(
    std::string_view text, absl::FunctionRef<void(std::string_view)> word) const {
  if (code_ == nullptr) {
    word(text);
    return absl::OkStatus();
  }
  pcre2_match_data* match = ThreadMatchData();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    const int rc =
        pcre2_match(code_, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, match, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof(message));
      return absl::InternalError(absl::StrCat("PCRE2 match failed at byte ", pos, ": ",
                                              reinterpret_cast<const char*>(message)));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match);
    const size_t start = ovector[0], end = ovector[1];
    // The pattern covers every character, but keep unmatched gaps as words like HF's
    // SplitDelimiterBehavior::Isolated does.
    if (start > pos) word(text.substr(pos, start - pos));
    if (end == start) {
      // Cannot happen with this pattern (no alternative matches empty); avoid looping forever.
      break;
    }
    word(text.substr(start, end - start));
    pos = end;
  }
  if (pos < text.size()) word(text.substr(pos));
  return absl::OkStatus();
}

}  // namespace xlstm::tokenizer
