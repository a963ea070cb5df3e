// xlstm-client's generate output against a real server: every one of n samples is printed (text,
// JSON and streamed), --logprobs shows in text mode too, and a generate without a prompt is a
// usage error. Before, the client printed sample 0 only, interleaved the streamed deltas of all
// samples into one line, dropped --logprobs in text mode, and sent an empty prompt.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/server_process.h"

namespace xlstm::testing {
namespace {

class ClientCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("client_cli");
    model_ = dir_->path() + "/model";
    int code = -1;
    RunCommand(kRun + " init-random --config " + kDemoConfig + " --seed 0 --dtype bfloat16 " +
                   "--tokenizer " + kTokenizerJson + " --out " + model_ + " 2>&1",
               &code);
    ASSERT_EQ(code, 0) << "init-random failed";
    server_ = new ServerProcess({}, model_);
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  std::string Generate(const std::string& flags, int* code) {
    return RunCommand(kClient + " --target " + server_->target() + " generate " + flags + " 2>&1",
                      code);
  }

  static TempDir* dir_;
  static std::string model_;
  static ServerProcess* server_;
};
TempDir* ClientCliTest::dir_ = nullptr;
std::string ClientCliTest::model_;
ServerProcess* ClientCliTest::server_ = nullptr;

constexpr const char* kSampled = "--ids 5,17,9 --n 3 --max-new-tokens 4 --seed 7 --temperature 1";

TEST_F(ClientCliTest, JsonHasEverySample) {
  ASSERT_GT(server_->port(), 0);
  int code = -1;
  const std::string out = Generate(std::string(kSampled) + " --logprobs --json", &code);
  ASSERT_EQ(code, 0) << out;
  const nlohmann::json j = nlohmann::json::parse(out);
  ASSERT_TRUE(j.contains("samples")) << out;
  ASSERT_EQ(j["samples"].size(), 3u) << out;
  for (const nlohmann::json& sample : j["samples"]) {
    EXPECT_EQ(sample["ids"].size(), 4u) << out;
    EXPECT_EQ(sample["logprobs"].size(), 4u) << out;
    EXPECT_EQ(sample["finish_reason"], "length") << out;
  }
  // One sample keeps the flat shape.
  const std::string one = Generate("--ids 5,17,9 --max-new-tokens 4 --greedy --json", &code);
  ASSERT_EQ(code, 0) << one;
  const nlohmann::json flat = nlohmann::json::parse(one);
  EXPECT_EQ(flat["ids"].size(), 4u) << one;
  EXPECT_FALSE(flat.contains("samples")) << one;
}

TEST_F(ClientCliTest, StreamedJsonAddsUpToTheSamePerSampleIds) {
  ASSERT_GT(server_->port(), 0);
  int code = -1;
  const nlohmann::json all =
      nlohmann::json::parse(Generate(std::string(kSampled) + " --json", &code));
  ASSERT_EQ(code, 0);
  const std::string streamed = Generate(std::string(kSampled) + " --json --stream", &code);
  ASSERT_EQ(code, 0) << streamed;
  std::vector<std::vector<int>> ids(3);
  size_t begin = 0;
  while (begin < streamed.size()) {
    const size_t end = streamed.find('\n', begin);
    const std::string line = streamed.substr(begin, end - begin);
    begin = end == std::string::npos ? streamed.size() : end + 1;
    if (line.empty()) continue;
    const nlohmann::json m = nlohmann::json::parse(line);
    const int index = m["index"];
    ASSERT_GE(index, 0);
    ASSERT_LT(index, 3);
    for (int id : m["ids"]) ids[index].push_back(id);
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(nlohmann::json(ids[i]), all["samples"][i]["ids"]) << "sample " << i;
  }
}

TEST_F(ClientCliTest, TextModePrintsEachSampleWithItsLogprobs) {
  ASSERT_GT(server_->port(), 0);
  int code = -1;
  const std::string out = Generate(std::string(kSampled) + " --logprobs", &code);
  ASSERT_EQ(code, 0) << out;
  for (const char* tag : {"[sample 0]", "[sample 1]", "[sample 2]"}) {
    EXPECT_NE(out.find(tag), std::string::npos) << tag << ":\n" << out;
  }
  size_t lines = 0;
  for (size_t at = out.find("\nlogprobs: "); at != std::string::npos;
       at = out.find("\nlogprobs: ", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 3u) << out;
  // Streamed, each message is a line tagged with its sample.
  const std::string streamed = Generate(std::string(kSampled) + " --stream", &code);
  ASSERT_EQ(code, 0) << streamed;
  EXPECT_NE(streamed.find("[2] "), std::string::npos) << streamed;
}

TEST_F(ClientCliTest, GenerateWithoutAPromptIsAUsageError) {
  int code = -1;
  const std::string out = Generate("--max-new-tokens 2", &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--prompt"), std::string::npos) << out;
  const std::string empty = Generate("--prompt '' --max-new-tokens 2", &code);
  EXPECT_EQ(code, 2) << empty;
}

}  // namespace
}  // namespace xlstm::testing
