// Streaming detokenization: fed one token id at a time, emits text only at valid UTF-8
// boundaries, so that a character whose bytes are split across tokens is never emitted broken.
// The concatenation of everything Add() returned plus Finish() equals
// Tokenizer::Decode(all ids, skip_special_tokens), byte for byte (including U+FFFD for byte
// sequences that can never become valid).
//
// Thread-safety: one IncrementalDecoder per request; not safe for concurrent use. The Tokenizer
// it reads from is shared and must outlive it.
#ifndef XLSTM_ENGINE_TOKENIZER_INCREMENTAL_DECODER_H_
#define XLSTM_ENGINE_TOKENIZER_INCREMENTAL_DECODER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"

namespace xlstm::tokenizer {

class IncrementalDecoder {
 public:
  IncrementalDecoder(const Tokenizer* tokenizer, bool skip_special_tokens)
      : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

  // Adds one id and returns the text that is now final (often empty while a multi-byte
  // character is incomplete). InvalidArgument for an id outside the vocabulary; the decoder's
  // state is then unchanged.
  absl::StatusOr<std::string> Add(int32_t id);

  // Ends the stream and returns what is left: U+FFFD for a trailing incomplete sequence, else
  // "". The decoder is then empty and may be reused for a new stream.
  std::string Finish();

  // Bytes held back because they may be the start of a character (0 to 3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  std::string pending_;
};

}  // namespace xlstm::tokenizer

#endif  // XLSTM_ENGINE_TOKENIZER_INCREMENTAL_DECODER_H_
