#include "server/text_codec.h"

#include <algorithm>
#include <string>
#include <utility>

#ifdef XLSTM_SERVER_HAVE_TOKENIZER
#include "engine/tokenizer/incremental_decoder.h"
#include "engine/tokenizer/tokenizer_files.h"
#endif

namespace xlstm::server {

int64_t FirstInvalidUtf8(absl::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    size_t len = 0;
    uint32_t min = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      min = 0x10000;
    } else {
      return static_cast<int64_t>(i);
    }
    if (i + len > n) return static_cast<int64_t>(i);
    uint32_t cp = c & (0xFF >> (len + 1));
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return static_cast<int64_t>(i);
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return static_cast<int64_t>(i);
    }
    i += len;
  }
  return -1;
}

#ifdef XLSTM_SERVER_HAVE_TOKENIZER
namespace {

class StreamDecoder : public engine::TextDecoder {
 public:
  StreamDecoder(const tokenizer::Tokenizer* t, bool skip) : decoder_(t, skip) {}
  std::string Add(int32_t token) override {
    absl::StatusOr<std::string> s = decoder_.Add(token);
    return s.ok() ? *std::move(s) : std::string();  // ids were validated against the vocab
  }
  std::string Finish() override { return decoder_.Finish(); }

 private:
  tokenizer::IncrementalDecoder decoder_;
};

// NFC, the only normalizer the tokenizer supports, can shrink text: a Hangul syllable spelled
// as three conjoining jamo (9 bytes) composes into one 3-byte character. No composition shrinks
// more than that, so a token stands for at most 3x its own bytes of input text.
constexpr int64_t kMaxNfcShrink = 3;

// The longest token of the vocabulary, in bytes. 0 when an added token strips the whitespace
// next to it (lstrip / rstrip): it can then swallow any amount of input, and no bound holds.
int64_t LongestTokenBytes(const tokenizer::Tokenizer& tokenizer) {
  for (const tokenizer::AddedToken& token : tokenizer.added_tokens().tokens()) {
    if (token.lstrip || token.rstrip) return 0;
  }
  size_t longest = 0;
  std::string bytes;
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    bytes.clear();
    if (tokenizer.AppendTokenBytes(id, /*skip_special_tokens=*/false, &bytes).ok()) {
      longest = std::max(longest, bytes.size());
    }
  }
  return static_cast<int64_t>(longest);
}

class TokenizerCodec : public TextCodec {
 public:
  explicit TokenizerCodec(tokenizer::TokenizerFiles files)
      : files_(std::move(files)),
        max_text_bytes_per_token_(LongestTokenBytes(*files_.tokenizer) * kMaxNfcShrink) {}
  absl::StatusOr<std::vector<int32_t>> Encode(
      absl::string_view text, std::optional<bool> add_special_tokens) const override {
    const std::string_view sv(text.data(), text.size());
    return add_special_tokens.value_or(true) ? files_.EncodePrompt(sv)
                                             : files_.tokenizer->Encode(sv);
  }
  int64_t max_text_bytes_per_token() const override { return max_text_bytes_per_token_; }
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids,
                                     bool skip_special_tokens) const override {
    return files_.tokenizer->Decode(ids, skip_special_tokens);
  }
  std::unique_ptr<engine::TextDecoder> MakeDecoder(bool skip_special_tokens) const override {
    return std::make_unique<StreamDecoder>(files_.tokenizer.get(), skip_special_tokens);
  }

 private:
  tokenizer::TokenizerFiles files_;
  int64_t max_text_bytes_per_token_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<TextCodec>> TextCodec::Load(const std::string& model_dir) {
  if (!tokenizer::HasTokenizer(model_dir)) return std::unique_ptr<TextCodec>();
  absl::StatusOr<tokenizer::TokenizerFiles> files = tokenizer::LoadTokenizerFiles(model_dir);
  if (!files.ok()) return files.status();
  return std::unique_ptr<TextCodec>(std::make_unique<TokenizerCodec>(*std::move(files)));
}
#else
absl::StatusOr<std::unique_ptr<TextCodec>> TextCodec::Load(const std::string&) {
  return std::unique_ptr<TextCodec>();
}
#endif

}  // namespace xlstm::server
