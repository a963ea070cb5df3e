// libFuzzer target: tokenizer.json text -> Tokenizer::FromJsonString; a tokenizer that loads
// then encodes and decodes a fixed text, so that the tables a hostile file builds are used.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto tokenizer = xlstm::tokenizer::Tokenizer::FromJsonString(text, "tokenizer.json");
  if (!tokenizer.ok()) return 0;
  auto ids = (*tokenizer)->Encode("Hello world, grüße 123 <|endoftext|>");
  if (ids.ok()) (void)(*tokenizer)->Decode(*ids, /*skip_special_tokens=*/false);
  return 0;
}
