#include "engine/tokenizer/utf8.h"

namespace xlstm::tokenizer {
namespace {

enum class SeqKind { kValid, kInvalid, kTruncated };

// Classifies the UTF-8 sequence starting at s[i] (the Unicode "maximal subpart" rules, which
// are also Rust's). kValid: *n is the character's length. kInvalid: *n bytes (>= 1) form one
// maximal invalid subsequence. kTruncated: the *n bytes up to the end are a valid prefix of a
// longer character.
SeqKind Classify(std::string_view s, size_t i, size_t* n) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) {
    *n = 1;
    return SeqKind::kValid;
  }
  size_t width;
  uint8_t lo = 0x80, hi = 0xBF;  // Allowed range of the second byte.
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    width = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    width = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    width = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    *n = 1;
    return SeqKind::kInvalid;
  }
  for (size_t k = 1; k < width; ++k) {
    if (i + k >= s.size()) {
      *n = k;
      return SeqKind::kTruncated;
    }
    const auto b = static_cast<uint8_t>(s[i + k]);
    const bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) {
      *n = k;
      return SeqKind::kInvalid;
    }
  }
  *n = width;
  return SeqKind::kValid;
}

}  // namespace

std::optional<size_t> FindInvalidUtf8(std::string_view text) {
  size_t i = 0;
  const size_t size = text.size();
  while (i < size) {
    // ASCII fast path, eight bytes at a time.
    while (i + 8 <= size) {
      uint64_t word = 0;
      for (size_t k = 0; k < 8; ++k)
        word |= static_cast<uint64_t>(static_cast<uint8_t>(text[i + k])) << (8 * k);
      if (word & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= size) break;
    size_t n;
    if (Classify(text, i, &n) != SeqKind::kValid) return i;
    i += n;
  }
  return std::nullopt;
}

char32_t DecodeUtf8At(std::string_view text, size_t pos, size_t* len) {
  const auto b0 = static_cast<uint8_t>(text[pos]);
  if (b0 < 0x80) {
    *len = 1;
    return b0;
  }
  auto cont = [&](size_t k) {
    return static_cast<char32_t>(static_cast<uint8_t>(text[pos + k]) & 0x3F);
  };
  if (b0 < 0xE0) {
    *len = 2;
    return (static_cast<char32_t>(b0 & 0x1F) << 6) | cont(1);
  }
  if (b0 < 0xF0) {
    *len = 3;
    return (static_cast<char32_t>(b0 & 0x0F) << 12) | (cont(1) << 6) | cont(2);
  }
  *len = 4;
  return (static_cast<char32_t>(b0 & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3);
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

void AppendUtf8Lossy(std::string_view bytes, std::string* out) {
  size_t i = 0;
  size_t valid_start = 0;  // Start of the pending run of valid bytes.
  while (i < bytes.size()) {
    size_t n;
    const SeqKind kind = Classify(bytes, i, &n);
    if (kind == SeqKind::kValid) {
      i += n;
      continue;
    }
    out->append(bytes.substr(valid_start, i - valid_start));
    out->append(kReplacementChar);
    i += n;
    valid_start = i;
  }
  out->append(bytes.substr(valid_start));
}

size_t IncompleteUtf8SuffixLength(std::string_view bytes) {
  // A truncated sequence is at most 3 bytes long, so only the last 3 start positions matter.
  const size_t first = bytes.size() > 3 ? bytes.size() - 3 : 0;
  for (size_t i = first; i < bytes.size(); ++i) {
    const auto b = static_cast<uint8_t>(bytes[i]);
    if (b < 0xC2 || b > 0xF4) continue;  // Not a lead byte of a multi-byte sequence.
    size_t n;
    if (Classify(bytes, i, &n) == SeqKind::kTruncated) return bytes.size() - i;
  }
  return 0;
}

bool IsUnicodeWhitespace(char32_t cp) {
  switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

}  // namespace xlstm::tokenizer
