// Shared test helpers: the HF reference fixtures (tests/data/tokenizer_reference.json) and the
// tokenizers they were recorded with, loaded once per test binary.
#ifndef XLSTM_TESTS_TOKENIZER_REFERENCE_FIXTURE_H_
#define XLSTM_TESTS_TOKENIZER_REFERENCE_FIXTURE_H_

#include <string>

#include "engine/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace xlstm::tokenizer::testing {

// Path under tests/data.
std::string TestDataPath(const std::string& relative);

// The parsed reference file (aborts the test binary if it is missing or malformed).
const nlohmann::json& Reference();

// The tokenizer a reference case names ("gpt-neox-20b", "neox-variant"), loaded once.
const Tokenizer& ReferenceTokenizer(const std::string& name);

// Shorthand for ReferenceTokenizer("gpt-neox-20b").
inline const Tokenizer& NeoX() { return ReferenceTokenizer("gpt-neox-20b"); }

// Printable form of `text` for failure messages (JSON-escaped).
std::string Printable(const std::string& text);

}  // namespace xlstm::tokenizer::testing

#endif  // XLSTM_TESTS_TOKENIZER_REFERENCE_FIXTURE_H_
