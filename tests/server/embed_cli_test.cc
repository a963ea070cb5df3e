// `xlstm-client embed` against a real server and `xlstm-run embed` in-process, on a random model
// with a tokenizer: both print the same JSON numbers for ids and for text (the server's CPU
// backend and xlstm-run share the CPU reference model), text mode prints one line per row, and
// usage mistakes and refused requests exit 2 and 1 with the message.
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/server_process.h"

namespace xlstm::testing {
namespace {

class EmbedCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("embed_cli");
    model_ = dir_->path() + "/model";
    int code = -1;
    RunCommand(kRun + " init-random --config " + kDemoConfig + " --seed 0 --tokenizer " +
                   kTokenizerJson + " --out " + model_ + " 2>&1",
               &code);
    ASSERT_EQ(code, 0) << "init-random failed";
    server_ = new ServerProcess({"--step-token-budget", "4"}, model_);
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  std::string Client(const std::string& flags, int* code) {
    return RunCommand(kClient + " --target " + server_->target() + " embed " + flags + " 2>&1",
                      code);
  }
  std::string Run(const std::string& flags, int* code) {
    return RunCommand(kRun + " embed --model " + model_ + " " + flags + " 2>&1", code);
  }

  static TempDir* dir_;
  static std::string model_;
  static ServerProcess* server_;
};
TempDir* EmbedCliTest::dir_ = nullptr;
std::string EmbedCliTest::model_;
ServerProcess* EmbedCliTest::server_ = nullptr;

std::vector<float> Values(const nlohmann::json& embedding) {
  return embedding["values"].get<std::vector<float>>();
}

TEST_F(EmbedCliTest, ClientInputsEqualXlstmRunOneByOne) {
  ASSERT_GT(server_->port(), 0);
  int code = -1;
  const std::string out = Client("--ids '5,17,9;4,8,1,2,3,6' --pooling all --json", &code);
  ASSERT_EQ(code, 0) << out;
  const nlohmann::json j = nlohmann::json::parse(out);
  ASSERT_EQ(j["embeddings"].size(), 2u) << out;
  const int64_t dim = j["hidden_size"].get<int64_t>();
  ASSERT_GT(dim, 0);
  EXPECT_EQ(j["prompt_tokens"], 9);
  const char* inputs[] = {"5,17,9", "4,8,1,2,3,6"};
  for (int i = 0; i < 2; ++i) {
    const std::string ran = Run(std::string("--ids ") + inputs[i] + " --pooling all --json", &code);
    ASSERT_EQ(code, 0) << ran;
    const nlohmann::json r = nlohmann::json::parse(ran);
    EXPECT_EQ(r["hidden_size"], dim);
    EXPECT_EQ(j["embeddings"][i]["positions"], r["embeddings"][0]["positions"]);
    EXPECT_EQ(Values(j["embeddings"][i]), Values(r["embeddings"][0])) << inputs[i];
  }
  EXPECT_EQ(j["embeddings"][1]["positions"], 6);
}

TEST_F(EmbedCliTest, TextMeanNormalizedEqualsXlstmRunAndHasUnitNorm) {
  int code = -1;
  const std::string flags = "--prompt 'The recurrent state' --pooling mean --normalize --json";
  const std::string out = Client(flags, &code);
  ASSERT_EQ(code, 0) << out;
  const std::string ran = Run(flags, &code);
  ASSERT_EQ(code, 0) << ran;
  const std::vector<float> client = Values(nlohmann::json::parse(out)["embeddings"][0]);
  EXPECT_EQ(client, Values(nlohmann::json::parse(ran)["embeddings"][0]));
  double sq = 0;
  for (float v : client) sq += static_cast<double>(v) * v;
  EXPECT_NEAR(std::sqrt(sq), 1.0, 1e-6);
}

TEST_F(EmbedCliTest, TextModePrintsOneLinePerRow) {
  int code = -1;
  const std::string out = Client("--ids '5,17,9;4' --pooling all", &code);
  ASSERT_EQ(code, 0) << out;
  const std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u) << out;
  EXPECT_EQ(lines[0].rfind("0\t0\t", 0), 0u) << lines[0];
  EXPECT_EQ(lines[2].rfind("0\t2\t", 0), 0u) << lines[2];
  EXPECT_EQ(lines[3].rfind("1\t0\t", 0), 0u) << lines[3];
  const std::string ran = Run("--ids 5,17,9 --pooling all", &code);
  ASSERT_EQ(code, 0) << ran;
  EXPECT_EQ(out.substr(0, out.find("1\t0\t")), ran);  // the same rows, digit for digit
}

TEST_F(EmbedCliTest, MistakesAndRefusalsExitWithTheMessage) {
  int code = -1;
  std::string out = Client("--ids 5 --pooling max", &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--pooling"), std::string::npos) << out;
  out = Run("--ids 5 --pooling max", &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("pooling"), std::string::npos) << out;
  out = Client("--ids '5;'", &code);
  EXPECT_EQ(code, 2) << out;
  out = Client("--ids 5,99999999", &code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("inputs[0].ids[1] = 99999999 is outside the vocabulary"), std::string::npos)
      << out;
}

}  // namespace
}  // namespace xlstm::testing
