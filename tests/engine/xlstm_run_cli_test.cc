// Runs the built xlstm-run binary the way users (and outside checks) do, and compares its JSON
// with the Hugging Face references.
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/hf_fixture.h"

namespace xlstm {
namespace {

using ::testing::HasSubstr;

struct CommandResult {
  int exit_code;
  std::string out;  // stdout and stderr together
};

// `timeout 60` ends a hung run with status 124, so a hang fails the test instead of blocking it.
CommandResult RunCli(const std::string& args) {
  const std::string command = "timeout 60 " + std::string(XLSTM_BINARY_DIR) +
                              "/tools/xlstm_run/xlstm-run " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::string out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string Ids(const nlohmann::json& ids) {
  return absl::StrJoin(ids.get<std::vector<int32_t>>(), ",");
}

class XlstmRunCliTest : public ::testing::TestWithParam<std::string> {};

TEST_P(XlstmRunCliTest, GreedyGenerateMatchesHuggingFace) {
  const testing::HfFixture f = testing::LoadHfFixture(GetParam());
  const auto& gen = f.meta.at("generate");
  const CommandResult r = RunCli(
      "generate --model " + f.dir + " --ids " + Ids(gen.at("prompt")) + " --max-new-tokens " +
      std::to_string(gen.at("max_new_tokens").get<int>()) + " --greedy --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out).at("ids"), gen.at("ids"));
}

TEST_P(XlstmRunCliTest, ScoreMatchesHuggingFace) {
  const testing::HfFixture f = testing::LoadHfFixture(GetParam());
  for (const auto& item : f.meta.at("score")) {
    const CommandResult r =
        RunCli("score --model " + f.dir + " --context-ids " + Ids(item.at("context")) +
               " --continuation-ids " + Ids(item.at("continuation")) + " --json");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const nlohmann::json out = nlohmann::json::parse(r.out);
    EXPECT_EQ(out.at("is_greedy"), item.at("is_greedy"));
    ASSERT_EQ(out.at("logprobs").size(), item.at("continuation").size());
    if (item.contains("logprobs")) {
      for (size_t i = 0; i < item.at("logprobs").size(); ++i) {
        EXPECT_NEAR(out.at("logprobs")[i].get<double>(), item.at("logprobs")[i].get<double>(),
                    1e-3);
      }
      EXPECT_NEAR(out.at("sum").get<double>(), item.at("sum").get<double>(), 1e-2);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllFixtures, XlstmRunCliTest, ::testing::ValuesIn(testing::HfCases()));

TEST(XlstmRunCliErrorsTest, BadFlagsGetClearErrors) {
  const std::string model = std::string(XLSTM_TEST_DATA_DIR) + "/hf/default";
  CommandResult r = RunCli("generate --model " + model + " --ids 5,x,9 --json");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("--ids: 'x' is not a token id"));
  r = RunCli("generate --model " + model + " --ids 5,256 --json");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("token id 256 is outside the vocabulary [0, 256)"));
  r = RunCli("generate --model " + model + " --ids 5 --top-p 0 --json");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("top_p is 0, must be in (0, 1]"));
  r = RunCli("score --model " + model + " --context-ids 1 --json");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("--continuation-ids: needs at least one token"));
  r = RunCli("generate --model /nonexistent --ids 1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("/nonexistent: not a model directory"));
  r = RunCli("frobnicate");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("unknown command 'frobnicate'"));
}

TEST(XlstmRunCliInitRandomTest, WritesALoadableModelAndSamplingIsSeeded) {
  const std::string dir = ::testing::TempDir() + "/xlstm_init_random_cli";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string config = dir + "/in.json";
  std::ofstream(config)
      << R"({"vocab_size": 100, "hidden_size": 64, "num_hidden_layers": 2, "num_heads": 2})";
  CommandResult r = RunCli("init-random --config " + config + " --seed 3 --out " + dir +
                           "/model --dtype bfloat16");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(std::filesystem::exists(dir + "/model/model.safetensors"));
  const std::string sample =
      "generate --model " + dir +
      "/model --ids 1,2,3 --max-new-tokens 10 "
      "--temperature 0.8 --top-k 20 --top-p 0.9 --seed 11 --ignore-eos --json";
  const CommandResult a = RunCli(sample), b = RunCli(sample);
  ASSERT_EQ(a.exit_code, 0) << a.out;
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(nlohmann::json::parse(a.out).at("ids").size(), 10u);
  // Greedy generation stops after emitting the EOS token (HF generate()), unless --ignore-eos.
  const std::string greedy =
      "generate --model " + dir + "/model --ids 1,2,3 --max-new-tokens 8 --greedy --json";
  const std::vector<int32_t> free_run = nlohmann::json::parse(RunCli(greedy + " --ignore-eos").out)
                                            .at("ids")
                                            .get<std::vector<int32_t>>();
  ASSERT_EQ(free_run.size(), 8u);
  std::ofstream(dir + "/model/generation_config.json")
      << nlohmann::json{{"eos_token_id", {free_run[2]}}}.dump();
  const std::vector<int32_t> stopped =
      nlohmann::json::parse(RunCli(greedy).out).at("ids").get<std::vector<int32_t>>();
  const size_t first_eos =
      std::find(free_run.begin(), free_run.end(), free_run[2]) - free_run.begin();
  EXPECT_EQ(stopped, std::vector<int32_t>(free_run.begin(), free_run.begin() + first_eos + 1));

  std::ofstream(config) << R"({"hidden_size": 64, "num_heads": 3})";
  r = RunCli("init-random --config " + config + " --out " + dir + "/bad");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("not divisible by num_heads = 3"));
  std::filesystem::remove_all(dir);
}

TEST(XlstmRunCliTextTest, PromptTextEqualsItsTokenIdsWithBos) {
  const std::string dir = ::testing::TempDir() + "/xlstm_text_cli";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/in.json")
      << R"({"vocab_size": 50304, "hidden_size": 64, "num_hidden_layers": 1, "num_heads": 2})";
  const std::string tokenizer =
      std::string(XLSTM_TEST_DATA_DIR) + "/tokenizers/gpt-neox-20b/tokenizer.json";
  CommandResult r = RunCli("init-random --config " + dir + "/in.json --dtype bfloat16 --out " +
                           dir + "/model --tokenizer " + tokenizer);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string model = " --model " + dir + "/model";

  // GPT-NeoX ids of "Hello world": 12092, 1533; the prompt gets BOS (0) in front.
  r = RunCli("generate" + model + " --prompt 'Hello world' --max-new-tokens 6 --greedy --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const nlohmann::json by_text = nlohmann::json::parse(r.out);
  r = RunCli("generate" + model + " --ids 0,12092,1533 --max-new-tokens 6 --greedy --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const nlohmann::json by_ids = nlohmann::json::parse(r.out);
  EXPECT_EQ(by_text.at("ids"), by_ids.at("ids"));
  ASSERT_TRUE(by_text.contains("text"));
  EXPECT_EQ(by_text.at("text"), by_ids.at("text"));

  r = RunCli("score" + model + " --context 'The cat' --continuation ' sat down' --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const nlohmann::json score_text = nlohmann::json::parse(r.out);
  r = RunCli("score" + model + " --context-ids 0,510,5798 --continuation-ids 2206,1066 --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(score_text, nlohmann::json::parse(r.out));

  r = RunCli("generate --model " + std::string(XLSTM_TEST_DATA_DIR) + "/hf/default --prompt hi");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("--prompt: needs a tokenizer.json"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace xlstm

namespace xlstm {
namespace {

// Malformed model directories never crash (rc 134) or hang (timeout's 124) xlstm-run: exit 1
// with an error naming the file.
class XlstmRunCliMalformedModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/xlstm_run_malformed_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::copy(std::string(XLSTM_TEST_DATA_DIR) + "/hf/default", dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  CommandResult Generate() {
    return RunCli("generate --model " + dir_ + " --ids 1,2 --max-new-tokens 2 --json");
  }
  std::string dir_;
};

TEST_F(XlstmRunCliMalformedModelTest, OverflowingNumberInConfig) {
  nlohmann::json config = nlohmann::json::parse(std::ifstream(dir_ + "/config.json"));
  config.erase("chunk_size");
  std::string text = config.dump();
  text.insert(text.size() - 1, ", \"chunk_size\": 1e999");
  std::ofstream(dir_ + "/config.json", std::ios::trunc) << text;
  const CommandResult r = Generate();
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("config.json: invalid JSON"));
  EXPECT_THAT(r.out, HasSubstr("number overflow"));
}

TEST_F(XlstmRunCliMalformedModelTest, OverflowingNumberInGenerationConfig) {
  std::ofstream(dir_ + "/generation_config.json", std::ios::trunc) << R"({"eos_token_id": 1e999})";
  const CommandResult r = Generate();
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("generation_config.json: invalid JSON"));
}

TEST_F(XlstmRunCliMalformedModelTest, SymlinkLoopAtWeights) {
  std::filesystem::remove(dir_ + "/model.safetensors");
  std::filesystem::create_symlink("model.safetensors", dir_ + "/model.safetensors");
  const CommandResult r = Generate();
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("model.safetensors: cannot resolve: Too many levels"));
}

TEST_F(XlstmRunCliMalformedModelTest, SymlinkLoopAtGenerationConfig) {
  std::filesystem::remove(dir_ + "/generation_config.json");
  std::filesystem::create_symlink("generation_config.json", dir_ + "/generation_config.json");
  const CommandResult r = Generate();
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("generation_config.json: cannot resolve: Too many levels"));
}

TEST_F(XlstmRunCliMalformedModelTest, FifoInPlaceOfWeights) {
  std::filesystem::remove(dir_ + "/model.safetensors");
  ASSERT_EQ(mkfifo((dir_ + "/model.safetensors").c_str(), 0600), 0);
  const CommandResult r = Generate();
  EXPECT_EQ(r.exit_code, 1) << "124 means it hung; output: " << r.out;
  EXPECT_THAT(r.out, HasSubstr("model.safetensors: is a FIFO; expected a regular file"));
}

TEST_F(XlstmRunCliMalformedModelTest, InitRandomRefusesAnAbsurdConfig) {
  const std::string config = dir_ + "/huge.json";
  std::ofstream(config) << R"({"vocab_size": 50304, "hidden_size": 1000000, "num_heads": 4})";
  const CommandResult r =
      RunCli("init-random --config " + config + " --seed 1 --out " + dir_ + "/huge_model");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr(config + ": "));
  EXPECT_THAT(r.out, HasSubstr("over the limit of"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/huge_model"));
}

TEST_F(XlstmRunCliMalformedModelTest, InitRandomRefusesAnOverflowingConfig) {
  const std::string config = dir_ + "/overflow.json";
  std::ofstream(config) << R"({"hidden_size": 64, "num_heads": 2, "norm_eps": -1e999})";
  const CommandResult r =
      RunCli("init-random --config " + config + " --seed 1 --out " + dir_ + "/out");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr(config + ": invalid JSON"));
}

}  // namespace
}  // namespace xlstm
