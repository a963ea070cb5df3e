#include "engine/model_config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace xlstm::engine {
namespace {

TEST(ModelConfigTest, MissingFieldsTakeHuggingFaceDefaults) {
  auto c = ModelConfig::FromJson(R"({"model_type": "xlstm"})", "config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  // xLSTMConfig() in transformers 5.17 is the 7B shape.
  EXPECT_EQ(c->vocab_size, 50304);
  EXPECT_EQ(c->hidden_size, 4096);
  EXPECT_EQ(c->num_blocks, 32);
  EXPECT_EQ(c->num_heads, 8);
  EXPECT_EQ(c->qk_dim(), 2048);
  EXPECT_EQ(c->v_dim(), 4096);
  EXPECT_EQ(c->qk_head_dim(), 256);
  EXPECT_EQ(c->v_head_dim(), 512);
  // docs §2: round_up(4096 * 2.667, 64) = 10944; the state is 33,620,224 floats (128.3 MiB).
  EXPECT_EQ(c->ffn_dim(), 10944);
  EXPECT_EQ(c->state_floats_per_sequence(), 33620224);
  EXPECT_EQ(c->gate_soft_cap, 15.0);
  EXPECT_EQ(c->output_logit_soft_cap, 30.0);
  EXPECT_EQ(c->eos_token_ids, std::vector<int64_t>{2});
}

TEST(ModelConfigTest, HubStyleConfigWithEmbeddingDimAndNumBlocks) {
  // The NX-AI/xLSTM-7b config names the width and depth only by their XL names.
  auto c = ModelConfig::FromJson(
      R"({"model_type":"xlstm","embedding_dim":4096,"num_blocks":32,"chunkwise_kernel":"chunkwise--triton_xl_chunk","step_kernel":"triton","head_dim":512})",
      "config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->hidden_size, 4096);
  EXPECT_EQ(c->num_blocks, 32);
}

TEST(ModelConfigTest, NullFallbacksFollowPostInit) {
  auto c = ModelConfig::FromJson(
      R"({"model_type":"xlstm","hidden_size":null,"embedding_dim":256,"num_hidden_layers":null,"num_blocks":3,"num_heads":4})",
      "config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->hidden_size, 256);
  EXPECT_EQ(c->num_hidden_layers, 3);
  EXPECT_EQ(c->ffn_dim(), 704);  // round_up(682.752, 64), docs §2
}

TEST(ModelConfigTest, EosListNullCapsAndFusedMode) {
  auto c = ModelConfig::FromJson(
      R"({"model_type":"xlstm","hidden_size":128,"num_heads":2,"eos_token_id":[0,2],"gate_soft_cap":null,"output_logit_soft_cap":null,"weight_mode":"fused"})",
      "config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{0, 2}));
  EXPECT_FALSE(c->gate_soft_cap.has_value());
  EXPECT_FALSE(c->output_logit_soft_cap.has_value());
  EXPECT_EQ(c->weight_mode, WeightMode::kFused);
}

TEST(ModelConfigTest, ToJsonRoundTrips) {
  auto c = ModelConfig::FromJson(
      R"({"model_type":"xlstm","hidden_size":192,"num_heads":3,"use_bias":true,"qk_dim_factor":1.0,"v_dim_factor":0.5,"eps":1e-4,"eos_token_id":[5,6]})",
      "config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  auto again = ModelConfig::FromJson(c->ToJson(), "round-trip");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->ToJson(), c->ToJson());
  EXPECT_EQ(again->v_dim(), 96);
}

TEST(ModelConfigTest, PythonRoundUpMatchesFloorDivisionSemantics) {
  EXPECT_EQ(PyRoundUpToMultiple(64.0, 64), 64);
  // (x + m - 1) // m only rounds up for integral x: HF's FFN width for D * 2.667 relies on it.
  EXPECT_EQ(PyRoundUpToMultiple(64.0001, 64), 64);
  EXPECT_EQ(PyRoundUpToMultiple(341.376, 64), 384);
  EXPECT_EQ(PyRoundUpToMultiple(0.5, 64), 0);
  EXPECT_EQ(PyRoundUpToMultiple(128 * 2.667, 64), 384);
  EXPECT_EQ(PyRoundUpToMultiple(100.0, 7), 105);
}

TEST(ModelConfigTest, RejectsNonObjectsAndBadEos) {
  EXPECT_THAT(std::string(ModelConfig::FromJson("[1]", "c.json").status().message()),
              ::testing::HasSubstr("expected a JSON object"));
  EXPECT_THAT(
      std::string(ModelConfig::FromJson(R"({"model_type":"xlstm","eos_token_id":"x"})", "c.json")
                      .status()
                      .message()),
      ::testing::HasSubstr("eos_token_id"));
  EXPECT_FALSE(ModelConfig::FromJson(R"({"model_type":"xlstm","norm_eps":-1})", "c.json").ok());
  EXPECT_FALSE(ModelConfig::FromJson(R"({"model_type":"xlstm","gate_soft_cap":0})", "c.json").ok());
  EXPECT_FALSE(
      ModelConfig::FromJson(R"({"model_type":"xlstm","hidden_size":1e30})", "c.json").ok());
}

}  // namespace
}  // namespace xlstm::engine
