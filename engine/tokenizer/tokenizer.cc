#include "engine/tokenizer/tokenizer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "common/untrusted_file.h"
#include "engine/tokenizer/absl_compat.h"
#include "engine/tokenizer/utf8.h"
#include "nlohmann/json.hpp"

namespace xlstm::tokenizer {
namespace {

using json = nlohmann::json;

std::string TypeOf(const json& value) {
  if (value.is_object() && value.contains("type") && value["type"].is_string()) {
    return value["type"].get<std::string>();
  }
  return value.is_null() ? "null" : "(no type)";
}

// Checks a ByteLevel component ("pre_tokenizer", "decoder", "post_processor").
absl::StatusOr<ByteLevelOptions> RequireByteLevel(const json& root, const char* field, bool null_ok,
                                                  const char* supported) {
  const json& value = root.contains(field) ? root[field] : json();
  if (value.is_null() && null_ok) return ByteLevelOptions();
  if (TypeOf(value) != "ByteLevel") {
    return absl::InvalidArgumentError(absl::StrCat("unsupported ", field, " type \"", TypeOf(value),
                                                   "\" (supported: ", supported, ")"));
  }
  return ParseByteLevel(value, field);
}

absl::Status Prefixed(std::string_view source, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(ToAbsl(source), ": ", status.message()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  absl::StatusOr<std::string> contents = files::ReadRegularFile(path, files::kMaxJsonFileBytes);
  if (!contents.ok()) return contents.status();
  return FromJsonString(*contents, path);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJsonString(std::string_view contents,
                                                                     std::string_view source) {
  json root;
  try {
    root = json::parse(contents.begin(), contents.end());
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(source), ": malformed JSON: ", e.what()));
  }
  if (!root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(source), ": top level must be a JSON object"));
  }
  std::unique_ptr<Tokenizer> tokenizer(new Tokenizer());
  // nlohmann::json throws on type mismatches we did not foresee; report them as bad input.
  try {
    for (const char* field : {"truncation", "padding"}) {
      if (root.contains(field) && !root[field].is_null()) {
        return absl::InvalidArgumentError(
            absl::StrCat(ToAbsl(source), ": \"", field,
                         "\" is not supported (only null); it would change encode()"));
      }
    }
    if (!root.contains("model")) {
      return absl::InvalidArgumentError(absl::StrCat(ToAbsl(source), ": missing \"model\""));
    }
    auto model = BpeModel::FromJson(root["model"]);
    if (!model.ok()) return Prefixed(source, model.status());
    tokenizer->model_ = *std::move(model);

    auto normalizer =
        Normalizer::FromJson(root.contains("normalizer") ? root["normalizer"] : json());
    if (!normalizer.ok()) return Prefixed(source, normalizer.status());
    tokenizer->normalizer_ = *normalizer;

    auto pre = RequireByteLevel(root, "pre_tokenizer", /*null_ok=*/false, "ByteLevel");
    if (!pre.ok()) return Prefixed(source, pre.status());
    auto decoder = RequireByteLevel(root, "decoder", /*null_ok=*/false, "ByteLevel");
    if (!decoder.ok()) return Prefixed(source, decoder.status());
    auto post = RequireByteLevel(root, "post_processor", /*null_ok=*/true, "null, ByteLevel");
    if (!post.ok()) return Prefixed(source, post.status());
    auto pre_tokenizer = ByteLevelPreTokenizer::Create(*pre);
    if (!pre_tokenizer.ok()) return Prefixed(source, pre_tokenizer.status());
    tokenizer->pre_tokenizer_ = *std::move(pre_tokenizer);

    auto added =
        AddedVocabulary::FromJson(root.contains("added_tokens") ? root["added_tokens"] : json(),
                                  *tokenizer->model_, tokenizer->normalizer_);
    if (!added.ok()) return Prefixed(source, added.status());
    tokenizer->added_ = *std::move(added);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(source), ": unexpected JSON content: ", e.what()));
  }

  // Per-id decoded bytes and flags, so that decoding is a table lookup.
  int32_t id_limit = tokenizer->model_->id_limit();
  for (const AddedToken& token : tokenizer->added_.tokens())
    id_limit = std::max(id_limit, token.id + 1);
  tokenizer->id_bytes_.resize(static_cast<size_t>(id_limit));
  tokenizer->id_flags_.assign(static_cast<size_t>(id_limit), 0);
  for (int32_t id = 0; id < id_limit; ++id) {
    std::optional<std::string> token = tokenizer->IdToToken(id);
    if (!token.has_value()) continue;
    // HF decodes an added token with normalized=true from its normalized content (observed
    // with tokenizers 0.23: "\u212b" decodes as NFC's "\u00c5", i.e. the lone byte 0xC5, U+FFFD).
    std::string decoded_form = *token;
    if (const AddedToken* added = tokenizer->added_.FindById(id); added && added->normalized) {
      std::string normalized;
      if (tokenizer->normalizer_.Normalize(added->content, &normalized)) decoded_form = normalized;
    }
    tokenizer->id_bytes_[id] = ByteLevelTokenBytes(decoded_form);
    tokenizer->id_flags_[id] =
        kKnownFlag | (tokenizer->added_.IsSpecialContent(*token) ? kSpecialFlag : 0);
  }
  return tokenizer;
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  if (std::optional<int32_t> id = added_.TokenToId(token)) return id;
  return model_->TokenToId(token);
}

