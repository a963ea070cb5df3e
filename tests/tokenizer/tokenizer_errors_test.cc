// Errors: invalid UTF-8 input, ids outside the vocabulary, unreadable / malformed / unsupported
// tokenizer.json files. Every error must be a Status naming what is wrong, never a crash.
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/incremental_decoder.h"
#include "engine/tokenizer/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tokenizer/reference_fixture.h"

namespace xlstm::tokenizer {
namespace {

using ::testing::HasSubstr;
using testing::NeoX;
using testing::TestDataPath;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(TokenizerErrorsTest, EncodeRejectsInvalidUtf8WithOffset) {
  struct Case {
    std::string text;
    size_t offset;
  };
  const std::vector<Case> cases = {
      {"\xff", 0},              // never valid
      {"abc\xc3(", 3},          // lead byte without continuation
      {"ok \xc0\xaf", 3},       // overlong '/'
      {"x\xed\xa0\x80y", 1},    // UTF-16 surrogate
      {"ab\xe2\x82", 2},        // cut off by the end
      {"\xf4\x90\x80\x80", 0},  // above U+10FFFF
      {"caf\xc3\xa9 \x80", 6},  // stray continuation byte after valid text
  };
  for (const Case& c : cases) {
    auto ids = NeoX().Encode(c.text);
    ASSERT_FALSE(ids.ok()) << testing::Printable(c.text);
    EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(ids.status()), HasSubstr("not valid UTF-8"));
    EXPECT_THAT(Message(ids.status()), HasSubstr("offset " + std::to_string(c.offset)));
  }
}

TEST(TokenizerErrorsTest, DecodeRejectsIdsOutsideVocabulary) {
  const Tokenizer& tokenizer = NeoX();
  for (const int32_t bad :
       {-1, tokenizer.vocab_size(), tokenizer.vocab_size() + 5, INT32_MAX, INT32_MIN}) {
    for (const bool skip : {false, true}) {
      auto text = tokenizer.Decode(std::vector<int32_t>{12092, bad}, skip);
      ASSERT_FALSE(text.ok()) << bad;
      EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(Message(text.status()), HasSubstr("ids[1]"));
      EXPECT_THAT(Message(text.status()), HasSubstr(std::to_string(bad)));
    }
  }
}

TEST(TokenizerErrorsTest, IncrementalDecoderRejectsBadIdAndKeepsState) {
  const Tokenizer& tokenizer = NeoX();
  // "€" (E2 82 AC) as three single-byte tokens, with a bad id after the second.
  std::vector<int32_t> euro;
  for (const char c : std::string("\xe2\x82\xac")) {
    euro.push_back(*tokenizer.TokenToId(ByteToUnicode()[static_cast<uint8_t>(c)]));
  }
  IncrementalDecoder decoder(&tokenizer, false);
  std::string streamed = *decoder.Add(euro[0]);
  streamed += *decoder.Add(euro[1]);
  EXPECT_EQ(streamed, "");
  EXPECT_EQ(decoder.pending_bytes(), 2u);
  auto bad = decoder.Add(tokenizer.vocab_size());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(decoder.pending_bytes(), 2u);
  streamed += *decoder.Add(euro[2]);
  streamed += decoder.Finish();
  EXPECT_EQ(streamed, *tokenizer.Decode(euro, false));
  EXPECT_EQ(streamed, *tokenizer.Decode(*tokenizer.Encode("\xe2\x82\xac"), false));
}

class TokenizerFileErrorsTest : public ::testing::Test {
 protected:
  static nlohmann::json Variant() {
    std::ifstream in(TestDataPath("tokenizers/neox-variant/tokenizer.json"));
    return nlohmann::json::parse(in);
  }
  // Writes `contents` to a temporary tokenizer.json and loads it.
  static absl::Status Load(const std::string& contents) {
    // One file per test: ctest runs the tests of this binary as parallel processes.
    const std::string path = ::testing::TempDir() + "/tokenizer_errors_test_" +
                             ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                             ".json";
    std::ofstream(path, std::ios::binary) << contents;
    auto tokenizer = Tokenizer::FromFile(path);
    if (tokenizer.ok()) return absl::OkStatus();
    EXPECT_THAT(Message(tokenizer.status()), HasSubstr(path)) << "errors name the file";
    return tokenizer.status();
  }
  static void ExpectRejected(const nlohmann::json& json, const std::string& expected_text) {
    const absl::Status status = Load(json.dump());
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(Message(status), HasSubstr(expected_text));
  }
};

TEST_F(TokenizerFileErrorsTest, TheUnmodifiedVariantLoads) {
  EXPECT_TRUE(Load(Variant().dump()).ok());
}

TEST_F(TokenizerFileErrorsTest, MissingFileIsNotFound) {
  auto tokenizer = Tokenizer::FromFile(::testing::TempDir() + "/no/such/tokenizer.json");
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(tokenizer.status()), HasSubstr("no/such/tokenizer.json"));
}

