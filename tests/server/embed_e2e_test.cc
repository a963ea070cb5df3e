// Embed end to end over loopback: a real xlstm-server process (CPU backend, hf/default model)
// driven through the generated C++ stubs. Poolings agree with each other, normalisation gives
// unit rows, a batch equals its inputs one at a time (bit for bit on the CPU backend), bad
// requests get INVALID_ARGUMENT naming the wire field and the limit, the limits show in
// GetModelInfo, and the metrics count the inputs like Score items. Parity of the values with HF
// is tests/engine/embedding_parity_test.cc (same backend code).
#include <cmath>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/server/server_process.h"
#include "xlstm/v1/inference.grpc.pb.h"

namespace {

using xlstm::testing::ServerProcess;

std::vector<int32_t> Input(int i, int len) {
  std::vector<int32_t> ids;
  for (int k = 0; k < len; ++k) ids.push_back((i * 31 + k * 17 + 5) % 256);
  return ids;
}

void AddIds(xlstm::v1::EmbedRequest& r, const std::vector<int32_t>& ids) {
  r.add_inputs()->mutable_ids()->mutable_ids()->Add(ids.begin(), ids.end());
}

grpc::Status Embed(ServerProcess& server, const xlstm::v1::EmbedRequest& r,
                   xlstm::v1::EmbedResponse* out) {
  grpc::ClientContext ctx;
  return server.stub().Embed(&ctx, r, out);
}

std::vector<float> Values(const xlstm::v1::Embedding& e) {
  return std::vector<float>(e.values().begin(), e.values().end());
}

TEST(EmbedE2ETest, PoolingsNormalisationAndBatchEqualAlone) {
  // A small step budget: inputs are prefilled in chunks and share steps when batched.
  ServerProcess server({"--num-slots", "4", "--step-token-budget", "16"});
  const std::vector<int32_t> input = Input(1, 40);

  xlstm::v1::EmbedRequest all_req;
  all_req.set_request_id("all");
  all_req.set_pooling(xlstm::v1::POOLING_ALL);
  AddIds(all_req, input);
  xlstm::v1::EmbedResponse all;
  ASSERT_TRUE(Embed(server, all_req, &all).ok());
  EXPECT_EQ(all.request_id(), "all");
  const int D = all.hidden_size();
  ASSERT_GT(D, 0);
  ASSERT_EQ(all.embeddings_size(), 1);
  EXPECT_EQ(all.embeddings(0).positions(), 40);
  EXPECT_EQ(all.embeddings(0).tokens(), 40);
  ASSERT_EQ(all.embeddings(0).values_size(), 40 * D);
  EXPECT_EQ(all.usage().prompt_tokens(), 40);
  const std::vector<float> rows = Values(all.embeddings(0));

  // Unset pooling is last: the last row of `all`.
  xlstm::v1::EmbedRequest last_req;
  AddIds(last_req, input);
  xlstm::v1::EmbedResponse last;
  ASSERT_TRUE(Embed(server, last_req, &last).ok());
  ASSERT_EQ(last.embeddings(0).positions(), 1);
  EXPECT_EQ(Values(last.embeddings(0)), std::vector<float>(rows.end() - D, rows.end()));

  xlstm::v1::EmbedRequest mean_req = last_req;
  mean_req.set_pooling(xlstm::v1::POOLING_MEAN);
  xlstm::v1::EmbedResponse mean;
  ASSERT_TRUE(Embed(server, mean_req, &mean).ok());
  ASSERT_EQ(mean.embeddings(0).values_size(), D);
  for (int d = 0; d < D; ++d) {
    double sum = 0;
    for (int t = 0; t < 40; ++t) sum += rows[t * D + d];
    EXPECT_NEAR(mean.embeddings(0).values(d), sum / 40, 1e-6 * (1 + std::fabs(sum / 40)));
  }

  xlstm::v1::EmbedRequest unit_req = mean_req;
  unit_req.set_normalize(true);
  xlstm::v1::EmbedResponse unit;
  ASSERT_TRUE(Embed(server, unit_req, &unit).ok());
  double sq = 0, mean_sq = 0;
  for (int d = 0; d < D; ++d) {
    sq += static_cast<double>(unit.embeddings(0).values(d)) * unit.embeddings(0).values(d);
    mean_sq += static_cast<double>(mean.embeddings(0).values(d)) * mean.embeddings(0).values(d);
  }
  EXPECT_NEAR(std::sqrt(sq), 1.0, 1e-6);
  for (int d = 0; d < D; ++d) {
    EXPECT_NEAR(unit.embeddings(0).values(d) * std::sqrt(mean_sq), mean.embeddings(0).values(d),
                1e-5);
  }

  // A batch of 8 inputs of different lengths equals each one sent alone.
  xlstm::v1::EmbedRequest batch;
  batch.set_pooling(xlstm::v1::POOLING_ALL);
  std::vector<std::vector<float>> alone;
  int tokens = 0;
  for (int i = 0; i < 8; ++i) {
    const std::vector<int32_t> ids = Input(i + 2, 3 + 7 * i);
    tokens += static_cast<int>(ids.size());
    AddIds(batch, ids);
    xlstm::v1::EmbedRequest one;
    one.set_pooling(xlstm::v1::POOLING_ALL);
    AddIds(one, ids);
    xlstm::v1::EmbedResponse r;
    ASSERT_TRUE(Embed(server, one, &r).ok());
    alone.push_back(Values(r.embeddings(0)));
  }
  xlstm::v1::EmbedResponse batched;
  ASSERT_TRUE(Embed(server, batch, &batched).ok());
  ASSERT_EQ(batched.embeddings_size(), 8);
  EXPECT_EQ(batched.usage().prompt_tokens(), tokens);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(batched.embeddings(i).positions(), 3 + 7 * i);
    EXPECT_EQ(Values(batched.embeddings(i)), alone[i]) << "input " << i;
  }

