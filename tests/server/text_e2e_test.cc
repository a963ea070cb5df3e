// End-to-end tests of the text paths over gRPC: a model with the GPT-NeoX tokenizer is written
// at test time (xlstm-run init-random, the demo config), served by a real xlstm-server, and
// checked against xlstm-run: text prompts, streamed text deltas, stop strings, Tokenize and
// Detokenize.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/server_process.h"
#include "xlstm/v1/inference.grpc.pb.h"

namespace {

using xlstm::testing::kDemoConfig;
using xlstm::testing::kRun;
using xlstm::testing::kTokenizerJson;
using xlstm::testing::RunCommand;
using xlstm::testing::ServerProcess;
using xlstm::testing::ShellQuote;
using xlstm::testing::TempDir;

constexpr char kPrompt[] = "The recurrent state of an xLSTM";
constexpr int kMaxNewTokens = 32;

struct Streamed {
  grpc::Status status;
  std::vector<int32_t> ids;
  std::vector<std::string> deltas;  // the text of every message, in order
  std::string text;                 // their concatenation
  xlstm::v1::FinishReason sample_finish = xlstm::v1::FINISH_REASON_UNSPECIFIED;
  xlstm::v1::FinishReason final_finish = xlstm::v1::FINISH_REASON_UNSPECIFIED;
  int32_t prompt_tokens = -1;
  int32_t generated_tokens = -1;
};

Streamed Stream(xlstm::v1::Inference::Stub& stub, const xlstm::v1::GenerateRequest& req) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  Streamed out;
  auto reader = stub.Generate(&ctx, req);
  xlstm::v1::GenerateResponse msg;
  while (reader->Read(&msg)) {
    for (const auto& t : msg.tokens()) out.ids.push_back(t.id());
    out.deltas.push_back(msg.text());
    out.text += msg.text();
    if (msg.finish_reason() != xlstm::v1::FINISH_REASON_UNSPECIFIED && !msg.final()) {
      out.sample_finish = msg.finish_reason();
    }
    if (msg.final()) {
      out.final_finish = msg.finish_reason();
      out.prompt_tokens = msg.usage().prompt_tokens();
      out.generated_tokens = msg.usage().generated_tokens();
    }
  }
  out.status = reader->Finish();
  return out;
}

xlstm::v1::GenerateRequest GreedyTextRequest(const std::string& prompt) {
  xlstm::v1::GenerateRequest req;
  req.set_text(prompt);
  req.set_add_special_tokens(true);
  req.mutable_sampling()->set_temperature(0);
  req.mutable_stopping()->set_max_new_tokens(kMaxNewTokens);
  req.mutable_stopping()->set_ignore_eos(true);
  return req;
}

class TextE2ETest : public ::testing::Test {
 protected:
  // One model and one server per test process (ctest runs every test in its own process).
  static void SetUpTestSuite() {
    dir_ = new TempDir("xlstm_text_e2e");
    model_ = dir_->path() + "/model";
    int code = -1;
    RunCommand(kRun + " init-random --config " + kDemoConfig +
                   " --seed 0 --dtype bfloat16 --tokenizer " + kTokenizerJson + " --out " + model_ +
                   " 2>&1",
               &code);
    ASSERT_EQ(code, 0) << "init-random failed";
    server_ = new ServerProcess({"--num-slots", "4"}, model_);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(server_->port(), 0);
  }

  static xlstm::v1::Inference::Stub& stub() { return server_->stub(); }

  // xlstm-run generate --prompt ... --greedy --ignore-eos --json: {"ids": [...], "text": "..."}.
  static nlohmann::json RunGreedy(const std::string& prompt) {
    return nlohmann::json::parse(RunCommand(
        kRun + " generate --model " + model_ + " --prompt " + ShellQuote(prompt) +
        " --max-new-tokens " + std::to_string(kMaxNewTokens) + " --greedy --ignore-eos --json"));
  }

