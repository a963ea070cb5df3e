#include "engine/tokenizer/normalizer.h"

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "utf8proc.h"

namespace xlstm::tokenizer {
namespace {

// True when every code point of `text` is below U+0300: such text is already NFC (all of
// U+0000..U+02FF are NFC_Quick_Check=Yes and never combine with a preceding character).
bool BelowCombiningRange(std::string_view text) {
  for (const char c : text) {
    const auto b = static_cast<unsigned char>(c);
    // Lead bytes 0xCC and above start code points >= U+0300.
    if (b >= 0xCC) return false;
  }
  return true;
}

}  // namespace

std::string NormalizeNfc(std::string_view text) {
  std::string out;
  if (!Normalizer(Normalizer::Kind::kNfc).Normalize(text, &out)) out.assign(text);
  return out;
}

absl::StatusOr<Normalizer> Normalizer::FromJson(const nlohmann::json& json) {
  if (json.is_null()) return Normalizer(Kind::kNone);
  if (!json.is_object() || !json.contains("type") || !json["type"].is_string()) {
    return absl::InvalidArgumentError("\"normalizer\" must be null or an object with a \"type\"");
  }
  const std::string type = json["type"].get<std::string>();
  if (type == "NFC") return Normalizer(Kind::kNfc);
  if (type == "Sequence" && json.contains("normalizers") && json["normalizers"].is_array()) {
    Kind kind = Kind::kNone;
    for (const nlohmann::json& member : json["normalizers"]) {
      auto parsed = FromJson(member);
      if (!parsed.ok()) return parsed.status();
      if (parsed->kind() == Kind::kNfc) kind = Kind::kNfc;
    }
    return Normalizer(kind);
  }
  return absl::InvalidArgumentError(absl::StrCat("unsupported normalizer type \"", type,
                                                 "\" (supported: null, NFC, Sequence of NFC)"));
}

bool Normalizer::Normalize(std::string_view text, std::string* out) const {
  if (kind_ == Kind::kNone || BelowCombiningRange(text)) return false;
  utf8proc_uint8_t* result = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                   static_cast<utf8proc_ssize_t>(text.size()), &result,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) {
    // Only reachable on invalid UTF-8 or allocation failure; the caller validated the text, so
    // keep it as is rather than dropping input.
    std::free(result);
    return false;
  }
  out->assign(reinterpret_cast<const char*>(result), static_cast<size_t>(n));
  std::free(result);
  return true;
}

}  // namespace xlstm::tokenizer