  // Counted like Score items: one success per input, their tokens as prompt tokens.
  const int requests = 4 + 8 + 8;
  EXPECT_EQ(server.Metric("xlstm_request_success_total{finished_reason=\"length\"}"), requests);
  EXPECT_EQ(server.Metric("xlstm_prompt_tokens_total"), 4 * 40 + 2 * tokens);
}

TEST(EmbedE2ETest, BadRequestsNameTheFieldAndTheLimit) {
  ServerProcess server({"--num-slots", "2", "--max-embed-inputs", "3", "--max-embed-positions", "5",
                        "--max-prompt-tokens", "8"});
  xlstm::v1::GetModelInfoResponse info;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(server.stub().GetModelInfo(&ctx, {}, &info).ok());
  }
  EXPECT_EQ(info.limits().max_embed_inputs(), 3);
  EXPECT_EQ(info.limits().max_embed_positions(), 5);
  const int64_t vocab = info.vocab_size();

  const auto expect_invalid = [&](const xlstm::v1::EmbedRequest& r, const std::string& message) {
    xlstm::v1::EmbedResponse out;
    const grpc::Status s = Embed(server, r, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << message;
    EXPECT_EQ(s.error_message(), message);
  };
  xlstm::v1::EmbedRequest r;
  expect_invalid(r, "inputs is empty");
  r.add_inputs();
  expect_invalid(r, "inputs[0] is empty: set text or ids");
  r.clear_inputs();
  r.add_inputs()->mutable_ids();
  expect_invalid(r, "inputs[0] is empty");
  r.clear_inputs();
  AddIds(r, {1, 2});
  AddIds(r, {1, static_cast<int32_t>(vocab)});
  expect_invalid(r, "inputs[1].ids[1] = " + std::to_string(vocab) +
                        " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
  r.clear_inputs();
  for (int i = 0; i < 4; ++i) AddIds(r, {1});
  expect_invalid(r, "inputs has 4 inputs; the limit (max_embed_inputs) is 3");
  r.clear_inputs();
  AddIds(r, Input(0, 9));
  expect_invalid(r, "inputs[0] has 9 tokens; the limit (max_prompt_tokens) is 8");
  r.clear_inputs();
  AddIds(r, Input(0, 6));
  r.set_pooling(xlstm::v1::POOLING_ALL);
  expect_invalid(r,
                 "inputs[0] has 6 tokens, more positions than pooling = all may return; the "
                 "limit (max_embed_positions) is 5");
  r.set_pooling(static_cast<xlstm::v1::Pooling>(7));
  expect_invalid(r,
                 "pooling = 7 is not one of POOLING_LAST (1), POOLING_MEAN (2), POOLING_ALL (3)");
  // Six tokens are fine for last and mean: the position limit is for `all` only.
  r.set_pooling(xlstm::v1::POOLING_MEAN);
  xlstm::v1::EmbedResponse ok;
  EXPECT_TRUE(Embed(server, r, &ok).ok());
  EXPECT_EQ(server.Metric("xlstm_request_success_total{finished_reason=\"length\"}"), 1);
}

// An answer that could not be sent (rows x hidden_size floats over gRPC's message limit) is
// refused before any work, naming the limit; before, the work was done and the send failed.
TEST(EmbedE2ETest, AnAnswerOverTheMessageLimitIsRefusedFirst) {
  ServerProcess server({"--num-slots", "2", "--max-message-bytes", "65536"});
  xlstm::v1::EmbedRequest r;
  AddIds(r, Input(0, 200));  // 200 rows x 128 floats = 100 KB with pooling = all
  r.set_pooling(xlstm::v1::POOLING_ALL);
  xlstm::v1::EmbedResponse out;
  grpc::Status s = Embed(server, r, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("the limit (max_message_bytes) is 65536"), std::string::npos)
      << s.error_message();
  // No success yet (-1: the series does not exist until the first one).
  EXPECT_LE(server.Metric("xlstm_request_success_total{finished_reason=\"length\"}"), 0);
  // The same input pooled to one row fits.
  r.set_pooling(xlstm::v1::POOLING_MEAN);
  s = Embed(server, r, &out);
  EXPECT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(out.embeddings_size(), 1);
}

}  // namespace
