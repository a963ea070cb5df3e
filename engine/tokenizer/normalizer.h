// Text normalizers of tokenizer.json. Only NFC is supported (what the GPT-NeoX / xLSTM family
// uses); it is implemented with utf8proc. Thread-safe: a Normalizer holds no mutable state.
#ifndef XLSTM_ENGINE_TOKENIZER_NORMALIZER_H_
#define XLSTM_ENGINE_TOKENIZER_NORMALIZER_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"

namespace xlstm::tokenizer {

// Unicode Normalization Form C of valid UTF-8 `text`. Text whose code points are all below
// U+0300 is returned unchanged without calling utf8proc (no such code point decomposes or
// composes with a predecessor).
std::string NormalizeNfc(std::string_view text);

class Normalizer {
 public:
  enum class Kind { kNone, kNfc };

  // Parses the "normalizer" field of tokenizer.json: null, {"type": "NFC"}, or a "Sequence"
  // whose members are all NFC. Anything else is InvalidArgument naming the unsupported type.
  static absl::StatusOr<Normalizer> FromJson(const nlohmann::json& json);

  Normalizer() = default;
  explicit Normalizer(Kind kind) : kind_(kind) {}

  Kind kind() const { return kind_; }
  // Normalizes valid UTF-8 `text` into `out` (replacing its contents). Returns false, leaving
  // `out` untouched, when normalization would not change the text, so callers can keep using
  // the original bytes.
  bool Normalize(std::string_view text, std::string* out) const;

 private:
  Kind kind_ = Kind::kNone;
};

}  // namespace xlstm::tokenizer

#endif  // XLSTM_ENGINE_TOKENIZER_NORMALIZER_H_