std::optional<std::string> Tokenizer::IdToToken(int32_t id) const {
  if (const AddedToken* token = added_.FindById(id)) return token->content;
  if (const std::string* token = model_->IdToToken(id)) return *token;
  return std::nullopt;
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(std::string_view text) const {
  if (std::optional<size_t> bad = FindInvalidUtf8(text)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "text is not valid UTF-8: byte 0x%02X at offset %d does not start a valid sequence",
        static_cast<uint8_t>(text[*bad]), *bad));
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 4 + 4);
  if (!added_.has_raw_tokens()) {
    XLSTM_RETURN_IF_ERROR(EncodeSegment(text, &ids));
    return ids;
  }
  std::vector<TextPiece> pieces;
  added_.SplitRaw(text, &pieces);
  for (const TextPiece& piece : pieces) {
    if (piece.id >= 0) {
      ids.push_back(piece.id);
    } else {
      XLSTM_RETURN_IF_ERROR(EncodeSegment(piece.text, &ids));
    }
  }
  return ids;
}

absl::Status Tokenizer::EncodeSegment(std::string_view segment, std::vector<int32_t>* ids) const {
  if (segment.empty()) return absl::OkStatus();
  std::string normalized_storage;
  const std::string_view normalized = normalizer_.Normalize(segment, &normalized_storage)
                                          ? std::string_view(normalized_storage)
                                          : segment;
  auto tokenize_words = [&](std::string_view text) {
    return pre_tokenizer_->Split(text,
                                 [&](std::string_view word) { model_->TokenizeWord(word, ids); });
  };
  if (!added_.has_normalized_tokens()) return tokenize_words(normalized);
  std::vector<TextPiece> pieces;
  added_.SplitNormalized(normalized, &pieces);
  for (const TextPiece& piece : pieces) {
    if (piece.id >= 0) {
      ids->push_back(piece.id);
    } else {
      XLSTM_RETURN_IF_ERROR(tokenize_words(piece.text));
    }
  }
  return absl::OkStatus();
}

absl::Status Tokenizer::AppendTokenBytes(int32_t id, bool skip_special_tokens,
                                         std::string* bytes) const {
  if (id < 0 || id >= vocab_size() || (id_flags_[id] & kKnownFlag) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("token id ", id, " is not in the vocabulary (", vocab_size(), " ids)"));
  }
  if (skip_special_tokens && (id_flags_[id] & kSpecialFlag) != 0) return absl::OkStatus();
  bytes->append(id_bytes_[id]);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Tokenizer::Decode(absl::Span<const int32_t> ids,
                                              bool skip_special_tokens) const {
  std::string bytes;
  bytes.reserve(ids.size() * 4);
  for (size_t i = 0; i < ids.size(); ++i) {
    absl::Status status = AppendTokenBytes(ids[i], skip_special_tokens, &bytes);
    if (!status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("ids[", i, "]: ", status.message()));
    }
  }
  if (!FindInvalidUtf8(bytes).has_value()) return bytes;
  std::string text;
  text.reserve(bytes.size() + 8);
  AppendUtf8Lossy(bytes, &text);
  return text;
}

}  // namespace xlstm::tokenizer
