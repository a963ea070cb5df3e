#include "engine/tokenizer/added_tokens.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/tokenizer/absl_compat.h"
#include "engine/tokenizer/utf8.h"
#include "nlohmann/json.hpp"
#include "utf8proc.h"

namespace xlstm::tokenizer {
namespace {

using json = nlohmann::json;

// Unicode \w of Rust's regex crate (HF uses `^\w` / `\w$` for single_word): letters, marks,
// decimal digits, letter numbers, connector punctuation, and the join controls.
bool IsWordChar(char32_t cp) {
  if (cp == 0x200C || cp == 0x200D) return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

// The code point that ends `text` (valid UTF-8, non-empty).
char32_t LastCodePoint(std::string_view text) {
  size_t start = text.size() - 1;
  while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
  size_t len;
  return DecodeUtf8At(text, start, &len);
}

// Start of the run of whitespace that ends `text` (text.size() when there is none).
size_t TrailingWhitespaceStart(std::string_view text) {
  size_t pos = text.size();
  while (pos > 0) {
    size_t start = pos - 1;
    while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
    size_t len;
    if (!IsUnicodeWhitespace(DecodeUtf8At(text, start, &len))) break;
    pos = start;
  }
  return pos;
}

// Length of the run of whitespace that starts `text`.
size_t LeadingWhitespaceLength(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t len;
    if (!IsUnicodeWhitespace(DecodeUtf8At(text, pos, &len))) break;
    pos += len;
  }
  return pos;
}

absl::StatusOr<bool> ReadFlag(const json& entry, const char* key, bool fallback, size_t index) {
  if (!entry.contains(key) || entry[key].is_null()) return fallback;
  if (!entry[key].is_boolean()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"added_tokens[", index, "].", key, "\" must be a boolean"));
  }
  return entry[key].get<bool>();
}

}  // namespace

TokenMatcher::TokenMatcher(const std::vector<std::string>& patterns,
                           const std::vector<int32_t>& values) {
  for (size_t i = 0; i < patterns.size(); ++i) {
    const std::string& pattern = patterns[i];
    if (pattern.empty()) continue;
    int32_t node = 0;
    for (const char c : pattern) {
      const auto b = static_cast<uint8_t>(c);
      auto it = nodes_[node].children.find(b);
      if (it == nodes_[node].children.end()) {
        nodes_.push_back(Node());
        it = nodes_[node].children.emplace(b, static_cast<int32_t>(nodes_.size() - 1)).first;
      }
      node = it->second;
    }
    if (nodes_[node].value < 0) nodes_[node].value = values[i];
    first_byte_[static_cast<uint8_t>(pattern[0])] = true;
  }
}

bool TokenMatcher::Find(std::string_view text, size_t from, size_t* start, size_t* end,
                        int32_t* value) const {
  if (empty()) return false;
  for (size_t i = from; i < text.size(); ++i) {
    if (!first_byte_[static_cast<uint8_t>(text[i])]) continue;
    int32_t node = 0;
    int32_t best_value = -1;
    size_t best_end = 0;
    for (size_t j = i; j < text.size(); ++j) {
      const auto& children = nodes_[node].children;
      auto it = children.find(static_cast<uint8_t>(text[j]));
      if (it == children.end()) break;
      node = it->second;
      if (nodes_[node].value >= 0) {
        best_value = nodes_[node].value;
        best_end = j + 1;
      }
    }
    if (best_value >= 0) {
      *start = i;
      *end = best_end;
      *value = best_value;
      return true;
    }
  }
  return false;
}