TEST_F(TokenizerFileErrorsTest, MalformedJson) {
  for (const std::string contents : {"{\"model\": ", "not json", "", "[1, 2]"}) {
    const absl::Status status = Load(contents);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << contents;
  }
  EXPECT_THAT(Message(Load("{\"model\": ")), HasSubstr("malformed JSON"));
}

TEST_F(TokenizerFileErrorsTest, UnsupportedModelType) {
  nlohmann::json json = Variant();
  json["model"]["type"] = "WordPiece";
  ExpectRejected(json, "unsupported model type \"WordPiece\" (supported: BPE)");
  json["model"].erase("type");
  ExpectRejected(json, "unsupported model type");
}

TEST_F(TokenizerFileErrorsTest, UnsupportedPipelineComponents) {
  struct Case {
    const char* field;
    nlohmann::json value;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {"normalizer", {{"type", "NFKC"}}, "unsupported normalizer type \"NFKC\""},
      {"normalizer", {{"type", "Lowercase"}}, "supported: null, NFC"},
      {"pre_tokenizer", {{"type", "Metaspace"}}, "unsupported pre_tokenizer type \"Metaspace\""},
      {"pre_tokenizer", nullptr, "unsupported pre_tokenizer type \"null\" (supported: ByteLevel)"},
      {"decoder", {{"type", "WordPiece"}}, "unsupported decoder type \"WordPiece\""},
      {"post_processor", {{"type", "TemplateProcessing"}}, "supported: null, ByteLevel"},
      {"truncation", {{"max_length", 8}}, "\"truncation\" is not supported"},
      {"padding", {{"strategy", "BatchLongest"}}, "\"padding\" is not supported"},
  };
  for (const Case& c : cases) {
    nlohmann::json json = Variant();
    json[c.field] = c.value;
    ExpectRejected(json, c.expected);
  }
}

TEST_F(TokenizerFileErrorsTest, InconsistentModel) {
  nlohmann::json json = Variant();
  json["model"]["merges"].push_back("Ġzzzq Ġyyyq");
  ExpectRejected(json, "is not in the vocab");
  json = Variant();
  json["model"]["merges"][0] = "onlyonetoken";
  ExpectRejected(json, "merge 0");
  json = Variant();
  json["model"]["vocab"] = nlohmann::json::array();
  ExpectRejected(json, "\"vocab\" must be an object");
  json = Variant();
  json["model"]["dropout"] = 0.1;
  ExpectRejected(json, "dropout");
  json = Variant();
  json["model"]["byte_fallback"] = true;
  ExpectRejected(json, "byte_fallback");
  json = Variant();
  json["added_tokens"][0]["content"] = 5;
  ExpectRejected(json, "added_tokens[0]");
  json = Variant();
  json["added_tokens"][1]["lstrip"] = "yes";
  ExpectRejected(json, "added_tokens[1].lstrip");
  json = Variant();
  json["pre_tokenizer"]["add_prefix_space"] = "true";
  ExpectRejected(json, "pre_tokenizer.add_prefix_space");
}

}  // namespace
}  // namespace xlstm::tokenizer
