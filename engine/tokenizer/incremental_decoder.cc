#include "engine/tokenizer/incremental_decoder.h"

#include <string_view>

#include "engine/tokenizer/utf8.h"

namespace xlstm::tokenizer {

absl::StatusOr<std::string> IncrementalDecoder::Add(int32_t id) {
  const size_t before = pending_.size();
  if (absl::Status status = tokenizer_->AppendTokenBytes(id, skip_special_tokens_, &pending_);
      !status.ok()) {
    pending_.resize(before);
    return status;
  }
  // Lossy conversion is a left-to-right scan whose decisions never look past the start of an
  // incomplete trailing sequence, so converting everything before it now gives the same text as
  // converting the whole stream at the end.
  const size_t keep = IncompleteUtf8SuffixLength(pending_);
  std::string text;
  AppendUtf8Lossy(std::string_view(pending_).substr(0, pending_.size() - keep), &text);
  pending_.erase(0, pending_.size() - keep);
  return text;
}

std::string IncrementalDecoder::Finish() {
  std::string text;
  AppendUtf8Lossy(pending_, &text);
  pending_.clear();
  return text;
}

}  // namespace xlstm::tokenizer
