// The server's proto -> engine mapping (server/request_validation.h) on the GPT-NeoX tokenizer
// of the tests: what an unset add_special_tokens means, text refused by byte length before it
// is tokenized, request_id capped, field names of the engine's validation as the wire spells
// them.
#include <chrono>
#include <memory>
#include <string>

#include "engine/model_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/request_validation.h"
#include "server/server_options.h"
#include "server/text_codec.h"

namespace xlstm::server {
namespace {

using ::testing::HasSubstr;

const char kTokenizerDir[] = XLSTM_TEST_DATA_DIR "/tokenizers/gpt-neox-20b";
constexpr int32_t kBos = 0;  // <|endoftext|>: no tokenizer_config.json, so BOS id 0 is added

class RequestMappingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TextCodec>> codec = TextCodec::Load(kTokenizerDir);
    ASSERT_TRUE(codec.ok()) << codec.status();
    ASSERT_NE(*codec, nullptr) << "this build has no tokenizer";
    codec_ = *std::move(codec);
    config_.vocab_size = 50304;
    options_.max_prompt_tokens = 64;
  }
  ValidationContext Context() const { return {&options_, &config_, 4, codec_.get()}; }

  std::unique_ptr<TextCodec> codec_;
  engine::ModelConfig config_;
  ServerOptions options_;
};

// Regression (issue 10, defect 3): an unset add_special_tokens means "as the tokenizer config
// says", which for this tokenizer (and xLSTM-7b's) is BOS first, as with true.
TEST_F(RequestMappingTest, UnsetAddSpecialTokensMeansTheTokenizerDefault) {
  const auto unset = codec_->Encode("Hello world", std::nullopt);
  const auto yes = codec_->Encode("Hello world", true);
  const auto no = codec_->Encode("Hello world", false);
  ASSERT_TRUE(unset.ok() && yes.ok() && no.ok());
  EXPECT_EQ(*unset, *yes);
  ASSERT_FALSE(unset->empty());
  EXPECT_EQ(unset->front(), kBos);
  EXPECT_EQ(unset->size(), no->size() + 1);

  v1::GenerateRequest generate;
  generate.set_text("Hello world");
  auto mapped = ToEngineGenerate(Context(), generate, 1);
  ASSERT_TRUE(mapped.ok()) << mapped.status();
  EXPECT_EQ(mapped->prompt, *yes);
  generate.set_add_special_tokens(false);
  mapped = ToEngineGenerate(Context(), generate, 1);
  ASSERT_TRUE(mapped.ok()) << mapped.status();
  EXPECT_EQ(mapped->prompt, *no);

  v1::TokenizeRequest tokenize;
  tokenize.set_text("Hello world");
  auto ids = ToTokenIds(Context(), tokenize);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, *yes);

  v1::ScoreRequest score;
  v1::ScoreItem* item = score.add_items();
  item->set_context_text("Hello");
  item->add_continuation_texts(" world");
  auto items = ToEngineScores(Context(), score);
  ASSERT_TRUE(items.ok()) << items.status();
  EXPECT_EQ((*items)[0].context.front(), kBos);
  EXPECT_NE((*items)[0].continuations[0].front(), kBos);  // continuations never get BOS
}

// Regression (issue 10, defect 9): a text that cannot fit in max_prompt_tokens tokens is refused
// by its byte length, at once, naming the field and both limits.
TEST_F(RequestMappingTest, OversizedTextIsRefusedByLengthBeforeTokenizing) {
  const int64_t per_token = codec_->max_text_bytes_per_token();
  ASSERT_GT(per_token, 0);
  const size_t fits = static_cast<size_t>(options_.max_prompt_tokens * per_token);
  v1::GenerateRequest generate;
  generate.set_text(std::string(fits + 1, 'a'));  // one word: slow to tokenize
  const auto start = std::chrono::steady_clock::now();
  auto mapped = ToEngineGenerate(Context(), generate, 1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50));
  EXPECT_EQ(mapped.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mapped.status().message(), HasSubstr("prompt.text has "));
  EXPECT_THAT(mapped.status().message(), HasSubstr("64 tokens (max_prompt_tokens)"));
  EXPECT_THAT(mapped.status().message(), HasSubstr(absl::StrCat(per_token, " bytes per token")));

  v1::TokenizeRequest tokenize;
  tokenize.set_text(std::string(fits + 1, 'a'));
  EXPECT_THAT(ToTokenIds(Context(), tokenize).status().message(), HasSubstr("text has "));

  v1::ScoreRequest score;
  v1::ScoreItem* item = score.add_items();
  item->set_context_text(std::string(fits / 2 + 1, 'a'));
  item->add_continuation_texts(std::string(fits / 2 + 1, 'b'));
  EXPECT_THAT(ToEngineScores(Context(), score).status().message(), HasSubstr("items[0] has "));

  // Text of that length that does fit is tokenized (and then counted in tokens).
  generate.set_text("Hello world");
  EXPECT_TRUE(ToEngineGenerate(Context(), generate, 1).ok());
}

// Regression (issue 10, defect 8): request_id is echoed in every message; it is capped.
TEST_F(RequestMappingTest, RequestIdIsCapped) {
  v1::GenerateRequest generate;
  generate.mutable_ids()->add_ids(5);
  generate.set_request_id(std::string(engine::kMaxRequestIdBytes, 'r'));
  EXPECT_TRUE(ToEngineGenerate(Context(), generate, 1).ok());
  generate.set_request_id(std::string(8 << 20, 'r'));
  EXPECT_THAT(ToEngineGenerate(Context(), generate, 1).status().message(),
              HasSubstr("request_id has 8388608 bytes; the limit is 256"));
  v1::ScoreRequest score;
  score.set_request_id(std::string(257, 'r'));
  v1::ScoreItem* item = score.add_items();
  item->mutable_context_ids()->add_ids(1);
  item->add_continuation_ids()->add_ids(2);
  EXPECT_THAT(ToEngineScores(Context(), score).status().message(),
              HasSubstr("request_id has 257 bytes"));
}

// The engine's validation runs on the mapped request, with the wire's field names.
TEST_F(RequestMappingTest, EngineValidationNamesWireFields) {
  v1::GenerateRequest generate;
  generate.mutable_ids()->add_ids(5);
  generate.mutable_ids()->add_ids(60000);
  EXPECT_THAT(ToEngineGenerate(Context(), generate, 1).status().message(),
              HasSubstr("prompt.ids[1] = 60000 is outside the vocabulary [0, 50304)"));
  generate.mutable_ids()->set_ids(1, 7);
  generate.mutable_stopping()->set_max_new_tokens(1 << 20);
  EXPECT_THAT(ToEngineGenerate(Context(), generate, 1).status().message(),
              HasSubstr("stopping.max_new_tokens = 1048576 is outside [0, 4096]"));

  v1::ScoreRequest score;
  score.add_items()->mutable_context_ids()->add_ids(1);
  score.mutable_items(0)->add_continuation_ids()->add_ids(2);
  v1::ScoreItem* bad = score.add_items();
  bad->mutable_context_ids()->add_ids(1);
  bad->add_continuation_ids()->add_ids(3);
  bad->add_continuation_ids()->add_ids(-4);
  EXPECT_EQ(ToEngineScores(Context(), score).status().message(),
            "items[1].continuation_ids[1][0] = -4 is outside the vocabulary [0, 50304)");
}

}  // namespace
}  // namespace xlstm::server