absl::StatusOr<AddedVocabulary> AddedVocabulary::FromJson(const json& json_tokens,
                                                          const BpeModel& model,
                                                          const Normalizer& normalizer) {
  AddedVocabulary vocab;
  if (json_tokens.is_null()) return vocab;
  if (!json_tokens.is_array()) {
    return absl::InvalidArgumentError("\"added_tokens\" must be an array");
  }
  // Mirrors AddedVocabulary::add_tokens of HF, applied to the tokens in file order.
  std::vector<AddedToken> special_list, classic_list;
  int32_t max_added_id = -1;
  for (size_t i = 0; i < json_tokens.size(); ++i) {
    const json& entry = json_tokens[i];
    if (!entry.is_object() || !entry.contains("content") || !entry["content"].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"added_tokens[", i, "]\" must be an object with a string \"content\""));
    }
    AddedToken token;
    token.content = entry["content"].get<std::string>();
    if (FindInvalidUtf8(token.content).has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"added_tokens[", i, "].content\" is not valid UTF-8"));
    }
    absl::StatusOr<bool> flag;
    if (!(flag = ReadFlag(entry, "special", false, i)).ok()) return flag.status();
    token.special = *flag;
    if (!(flag = ReadFlag(entry, "single_word", false, i)).ok()) return flag.status();
    token.single_word = *flag;
    if (!(flag = ReadFlag(entry, "lstrip", false, i)).ok()) return flag.status();
    token.lstrip = *flag;
    if (!(flag = ReadFlag(entry, "rstrip", false, i)).ok()) return flag.status();
    token.rstrip = *flag;
    if (!(flag = ReadFlag(entry, "normalized", !token.special, i)).ok()) return flag.status();
    token.normalized = *flag;

    if (token.special && !token.content.empty() &&
        !vocab.special_contents_.contains(token.content)) {
      special_list.push_back(token);
      vocab.special_contents_.insert(token.content);
    }
    if (token.content.empty()) continue;
    bool duplicate = false;
    for (const AddedToken& existing : vocab.tokens_) {
      duplicate |= existing.content == token.content && existing.special == token.special &&
                   existing.single_word == token.single_word && existing.lstrip == token.lstrip &&
                   existing.rstrip == token.rstrip && existing.normalized == token.normalized;
    }
    if (duplicate) continue;
    int32_t id;
    if (std::optional<int32_t> known = vocab.TokenToId(token.content)) {
      id = *known;
    } else if (std::optional<int32_t> in_model = model.TokenToId(token.content)) {
      id = *in_model;
    } else {
      const auto model_size = static_cast<int32_t>(model.vocab_size());
      id = max_added_id < 0                                  ? model_size
           : (max_added_id >= model_size || model_size == 0) ? max_added_id + 1
                                                             : model_size;
    }
    max_added_id = std::max(max_added_id, id);
    token.id = id;
    vocab.by_content_[token.content] = id;
    auto it = vocab.by_id_.find(id);
    if (it != vocab.by_id_.end()) {
      vocab.tokens_[it->second] = token;
    } else {
      vocab.by_id_[id] = vocab.tokens_.size();
      vocab.tokens_.push_back(token);
    }
    if (!vocab.special_contents_.contains(token.content)) classic_list.push_back(token);
  }

  // Matchers: special tokens first, then the others, partitioned by `normalized`.
  std::vector<std::string> raw_patterns, normalized_patterns;
  std::vector<int32_t> raw_ids, normalized_ids;
  for (const std::vector<AddedToken>* list : {&special_list, &classic_list}) {
    for (const AddedToken& token : *list) {
      const int32_t id = vocab.TokenToId(token.content).value_or(token.id);
      if (token.normalized) {
        std::string pattern;
        if (!normalizer.Normalize(token.content, &pattern)) pattern = token.content;
        normalized_patterns.push_back(std::move(pattern));
        normalized_ids.push_back(id);
      } else {
        raw_patterns.push_back(token.content);
        raw_ids.push_back(id);
      }
    }
  }
  vocab.raw_matcher_ = TokenMatcher(raw_patterns, raw_ids);
  vocab.normalized_matcher_ = TokenMatcher(normalized_patterns, normalized_ids);
  return vocab;
}

const AddedToken* AddedVocabulary::FindById(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<int32_t> AddedVocabulary::TokenToId(std::string_view content) const {
  auto it = by_content_.find(ToAbsl(content));
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

void AddedVocabulary::Split(std::string_view text, const TokenMatcher& matcher,
                            std::vector<TextPiece>* pieces) const {
  // HF's AddedVocabulary::find_matches, including its treatment of overlaps created by rstrip.
  size_t start_offset = 0;
  size_t from = 0;
  size_t match_start, match_end;
  int32_t id;
  while (matcher.Find(text, from, &match_start, &match_end, &id)) {
    from = match_end;
    const AddedToken* token = FindById(id);
    size_t start = match_start, stop = match_end;
    if (token != nullptr && token->single_word) {
      const bool start_space = start == 0 || !IsWordChar(LastCodePoint(text.substr(0, start)));
      size_t len;
      const bool stop_space = stop == text.size() || !IsWordChar(DecodeUtf8At(text, stop, &len));
      if (!start_space || !stop_space) continue;
    }
    if (token != nullptr && token->lstrip) {
      start = std::max(TrailingWhitespaceStart(text.substr(0, start)), start_offset);
    }
    if (token != nullptr && token->rstrip) stop += LeadingWhitespaceLength(text.substr(stop));
    if (start_offset < start)
      pieces->push_back(TextPiece{text.substr(start_offset, start - start_offset), -1});
    pieces->push_back(TextPiece{text.substr(start, stop - start), id});
    start_offset = stop;
  }
  if (start_offset < text.size()) pieces->push_back(TextPiece{text.substr(start_offset), -1});
}

}  // namespace xlstm::tokenizer
