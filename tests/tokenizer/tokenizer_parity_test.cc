// Encode / decode parity with Hugging Face `tokenizers` on every case of the reference corpus
// (tests/data/tokenizer_reference.json), for GPT-NeoX-20B and the add_prefix_space variant.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "engine/tokenizer/incremental_decoder.h"
#include "engine/tokenizer/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tokenizer/reference_fixture.h"

namespace xlstm::tokenizer {
namespace {

using ::testing::ElementsAreArray;
using testing::Printable;
using testing::Reference;
using testing::ReferenceTokenizer;

TEST(TokenizerParityTest, FixtureCoversBothTokenizers) {
  int neox = 0, variant = 0;
  for (const auto& c : Reference()["encode"]) {
    (c["tokenizer"] == "gpt-neox-20b" ? neox : variant) += 1;
  }
  EXPECT_GE(neox, 400);
  EXPECT_GE(variant, 100);
  EXPECT_GE(Reference()["decode"].size(), 100u);
}

TEST(TokenizerParityTest, EncodeMatchesHf) {
  int checked = 0;
  for (const auto& c : Reference()["encode"]) {
    const Tokenizer& tokenizer = ReferenceTokenizer(c["tokenizer"].get<std::string>());
    const std::string text = c["text"].get<std::string>();
    const auto expected = c["ids"].get<std::vector<int32_t>>();
    auto ids = tokenizer.Encode(text);
    ASSERT_TRUE(ids.ok()) << c["name"] << ": " << ids.status();
    EXPECT_THAT(*ids, ElementsAreArray(expected))
        << c["tokenizer"] << " case " << c["name"] << " text " << Printable(text);
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(Reference()["encode"].size()));
}

TEST(TokenizerParityTest, DecodeOfEncodeCasesMatchesHf) {
  for (const auto& c : Reference()["encode"]) {
    const Tokenizer& tokenizer = ReferenceTokenizer(c["tokenizer"].get<std::string>());
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    for (const bool skip : {false, true}) {
      auto text = tokenizer.Decode(ids, skip);
      ASSERT_TRUE(text.ok()) << c["name"] << ": " << text.status();
      const std::string expected = c[skip ? "decoded_skip" : "decoded"].get<std::string>();
      EXPECT_EQ(*text, expected) << c["tokenizer"] << " case " << c["name"] << " skip=" << skip
                                 << ": got " << Printable(*text) << " want " << Printable(expected);
    }
  }
}

TEST(TokenizerParityTest, DecodeCasesMatchHf) {
  for (const auto& c : Reference()["decode"]) {
    const Tokenizer& tokenizer = ReferenceTokenizer(c["tokenizer"].get<std::string>());
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    for (const bool skip : {false, true}) {
      auto text = tokenizer.Decode(ids, skip);
      ASSERT_TRUE(text.ok()) << c["name"] << ": " << text.status();
      const std::string expected = c[skip ? "text_skip" : "text"].get<std::string>();
      EXPECT_EQ(*text, expected) << c["tokenizer"] << " case " << c["name"] << " skip=" << skip
                                 << ": got " << Printable(*text) << " want " << Printable(expected);
    }
  }
}

// Streaming the HF decode cases one id at a time gives HF's text, never a broken character.
TEST(TokenizerParityTest, StreamingDecodeMatchesHf) {
  for (const char* list : {"decode", "encode"}) {
    for (const auto& c : Reference()[list]) {
      const Tokenizer& tokenizer = ReferenceTokenizer(c["tokenizer"].get<std::string>());
      const auto ids = c["ids"].get<std::vector<int32_t>>();
      for (const bool skip : {false, true}) {
        IncrementalDecoder decoder(&tokenizer, skip);
        std::string streamed;
        for (const int32_t id : ids) {
          auto delta = decoder.Add(id);
          ASSERT_TRUE(delta.ok()) << delta.status();
          streamed += *delta;
        }
        streamed += decoder.Finish();
        const char* key = list == std::string("decode") ? (skip ? "text_skip" : "text")
                                                        : (skip ? "decoded_skip" : "decoded");
        EXPECT_EQ(streamed, c[key].get<std::string>()) << c["name"] << " skip=" << skip;
      }
    }
  }
}

// Optional larger check: XLSTM_TOKENIZER_EXTRA_REFERENCE names a file written by
// `make_tokenizer_reference.py --extra-random N --extra-out FILE` (not committed: too large).
TEST(TokenizerParityTest, ExtraRandomReferenceWhenGiven) {
  const char* path = std::getenv("XLSTM_TOKENIZER_EXTRA_REFERENCE");
  if (path == nullptr) GTEST_SKIP() << "XLSTM_TOKENIZER_EXTRA_REFERENCE not set";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  const nlohmann::json extra = nlohmann::json::parse(in);
  int mismatches = 0;
  for (const auto& c : extra["encode"]) {
    const Tokenizer& tokenizer = ReferenceTokenizer(c["tokenizer"].get<std::string>());
    const std::string text = c["text"].get<std::string>();
    auto ids = tokenizer.Encode(text);
    ASSERT_TRUE(ids.ok()) << ids.status();
    if (*ids != c["ids"].get<std::vector<int32_t>>()) {
      ++mismatches;
      ADD_FAILURE() << "encode mismatch: " << c["name"] << " " << Printable(text);
    }
    auto decoded = tokenizer.Decode(*ids, false);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, c["decoded"].get<std::string>()) << c["name"];
  }
  EXPECT_EQ(mismatches, 0) << "of " << extra["encode"].size();
}

TEST(TokenizerParityTest, VocabularyFactsMatchHf) {
  for (const auto& [name, info] : Reference()["info"].items()) {
    const Tokenizer& tokenizer = ReferenceTokenizer(name);
    EXPECT_EQ(tokenizer.vocab_size(), info["vocab_size"].get<int>()) << name;
    for (const auto& [token, id] : info["token_to_id"].items()) {
      EXPECT_EQ(tokenizer.TokenToId(token), id.get<int32_t>()) << name << " " << Printable(token);
    }
    for (const auto& [id, content] : info["added_tokens"].items()) {
      EXPECT_EQ(tokenizer.IdToToken(std::stoi(id)), content.get<std::string>()) << name;
    }
  }
}

}  // namespace
}  // namespace xlstm::tokenizer
