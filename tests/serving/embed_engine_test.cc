// Embed through the engine on the CPU reference backend (tests/data/hf/default), and the pieces
// it is made of: the pooling arithmetic, the validation messages, and the loop's handling
// (chunked prefill, batching with other inputs, no slot kept).
#include <cmath>
#include <memory>
#include <vector>

#include "absl/time/clock.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/serving/embedding_pooling.h"
#include "engine/serving/engine.h"
#include "gtest/gtest.h"
#include "tests/serving/collector.h"

namespace xlstm::engine {
namespace {

using testing::EmbedCollector;

const char kModel[] = XLSTM_TEST_DATA_DIR "/hf/default";

std::unique_ptr<Engine> MakeEngine(int32_t slots, int32_t budget) {
  auto model = CpuModel::Load(kModel);
  EXPECT_TRUE(model.ok()) << model.status();
  auto backend = CpuBackend::Create(std::move(*model), slots);
  EXPECT_TRUE(backend.ok()) << backend.status();
  EngineOptions o;
  o.step_token_budget = budget;
  o.max_queue = 1024;
  return *Engine::Create(std::move(*backend), o);
}

std::vector<int32_t> Input(int i, int len) {
  std::vector<int32_t> ids;
  for (int k = 0; k < len; ++k) ids.push_back((i * 31 + k * 17 + 5) % 256);
  return ids;
}

EmbedDone EmbedAlone(Engine& engine, std::vector<int32_t> input, Pooling pooling,
                     bool normalize = false) {
  EmbedCollector c;
  EmbedRequest r;
  r.input = std::move(input);
  r.pooling = pooling;
  r.normalize = normalize;
  c.Attach(r);
  EXPECT_TRUE(engine.SubmitEmbed(std::move(r)).ok());
  EXPECT_TRUE(c.Wait());
  return c.Done();
}

// The slots in use once the loop has published the end of the last request (Stats() lags the
// on_done callbacks by the rest of an iteration).
int32_t SlotsUsedWhenSettled(const Engine& engine) {
  for (int i = 0; i < 500 && engine.Stats().slots_used != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  return engine.Stats().slots_used;
}

double Norm(const float* v, int64_t n) {
  double sq = 0;
  for (int64_t i = 0; i < n; ++i) sq += static_cast<double>(v[i]) * v[i];
  return std::sqrt(sq);
}

TEST(EmbeddingPoolingTest, LastKeepsTheLastRowOfTheLastChunk) {
  EmbeddingPooler p(Pooling::kLast, 2);
  p.Add(std::vector<float>{1, 2});
  p.Add(std::vector<float>{3, 4});
  int32_t positions = 0;
  EXPECT_EQ(p.Finish(false, positions), (std::vector<float>{3, 4}));
  EXPECT_EQ(positions, 1);
}

TEST(EmbeddingPoolingTest, MeanAveragesEveryRowAcrossChunks) {
  EmbeddingPooler p(Pooling::kMean, 2);
  p.Add(std::vector<float>{1, 10, 2, 20});
  p.Add(std::vector<float>{6, 30});
  int32_t positions = 0;
  EXPECT_EQ(p.Finish(false, positions), (std::vector<float>{3, 20}));
  EXPECT_EQ(positions, 1);
}

TEST(EmbeddingPoolingTest, AllKeepsEveryRowInOrder) {
  EmbeddingPooler p(Pooling::kAll, 2);
  p.Add(std::vector<float>{1, 2, 3, 4});
  p.Add(std::vector<float>{5, 6});
  int32_t positions = 0;
  EXPECT_EQ(p.Finish(false, positions), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(positions, 3);
}

TEST(EmbeddingPoolingTest, NormalizeGivesUnitRowsInTheSameDirection) {
  std::vector<float> rows = {3, 4, 0, 0, -2, 0};
  L2NormalizeRows(absl::MakeSpan(rows), 2);
  EXPECT_FLOAT_EQ(rows[0], 0.6f);
  EXPECT_FLOAT_EQ(rows[1], 0.8f);
  EXPECT_EQ(rows[2], 0.0f);  // a zero row stays zero rather than NaN
  EXPECT_EQ(rows[3], 0.0f);
  EXPECT_FLOAT_EQ(rows[4], -1.0f);
  EXPECT_EQ(rows[5], 0.0f);
}

TEST(EmbedValidationTest, ErrorsNameTheFieldAndTheLimit) {
  RequestLimits limits;
  limits.max_prompt_tokens = 8;
  limits.max_embed_positions = 4;
  limits.max_embed_inputs = 3;
  const ModelBounds model{100, 2};
  EmbedRequest r;
  EXPECT_EQ(ValidateEmbed(r, limits, model, "inputs[1]").message(), "inputs[1] is empty");
  r.input = {1, 100};
  EXPECT_EQ(ValidateEmbed(r, limits, model, "inputs[1]").message(),
            "inputs[1].ids[1] = 100 is outside the vocabulary [0, 100)");
  r.input.assign(9, 1);
  EXPECT_EQ(ValidateEmbed(r, limits, model, "inputs[0]").message(),
            "inputs[0] has 9 tokens; the limit (max_prompt_tokens) is 8");
  r.input.assign(5, 1);
  EXPECT_TRUE(ValidateEmbed(r, limits, model, "inputs[0]").ok());  // last: no position limit
  r.pooling = Pooling::kAll;
  EXPECT_EQ(ValidateEmbed(r, limits, model, "inputs[0]").message(),
            "inputs[0] has 5 tokens, more positions than pooling = all may return; the limit "
            "(max_embed_positions) is 4");
  r.input.assign(4, 1);
  EXPECT_TRUE(ValidateEmbed(r, limits, model, "inputs[0]").ok());
  EXPECT_EQ(ValidateEmbedInputCount(0, limits).message(), "inputs is empty");
  EXPECT_EQ(ValidateEmbedInputCount(4, limits).message(),
            "inputs has 4 inputs; the limit (max_embed_inputs) is 3");
  EXPECT_TRUE(ValidateEmbedInputCount(3, limits).ok());
}

TEST(EmbedEngineTest, PoolingsAgreeAndNoSlotIsKept) {
  // A budget of 7 prefills the 30 tokens in 5 chunks, so pooling crosses chunk boundaries.
  auto engine = MakeEngine(2, 7);
  const int64_t D = engine->config().hidden_size;
  const std::vector<int32_t> input = Input(3, 30);
  const EmbedDone all = EmbedAlone(*engine, input, Pooling::kAll);
  ASSERT_TRUE(all.status.ok()) << all.status;
  ASSERT_EQ(all.positions, 30);
  ASSERT_EQ(all.values.size(), static_cast<size_t>(30 * D));
  EXPECT_EQ(all.prompt_tokens, 30);

  const EmbedDone last = EmbedAlone(*engine, input, Pooling::kLast);
  ASSERT_TRUE(last.status.ok()) << last.status;
  ASSERT_EQ(last.positions, 1);
  EXPECT_EQ(last.values, std::vector<float>(all.values.end() - D, all.values.end()));

  const EmbedDone mean = EmbedAlone(*engine, input, Pooling::kMean);
  ASSERT_TRUE(mean.status.ok()) << mean.status;
  ASSERT_EQ(mean.values.size(), static_cast<size_t>(D));
  for (int64_t d = 0; d < D; ++d) {
    double sum = 0;
    for (int t = 0; t < 30; ++t) sum += all.values[t * D + d];
    EXPECT_NEAR(mean.values[d], sum / 30, 1e-6 * (1 + std::fabs(sum / 30))) << d;
  }

  const EmbedDone unit = EmbedAlone(*engine, input, Pooling::kLast, /*normalize=*/true);
  ASSERT_TRUE(unit.status.ok()) << unit.status;
  EXPECT_NEAR(Norm(unit.values.data(), D), 1.0, 1e-6);
  const double scale = Norm(last.values.data(), D);
  for (int64_t d = 0; d < D; ++d) EXPECT_NEAR(unit.values[d] * scale, last.values[d], 1e-5) << d;

  EXPECT_EQ(SlotsUsedWhenSettled(*engine), 0);
}

TEST(EmbedEngineTest, HiddenStatesEqualTheModelsDirectPrefill) {
  auto engine = MakeEngine(1, 512);
  const std::vector<int32_t> input = Input(5, 20);
  const EmbedDone all = EmbedAlone(*engine, input, Pooling::kAll);
  ASSERT_TRUE(all.status.ok()) << all.status;
  auto model = *CpuModel::Load(kModel);
  RecurrentState state = model->NewState();
  const SequenceChunk chunk{&state, input, LogitsMode::kNone, LogitsMode::kAll};
  std::vector<float> hidden;
  ASSERT_TRUE(model->Forward(absl::MakeConstSpan(&chunk, 1), &hidden).ok());
  EXPECT_EQ(all.values, hidden);
}

TEST(EmbedEngineTest, ABatchEqualsEachInputAloneBitForBit) {
  // Alone: one input at a time. Batched: 12 inputs of different lengths and poolings at once,
  // beside a generation, sharing steps (and chunks under a small budget).
  auto engine = MakeEngine(4, 24);
  struct Case {
    std::vector<int32_t> input;
    Pooling pooling;
    bool normalize;
  };
  std::vector<Case> cases;
  for (int i = 0; i < 12; ++i) {
    cases.push_back({Input(i, 1 + (i * 11) % 40),
                     i % 3 == 0 ? Pooling::kLast : (i % 3 == 1 ? Pooling::kMean : Pooling::kAll),
                     i % 2 == 0});
  }
  std::vector<EmbedDone> alone;
  for (const Case& c : cases) alone.push_back(EmbedAlone(*engine, c.input, c.pooling, c.normalize));

  testing::GenerateCollector gen;
  GenerateRequest g;
  g.prompt = Input(99, 17);
  g.sampling.temperature = 0;
  g.stopping.max_new_tokens = 20;
  g.stopping.ignore_eos = true;
  gen.Attach(g);
  ASSERT_TRUE(engine->SubmitGenerate(std::move(g)).ok());
  std::vector<std::unique_ptr<EmbedCollector>> collectors;
  for (const Case& c : cases) {
    collectors.push_back(std::make_unique<EmbedCollector>());
    EmbedRequest r;
    r.input = c.input;
    r.pooling = c.pooling;
    r.normalize = c.normalize;
    collectors.back()->Attach(r);
    ASSERT_TRUE(engine->SubmitEmbed(std::move(r)).ok());
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_TRUE(collectors[i]->Wait());
    const EmbedDone d = collectors[i]->Done();
    ASSERT_TRUE(d.status.ok()) << d.status;
    EXPECT_EQ(d.positions, alone[i].positions) << i;
    EXPECT_EQ(d.values, alone[i].values) << "input " << i;
  }
  ASSERT_TRUE(gen.Wait());
  EXPECT_EQ(SlotsUsedWhenSettled(*engine), 0);
}

TEST(EmbedEngineTest, SubmitRefusesAnInvalidInput) {
  auto engine = MakeEngine(1, 64);
  EmbedRequest r;
  r.input = {1, static_cast<int32_t>(engine->config().vocab_size)};
  r.on_done = [](EmbedDone) {};
  const auto id = engine->SubmitEmbed(std::move(r));
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(id.status().message().find("input.ids[1]"), std::string::npos) << id.status();
}

}  // namespace
}  // namespace xlstm::engine
