// Model-directory loading: tokenizer.json plus tokenizer_config.json / special_tokens_map.json.
#include "engine/tokenizer/tokenizer_files.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tokenizer/reference_fixture.h"

namespace xlstm::tokenizer {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using testing::Reference;
using testing::TestDataPath;

// A fresh model directory holding a copy of GPT-NeoX-20B's tokenizer.json.
std::string NeoXDir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("tokenizer_files_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(TestDataPath("tokenizers/gpt-neox-20b/tokenizer.json"), dir / "tokenizer.json");
  return dir.string();
}

void Write(const std::string& dir, const std::string& file, const std::string& contents) {
  std::ofstream(fs::path(dir) / file) << contents;
}

TEST(TokenizerFilesTest, VariantDirectoryMatchesTransformers) {
  auto files = LoadTokenizerFiles(TestDataPath("tokenizers/neox-variant"));
  ASSERT_TRUE(files.ok()) << files.status();
  // What transformers 5.17 reports for the same directory (recorded on the GPU box).
  const auto& hf = Reference()["info"]["neox-variant"]["transformers"];
  EXPECT_EQ(files->bos_id, hf["bos_token_id"].get<int32_t>());
  EXPECT_EQ(files->eos_id, hf["eos_token_id"].get<int32_t>());
  EXPECT_TRUE(files->add_bos);  // "add_bos_token": true in its tokenizer_config.json
  auto ids = files->tokenizer->Encode("hello");
  ASSERT_TRUE(ids.ok());
  auto prompt = files->EncodePrompt("hello");
  ASSERT_TRUE(prompt.ok());
  std::vector<int32_t> expected = {files->bos_id};
  expected.insert(expected.end(), ids->begin(), ids->end());
  EXPECT_THAT(*prompt, ElementsAreArray(expected));
}

TEST(TokenizerFilesTest, DefaultsWithoutConfigFilesAreXlstmBos0) {
  const std::string dir = NeoXDir("defaults");
  EXPECT_TRUE(HasTokenizer(dir));
  auto files = LoadTokenizerFiles(dir);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->bos_id, 0);
  EXPECT_EQ(files->eos_id, 0);
  EXPECT_TRUE(files->add_bos);
  EXPECT_EQ(files->tokenizer->IdToToken(0), "<|endoftext|>");
  auto prompt = files->EncodePrompt("Hello world");
  ASSERT_TRUE(prompt.ok());
  ASSERT_FALSE(prompt->empty());
  EXPECT_EQ(prompt->front(), 0);
  EXPECT_EQ(std::vector<int32_t>(prompt->begin() + 1, prompt->end()),
            *files->tokenizer->Encode("Hello world"));
}

TEST(TokenizerFilesTest, SpecialTokensMapIsUsedWhenConfigIsSilent) {
  const std::string dir = NeoXDir("map");
  Write(dir, "tokenizer_config.json", R"({"add_bos_token": false, "bos_token": null})");
  Write(dir, "special_tokens_map.json",
        R"({"bos_token": {"content": "<|unk|>"}, "eos_token": "<|endoftext|>"})");
  auto files = LoadTokenizerFiles(dir);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->bos_id, *files->tokenizer->TokenToId("<|unk|>"));
  EXPECT_EQ(files->eos_id, *files->tokenizer->TokenToId("<|endoftext|>"));
  EXPECT_FALSE(files->add_bos);
  EXPECT_EQ(*files->EncodePrompt("Hello"), *files->tokenizer->Encode("Hello"));
}

TEST(TokenizerFilesTest, ConfigTakesPrecedenceOverMap) {
  const std::string dir = NeoXDir("precedence");
  Write(dir, "tokenizer_config.json", R"({"eos_token": "<|unk|>"})");
  Write(dir, "special_tokens_map.json", R"({"eos_token": "<|endoftext|>"})");
  auto files = LoadTokenizerFiles(dir);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->eos_id, *files->tokenizer->TokenToId("<|unk|>"));
  EXPECT_TRUE(files->add_bos);
}

TEST(TokenizerFilesTest, Errors) {
  const std::string empty =
      (fs::path(::testing::TempDir()) / "tokenizer_files_test_empty").string();
  fs::create_directories(empty);
  EXPECT_FALSE(HasTokenizer(empty));
  EXPECT_EQ(LoadTokenizerFiles(empty).status().code(), absl::StatusCode::kNotFound);

  struct Case {
    const char* file;
    const char* contents;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {"tokenizer_config.json", R"({"bos_token": "<|nope|>"})", "\"bos_token\" token \"<|nope|>\""},
      {"tokenizer_config.json", R"({"add_bos_token": "yes"})",
       "\"add_bos_token\" must be a boolean"},
      {"tokenizer_config.json", R"({"eos_token": 3})", "\"eos_token\" must be a string"},
      {"tokenizer_config.json", "{oops", "malformed JSON"},
      {"special_tokens_map.json", R"({"eos_token": {"content": "<|nope|>"}})",
       "not in the vocabulary"},
  };
  for (const Case& c : cases) {
    const std::string dir = NeoXDir("errors");
    Write(dir, c.file, c.contents);
    auto files = LoadTokenizerFiles(dir);
    ASSERT_FALSE(files.ok()) << c.contents;
    EXPECT_EQ(files.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(files.status().message()), HasSubstr(c.file));
    EXPECT_THAT(std::string(files.status().message()), HasSubstr(c.expected));
  }
}

}  // namespace
}  // namespace xlstm::tokenizer
