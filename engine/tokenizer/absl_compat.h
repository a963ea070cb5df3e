// Debian's Abseil 20220623 is built with its own absl::string_view (not std::string_view), and
// the two do not convert implicitly. The tokenizer's API uses std::string_view; this converts at
// the Abseil boundary (StrCat, Status messages, hash-map lookups).
#ifndef XLSTM_ENGINE_TOKENIZER_ABSL_COMPAT_H_
#define XLSTM_ENGINE_TOKENIZER_ABSL_COMPAT_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace xlstm::tokenizer {

inline absl::string_view ToAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}
inline std::string_view ToStd(absl::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace xlstm::tokenizer

#endif  // XLSTM_ENGINE_TOKENIZER_ABSL_COMPAT_H_