  static std::vector<int32_t> Tokenize(const std::string& text, bool add_special_tokens) {
    xlstm::v1::TokenizeRequest req;
    req.set_text(text);
    req.set_add_special_tokens(add_special_tokens);
    xlstm::v1::TokenizeResponse resp;
    grpc::ClientContext ctx;
    const grpc::Status s = stub().Tokenize(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {resp.ids().begin(), resp.ids().end()};
  }

  static grpc::Status Detokenize(const std::vector<int32_t>& ids, std::string* text) {
    xlstm::v1::DetokenizeRequest req;
    req.mutable_ids()->Add(ids.begin(), ids.end());
    xlstm::v1::DetokenizeResponse resp;
    grpc::ClientContext ctx;
    const grpc::Status s = stub().Detokenize(&ctx, req, &resp);
    *text = resp.text();
    return s;
  }

  static TempDir* dir_;
  static std::string model_;
  static ServerProcess* server_;
};

TempDir* TextE2ETest::dir_ = nullptr;
std::string TextE2ETest::model_;
ServerProcess* TextE2ETest::server_ = nullptr;

TEST_F(TextE2ETest, GreedyTextPromptEqualsXlstmRunAndDeltasConcatenateToTheText) {
  for (const std::string& prompt : {std::string(kPrompt), std::string("Grüße, 東京 🚀 — naïve")}) {
    SCOPED_TRACE(prompt);
    const Streamed g = Stream(stub(), GreedyTextRequest(prompt));
    ASSERT_TRUE(g.status.ok()) << g.status.error_message();
    EXPECT_EQ(g.final_finish, xlstm::v1::FINISH_REASON_LENGTH);
    EXPECT_EQ(g.sample_finish, xlstm::v1::FINISH_REASON_LENGTH);
    ASSERT_EQ(g.ids.size(), static_cast<size_t>(kMaxNewTokens));
    EXPECT_EQ(g.generated_tokens, kMaxNewTokens);
    // The server tokenized the prompt as Tokenize(add_special_tokens) does: BOS (id 0) first.
    const std::vector<int32_t> prompt_ids = Tokenize(prompt, true);
    ASSERT_FALSE(prompt_ids.empty());
    EXPECT_EQ(prompt_ids[0], 0);
    EXPECT_EQ(g.prompt_tokens, static_cast<int32_t>(prompt_ids.size()));

    const nlohmann::json expected = RunGreedy(prompt);
    EXPECT_EQ(g.ids, expected["ids"].get<std::vector<int32_t>>());
    // The streamed deltas add up to the detokenized output, as the server and xlstm-run see it.
    std::string detokenized;
    ASSERT_TRUE(Detokenize(g.ids, &detokenized).ok());
    EXPECT_FALSE(g.text.empty());
    EXPECT_EQ(g.text, detokenized);
    EXPECT_EQ(g.text, expected["text"].get<std::string>());
  }
}

// A stop string that straddles a token boundary in the middle of the greedy output: the text
// before the boundary must be held back (it is a prefix of the stop string), and once the next
// token completes the stop string the stream ends right before it.
TEST_F(TextE2ETest, StopStringEndsTheStreamRightBeforeItAndNeverLeaks) {
  const Streamed full = Stream(stub(), GreedyTextRequest(kPrompt));
  ASSERT_TRUE(full.status.ok()) << full.status.error_message();
  ASSERT_EQ(full.ids.size(), static_cast<size_t>(kMaxNewTokens));

  // Token boundaries as byte offsets into the text: the decoded length of each id prefix.
  std::string stop;
  size_t boundary = 0;
  auto printable = [](const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
  };
  for (int d = 0; d < kMaxNewTokens / 2 && stop.empty(); ++d) {
    for (int k : {kMaxNewTokens / 2 + d, kMaxNewTokens / 2 - d}) {
      if (k < 2 || k >= kMaxNewTokens - 1) continue;
      std::string prefix;
      ASSERT_TRUE(Detokenize({full.ids.begin(), full.ids.begin() + k}, &prefix).ok());
      const size_t b = prefix.size();
      if (full.text.compare(0, b, prefix) != 0 || b < 2 || b + 2 > full.text.size()) continue;
      const std::string candidate = full.text.substr(b - 2, 4);
      if (!printable(candidate)) continue;
      stop = candidate;
      boundary = b;
      break;
    }
  }
  ASSERT_FALSE(stop.empty()) << "no printable 4-byte window across a token boundary in: "
                             << full.text;
  const size_t pos = full.text.find(stop);
  ASSERT_NE(pos, std::string::npos);
  ASSERT_LE(pos, boundary - 2);
  const std::string expected = full.text.substr(0, pos);
  std::printf("stop string '%s' at byte %zu of '%s'\n", stop.c_str(), pos, full.text.c_str());
  SCOPED_TRACE("stop string '" + stop + "' in '" + full.text + "'");

  xlstm::v1::GenerateRequest req = GreedyTextRequest(kPrompt);
  req.mutable_stopping()->add_stop(stop);
  const Streamed s = Stream(stub(), req);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  EXPECT_EQ(s.final_finish, xlstm::v1::FINISH_REASON_STOP_SEQUENCE);
  EXPECT_EQ(s.sample_finish, xlstm::v1::FINISH_REASON_STOP_SEQUENCE);
  // Exactly the text before the stop string's first occurrence: no part of it (the held-back
  // prefix before the boundary included), nothing after it.
  EXPECT_EQ(s.text, expected);
  for (const std::string& delta : s.deltas) {
    EXPECT_EQ(delta.find(stop), std::string::npos) << delta;
  }
  // The tokens are the greedy ones up to the one that completed the stop string.
  ASSERT_LT(s.ids.size(), full.ids.size());
  EXPECT_TRUE(std::equal(s.ids.begin(), s.ids.end(), full.ids.begin()));
  std::string through_last;
  ASSERT_TRUE(Detokenize(s.ids, &through_last).ok());
  EXPECT_NE(through_last.find(stop), std::string::npos);
  std::string before_last;
  ASSERT_TRUE(Detokenize({s.ids.begin(), s.ids.end() - 1}, &before_last).ok());
  EXPECT_EQ(before_last.find(stop), std::string::npos);

  // include_stop_str_in_output: the same stream, with the stop string at its end.
  req.mutable_stopping()->set_include_stop_str_in_output(true);
  const Streamed with_stop = Stream(stub(), req);
  ASSERT_TRUE(with_stop.status.ok());
  EXPECT_EQ(with_stop.text, expected + stop);
  EXPECT_EQ(with_stop.ids, s.ids);
}

TEST_F(TextE2ETest, TokenizeDetokenizeRoundTripNonAsciiText) {
  const std::string text = "Grüße aus Köln — 東京タワー, naïve café 🚀 Ελληνικά\n\ttab";
  const std::vector<int32_t> ids = Tokenize(text, false);
  ASSERT_FALSE(ids.empty());
  // The same ids as the offline tokenizer.
  const nlohmann::json expected =
      nlohmann::json::parse(RunCommand(kRun + " tokenize --tokenizer " + kTokenizerJson +
                                       " --text " + ShellQuote(text) + " --json"));
  EXPECT_EQ(ids, expected["ids"].get<std::vector<int32_t>>());
  std::string back;
  ASSERT_TRUE(Detokenize(ids, &back).ok());
  EXPECT_EQ(back, text);
  // With special tokens: BOS in front of the same ids.
  const std::vector<int32_t> with_bos = Tokenize(text, true);
  ASSERT_EQ(with_bos.size(), ids.size() + 1);
  EXPECT_EQ(with_bos[0], 0);
  EXPECT_TRUE(std::equal(ids.begin(), ids.end(), with_bos.begin() + 1));

  // Bad input gets an error, not a crash.
  {
    xlstm::v1::TokenizeRequest req;
    req.set_text(std::string("caf\xc3", 4));
    xlstm::v1::TokenizeResponse resp;
    grpc::ClientContext ctx;
    const grpc::Status s = stub().Tokenize(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("byte offset 3"), std::string::npos) << s.error_message();
  }
  std::string ignored;
  const grpc::Status bad_id = Detokenize({1, 1 << 30}, &ignored);
  EXPECT_EQ(bad_id.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad_id.error_message();
  const grpc::Status negative_id = Detokenize({-5}, &ignored);
  EXPECT_EQ(negative_id.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << negative_id.error_message();
}

}  // namespace
