// Parity of the CPU reference backend with Hugging Face Transformers 5.17 (fp32, TF32 off) on
// the fixtures of tools/make_reference.py: logits for every position, prefill then decode
// steps, greedy generate(), and score log-probs.
#include <cmath>

#include "engine/cpu/cpu_model.h"
#include "engine/sampling/logprobs.h"
#include "gtest/gtest.h"
#include "tests/engine/hf_fixture.h"

namespace xlstm::engine {
namespace {

using testing::HfCases;
using testing::LoadHfFixture;
using testing::RelativeError;

// The bound: max |ours - HF| / max |HF| per position.
constexpr double kLogitTolerance = 1e-4;

class HfParityTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fixture_ = LoadHfFixture(GetParam());
    auto model = CpuModel::Load(fixture_.dir);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
  }

  // Feeds `ids` in one prefill and checks every position against the reference `name`.
  void CheckPrefillLogits(const std::string& ids_key, const std::string& name) {
    const std::vector<int32_t> ids = fixture_.Ids(ids_key);
    int64_t rows = 0, vocab = 0;
    const std::vector<float> reference = fixture_.Logits(name, &rows, &vocab);
    ASSERT_EQ(rows, static_cast<int64_t>(ids.size()));
    ASSERT_EQ(vocab, model_->config().vocab_size);
    RecurrentState state = model_->NewState();
    auto logits = model_->Prefill(state, ids, LogitsMode::kAll);
    ASSERT_TRUE(logits.ok()) << logits.status();
    double worst = 0;
    for (int64_t t = 0; t < rows; ++t) {
      const double err = RelativeError(&(*logits)[t * vocab], &reference[t * vocab], vocab);
      worst = std::max(worst, err);
      ASSERT_LE(err, kLogitTolerance) << GetParam() << " " << name << " position " << t;
    }
    RecordProperty(name + "_max_rel_err", std::to_string(worst));
  }

  testing::HfFixture fixture_;
  std::unique_ptr<CpuModel> model_;
};

TEST_P(HfParityTest, LongPromptLogitsMatchEveryPosition) {
  // 300 tokens: HF ran its chunkwise kernel over 4 chunks of 64 (or 9 of 32) plus a step tail.
  CheckPrefillLogits("ids_long", "logits_long");
}

TEST_P(HfParityTest, ShortPromptLogitsMatchEveryPosition) {
  // 37 tokens: HF's pure recurrent path.
  CheckPrefillLogits("ids_short", "logits_short");
}

TEST_P(HfParityTest, PrefillThenDecodeStepsMatch) {
  const std::vector<int32_t> ids = fixture_.Ids("ids_steps");
  const size_t prefill_len = fixture_.meta.at("steps_prefill_len").get<size_t>();
  int64_t rows = 0, vocab = 0;
  const std::vector<float> reference = fixture_.Logits("logits_steps", &rows, &vocab);
  ASSERT_EQ(prefill_len + rows, ids.size());
  RecurrentState state = model_->NewState();
  ASSERT_TRUE(
      model_->Prefill(state, absl::MakeConstSpan(ids).first(prefill_len), LogitsMode::kNone).ok());
  for (int64_t t = 0; t < rows; ++t) {
    RecurrentState* states[] = {&state};
    auto logits = model_->DecodeStep(states, absl::MakeConstSpan(&ids[prefill_len + t], 1));
    ASSERT_TRUE(logits.ok()) << logits.status();
    EXPECT_LE(RelativeError(logits->data(), &reference[t * vocab], vocab), kLogitTolerance)
        << "step " << t;
  }
}

TEST_P(HfParityTest, GreedyContinuationIsIdentical) {
  const auto& gen = fixture_.meta.at("generate");
  const std::vector<int32_t> prompt = gen.at("prompt").get<std::vector<int32_t>>();
  const std::vector<int32_t> expected = gen.at("ids").get<std::vector<int32_t>>();
  const size_t max_new = gen.at("max_new_tokens").get<size_t>();
  const std::vector<int64_t>& eos = model_->config().eos_token_ids;
  RecurrentState state = model_->NewState();
  auto logits = model_->Prefill(state, prompt, LogitsMode::kLast);
  ASSERT_TRUE(logits.ok());
  std::vector<int32_t> generated;
  while (generated.size() < max_new) {
    const int32_t token = Argmax(*logits);
    generated.push_back(token);
    if (std::find(eos.begin(), eos.end(), token) != eos.end()) break;
    RecurrentState* states[] = {&state};
    logits = model_->DecodeStep(states, absl::MakeConstSpan(&token, 1));
    ASSERT_TRUE(logits.ok());
  }
  EXPECT_EQ(generated, expected);
}

TEST_P(HfParityTest, ScoreLogProbsMatchHfLogSoftmax) {
  const int64_t vocab = model_->config().vocab_size;
  for (const auto& item : fixture_.meta.at("score")) {
    const std::vector<int32_t> context = item.at("context").get<std::vector<int32_t>>();
    const std::vector<int32_t> continuation = item.at("continuation").get<std::vector<int32_t>>();
    std::vector<int32_t> all = context;
    all.insert(all.end(), continuation.begin(), continuation.end());
    RecurrentState state = model_->NewState();
    auto logits = model_->Prefill(state, all, LogitsMode::kAll);
    ASSERT_TRUE(logits.ok());
    bool is_greedy = true;
    double sum = 0;
    for (size_t i = 0; i < continuation.size(); ++i) {
      absl::Span<const float> row(&(*logits)[(context.size() - 1 + i) * vocab], vocab);
      const double logprob = TokenLogProb(row, continuation[i]);
      sum += logprob;
      is_greedy = is_greedy && Argmax(row) == continuation[i];
      if (item.contains("logprobs")) {
        // A log-prob moves by at most 2 max|Δlogit|; logits agree to 1e-4 of max|logit|
        // (<= 30, the soft cap), so 1e-3 is a bound the logits test already implies.
        EXPECT_NEAR(logprob, item.at("logprobs")[i].get<double>(), 1e-3) << "token " << i;
      }
    }
    if (item.contains("sum")) {
      EXPECT_NEAR(sum, item.at("sum").get<double>(), 1e-3 * continuation.size());
    }
    EXPECT_EQ(is_greedy, item.at("is_greedy").get<bool>());
  }
}

INSTANTIATE_TEST_SUITE_P(AllFixtures, HfParityTest, ::testing::ValuesIn(HfCases()));

}  // namespace
}  // namespace xlstm::engine
