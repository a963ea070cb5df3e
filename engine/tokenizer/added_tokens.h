// Added tokens of tokenizer.json ("added_tokens"): special and non-special tokens that are cut
// out of the input before normalization / pre-tokenization, following HF `tokenizers`'
// AddedVocabulary: tokens with normalized=false are matched on the raw text, tokens with
// normalized=true on each normalized segment; leftmost-longest matching; single_word, lstrip
// and rstrip honoured. Ids are assigned like HF does on load (an added token whose content is
// in the model vocabulary keeps that id; others get the next free id after the vocabulary).
//
// Thread-safety: immutable after construction; all methods are const and thread-safe.
#ifndef XLSTM_ENGINE_TOKENIZER_ADDED_TOKENS_H_
#define XLSTM_ENGINE_TOKENIZER_ADDED_TOKENS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "engine/tokenizer/absl_compat.h"
#include "engine/tokenizer/bpe_model.h"
#include "engine/tokenizer/normalizer.h"
#include "nlohmann/json_fwd.hpp"

namespace xlstm::tokenizer {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
};

// A piece of text produced by splitting on added tokens: either an added token (`id` >= 0,
// `text` covering it plus any stripped whitespace) or plain text to tokenize (`id` == -1).
struct TextPiece {
  std::string_view text;
  int32_t id = -1;
};

// Leftmost-longest multi-pattern matcher over bytes (what aho-corasick's LeftmostLongest gives
// HF): a byte trie, searched from each start position.
class TokenMatcher {
 public:
  // `patterns[i]` matches with value `values[i]`; for duplicate patterns the first one wins.
  TokenMatcher(const std::vector<std::string>& patterns, const std::vector<int32_t>& values);
  TokenMatcher() = default;

  bool empty() const { return nodes_.size() <= 1; }
  // Finds the leftmost (then longest) match starting at or after `from`. Returns false when
  // there is none.
  bool Find(std::string_view text, size_t from, size_t* start, size_t* end, int32_t* value) const;

 private:
  struct Node {
    absl::flat_hash_map<uint8_t, int32_t> children;
    int32_t value = -1;  // >= 0 when a pattern ends here.
  };
  std::vector<Node> nodes_{Node()};
  bool first_byte_[256] = {};
};

class AddedVocabulary {
 public:
  // Parses "added_tokens" (null or an array). `normalizer` normalizes the contents of tokens with
  // normalized=true into the patterns matched on normalized text.
  static absl::StatusOr<AddedVocabulary> FromJson(const nlohmann::json& json, const BpeModel& model,
                                                  const Normalizer& normalizer);
  AddedVocabulary() = default;

  bool empty() const { return by_id_.empty(); }
  const std::vector<AddedToken>& tokens() const { return tokens_; }

  // Splits raw text on the tokens with normalized=false. Appends to `pieces`.
  void SplitRaw(std::string_view text, std::vector<TextPiece>* pieces) const {
    Split(text, raw_matcher_, pieces);
  }
  // Splits one normalized segment on the tokens with normalized=true. Appends to `pieces`.
  void SplitNormalized(std::string_view text, std::vector<TextPiece>* pieces) const {
    Split(text, normalized_matcher_, pieces);
  }
  bool has_raw_tokens() const { return !raw_matcher_.empty(); }
  bool has_normalized_tokens() const { return !normalized_matcher_.empty(); }

  // The added token with this id, or nullptr.
  const AddedToken* FindById(int32_t id) const;
  std::optional<int32_t> TokenToId(std::string_view content) const;
  // Whether `content` is the content of a special added token (HF decides "special" when
  // decoding by content, so a vocabulary token with the same text counts as special too).
  bool IsSpecialContent(std::string_view content) const {
    return special_contents_.contains(ToAbsl(content));
  }

 private:
  void Split(std::string_view text, const TokenMatcher& matcher,
             std::vector<TextPiece>* pieces) const;

  std::vector<AddedToken> tokens_;              // In load order.
  absl::flat_hash_map<int32_t, size_t> by_id_;  // id -> index in tokens_.
  absl::flat_hash_map<std::string, int32_t> by_content_;
  absl::flat_hash_set<std::string> special_contents_;
  TokenMatcher raw_matcher_;         // Values: index in tokens_.
  TokenMatcher normalized_matcher_;  // Values: index in tokens_.
};

}  // namespace xlstm::tokenizer

#endif  // XLSTM_ENGINE_TOKENIZER_ADDED_TOKENS_H_
