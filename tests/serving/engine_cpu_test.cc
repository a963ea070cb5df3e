// The engine on the CPU reference backend (tests/data/hf/default): a request's tokens are the
// same alone and among 64 concurrent mixed requests, and Score equals the direct computation.
#include <memory>
#include <thread>

#include "engine/cpu/cpu_backend.h"
#include "engine/sampling/logprobs.h"
#include "engine/serving/engine.h"
#include "gtest/gtest.h"
#include "tests/serving/collector.h"

namespace xlstm::engine {
namespace {

using testing::GenerateCollector;
using testing::ScoreCollector;

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

struct Spec {
  std::vector<int32_t> prompt;
  int32_t max_new;
  double temperature;
  uint64_t seed;
};

Spec MakeSpec(int i) {
  Spec s;
  const int len = 1 + (i * 37) % 48;
  for (int k = 0; k < len; ++k) s.prompt.push_back((i * 31 + k * 17 + 5) % 256);
  s.max_new = 1 + (i * 13) % 24;
  s.temperature = i % 3 == 0 ? 0.0 : 0.8;
  s.seed = 100 + i;
  return s;
}

GenerateRequest ToRequest(const Spec& s) {
  GenerateRequest r;
  r.prompt = s.prompt;
  r.sampling.temperature = s.temperature;
  r.sampling.top_k = s.temperature > 0 ? 40 : 0;
  r.sampling.seed = s.seed;
  r.stopping.max_new_tokens = s.max_new;
  return r;
}

TEST(EngineCpuTest, GreedyEqualsDirectDecode) {
  auto engine = MakeEngine(4, 64);
  const std::vector<int32_t> prompt = {5, 17, 9, 100, 42};
  GenerateCollector c;
  GenerateRequest r;
  r.prompt = prompt;
  r.sampling.temperature = 0;
  r.stopping.max_new_tokens = 12;
  r.stopping.ignore_eos = true;
  r.logprobs = true;
  c.Attach(r);
  ASSERT_TRUE(engine->SubmitGenerate(std::move(r)).ok());
  ASSERT_TRUE(c.Wait());

  auto model = *CpuModel::Load(kModel);
  RecurrentState state = model->NewState();
  std::vector<float> logits = *model->Prefill(state, prompt, LogitsMode::kLast);
  std::vector<int32_t> expected;
  for (int i = 0; i < 12; ++i) {
    const int32_t t = Argmax(logits);
    expected.push_back(t);
    RecurrentState* states[] = {&state};
    logits = *model->DecodeStep(states, absl::MakeConstSpan(&t, 1));
  }
  EXPECT_EQ(c.Ids(), expected);
}

TEST(EngineCpuTest, SixtyFourConcurrentMixedRequestsEqualAlone) {
  constexpr int kRequests = 64;
  std::vector<std::vector<int32_t>> alone(kRequests);
  {
    auto engine = MakeEngine(2, 16);
    for (int i = 0; i < kRequests; ++i) {
      GenerateCollector c;
      GenerateRequest r = ToRequest(MakeSpec(i));
      c.Attach(r);
      ASSERT_TRUE(engine->SubmitGenerate(std::move(r)).ok());
      ASSERT_TRUE(c.Wait());
      ASSERT_TRUE(c.Done().status.ok());
      alone[i] = c.Ids();
    }
  }
  // Fewer slots than requests, so requests also queue and join mid-flight.
  auto engine = MakeEngine(48, 128);
  std::vector<std::unique_ptr<GenerateCollector>> cs;
  for (int i = 0; i < kRequests; ++i) {
    cs.push_back(std::make_unique<GenerateCollector>());
    GenerateRequest r = ToRequest(MakeSpec(i));
    cs.back()->Attach(r);
    ASSERT_TRUE(engine->SubmitGenerate(std::move(r)).ok());
  }
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(cs[i]->Wait());
    EXPECT_EQ(cs[i]->Ids(), alone[i]) << "request " << i;
  }
  for (int i = 0; i < 1000 && engine->Stats().slots_used != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(engine->Stats().slots_used, 0);
}

TEST(EngineCpuTest, ScoreEqualsDirectLogSoftmaxAndRunsBesideGeneration) {
  auto engine = MakeEngine(8, 8);
  const std::vector<int32_t> context = {5, 17, 9, 33, 71, 2, 90};
  const std::vector<std::vector<int32_t>> conts = {{17, 9, 4}, {200}, {1, 2, 3, 4, 5, 6}};
  GenerateCollector g;
  GenerateRequest gr = ToRequest(MakeSpec(3));
  g.Attach(gr);
  ASSERT_TRUE(engine->SubmitGenerate(std::move(gr)).ok());
  ScoreCollector c;
  ScoreRequest r;
  r.context = context;
  r.continuations = conts;
  c.Attach(r);
  ASSERT_TRUE(engine->SubmitScore(std::move(r)).ok());
  ASSERT_TRUE(c.Wait());
  ASSERT_TRUE(g.Wait());
  ScoreDone d = c.Done();
  ASSERT_TRUE(d.status.ok()) << d.status;

  auto model = *CpuModel::Load(kModel);
  for (size_t j = 0; j < conts.size(); ++j) {
    RecurrentState state = model->NewState();
    std::vector<int32_t> all = context;
    all.insert(all.end(), conts[j].begin(), conts[j].end() - 1);
    std::vector<float> logits = *model->Prefill(state, all, LogitsMode::kAll);
    const int64_t vocab = model->config().vocab_size;
    double sum = 0;
    bool greedy = true;
    for (size_t i = 0; i < conts[j].size(); ++i) {
      absl::Span<const float> row =
          absl::MakeConstSpan(logits).subspan((context.size() - 1 + i) * vocab, vocab);
      const double lp = TokenLogProb(row, conts[j][i]);
      EXPECT_NEAR(d.continuations[j].logprobs[i], lp, 1e-4) << j << "," << i;
      sum += lp;
      greedy = greedy && Argmax(row) == conts[j][i];
    }
    EXPECT_NEAR(d.continuations[j].sum, sum, 1e-3);
    EXPECT_EQ(d.continuations[j].is_greedy, greedy);
  }
}

}  // namespace
}  // namespace xlstm::engine
