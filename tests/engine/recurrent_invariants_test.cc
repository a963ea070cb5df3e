// Invariants of the recurrent CPU reference: prefill-then-step equals all-at-once, batching does
// not change any sequence's result (bit for bit), and reset / copied states behave like the
// states they stand for.
#include <cstring>
#include <random>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_model.h"
#include "gtest/gtest.h"
#include "tests/engine/hf_fixture.h"

namespace xlstm::engine {
namespace {

class RecurrentInvariantsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto model = CpuModel::Load(std::string(XLSTM_TEST_DATA_DIR) + "/hf/default");
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
    vocab_ = model_->config().vocab_size;
  }

  std::vector<int32_t> RandomIds(size_t n, uint32_t seed) const {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(vocab_) - 1);
    std::vector<int32_t> ids(n);
    for (int32_t& id : ids) id = dist(rng);
    return ids;
  }

  std::unique_ptr<CpuModel> model_;
  int64_t vocab_ = 0;
};

TEST_F(RecurrentInvariantsTest, PrefillThenStepsEqualsAllAtOnce) {
  const std::vector<int32_t> ids = RandomIds(150, 1);
  RecurrentState whole = model_->NewState();
  auto all = model_->Prefill(whole, ids, LogitsMode::kAll);
  ASSERT_TRUE(all.ok());

  for (size_t split : {1u, 40u, 64u, 149u}) {
    RecurrentState state = model_->NewState();
    auto first = model_->Prefill(state, absl::MakeConstSpan(ids).first(split), LogitsMode::kAll);
    ASSERT_TRUE(first.ok());
    for (size_t t = 0; t < split; ++t) {
      ASSERT_LE(testing::RelativeError(&(*first)[t * vocab_], &(*all)[t * vocab_], vocab_), 1e-5);
    }
    for (size_t t = split; t < ids.size(); ++t) {
      RecurrentState* states[] = {&state};
      auto step = model_->DecodeStep(states, absl::MakeConstSpan(&ids[t], 1));
      ASSERT_TRUE(step.ok());
      ASSERT_LE(testing::RelativeError(step->data(), &(*all)[t * vocab_], vocab_), 1e-5)
          << "split " << split << " position " << t;
    }
    // The final states agree too.
    ASSERT_EQ(state.data().size(), whole.data().size());
    for (size_t i = 0; i < state.data().size(); ++i) {
      ASSERT_NEAR(state.data()[i], whole.data()[i], 1e-4 * (1 + std::fabs(whole.data()[i])));
    }
  }
}

TEST_F(RecurrentInvariantsTest, BatchOfDifferentLengthsEqualsOneAtATimeBitForBit) {
  // Sequences at different positions (different prompt lengths), then a mixed step where some
  // decode one token and others prefill a chunk.
  const std::vector<size_t> prompt_lengths = {1, 5, 37, 64, 100, 13};
  std::vector<std::vector<int32_t>> prompts, chunks;
  for (size_t i = 0; i < prompt_lengths.size(); ++i) {
    prompts.push_back(RandomIds(prompt_lengths[i], 10 + i));
    chunks.push_back(RandomIds(i % 2 == 0 ? 1 : 7 + i, 100 + i));
  }

  // One at a time.
  std::vector<std::vector<float>> alone;
  std::vector<RecurrentState> alone_states;
  for (size_t i = 0; i < prompts.size(); ++i) {
    RecurrentState state = model_->NewState();
    ASSERT_TRUE(model_->Prefill(state, prompts[i], LogitsMode::kNone).ok());
    auto logits = model_->Prefill(state, chunks[i], LogitsMode::kAll);
    ASSERT_TRUE(logits.ok());
    alone.push_back(*logits);
    alone_states.push_back(state);
  }

  // All prompts in one batch, then all chunks in one batch.
  std::vector<RecurrentState> states(prompts.size(), model_->NewState());
  std::vector<SequenceChunk> batch;
  for (size_t i = 0; i < prompts.size(); ++i)
    batch.push_back({&states[i], prompts[i], LogitsMode::kNone});
  ASSERT_TRUE(model_->Forward(batch).ok());
  batch.clear();
  for (size_t i = 0; i < prompts.size(); ++i)
    batch.push_back({&states[i], chunks[i], LogitsMode::kAll});
  auto batched = model_->Forward(batch);
  ASSERT_TRUE(batched.ok());

  size_t offset = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_EQ(std::memcmp(&(*batched)[offset], alone[i].data(), alone[i].size() * sizeof(float)), 0)
        << "sequence " << i << " logits differ when batched";
    offset += alone[i].size();
    EXPECT_EQ(states[i].data(), alone_states[i].data()) << "sequence " << i << " state differs";
  }
  EXPECT_EQ(offset, batched->size());
}

TEST_F(RecurrentInvariantsTest, ResetStateBehavesLikeAFreshOne) {
  const std::vector<int32_t> ids = RandomIds(20, 3);
  RecurrentState fresh = model_->NewState();
  auto expected = model_->Prefill(fresh, ids, LogitsMode::kAll);
  ASSERT_TRUE(expected.ok());

  RecurrentState reused = model_->NewState();
  ASSERT_TRUE(model_->Prefill(reused, RandomIds(50, 4), LogitsMode::kNone).ok());
  reused.Reset();
  for (float v : reused.data()) ASSERT_EQ(v, 0.0f);
  auto again = model_->Prefill(reused, ids, LogitsMode::kAll);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *expected);
}

TEST_F(RecurrentInvariantsTest, CopiedStateContinuesLikeTheOriginal) {
  RecurrentState original = model_->NewState();
  ASSERT_TRUE(model_->Prefill(original, RandomIds(30, 5), LogitsMode::kNone).ok());
  RecurrentState copy = model_->NewState();
  copy.CopyFrom(original);
  const std::vector<int32_t> next = RandomIds(4, 6);
  auto a = model_->Prefill(original, next, LogitsMode::kAll);
  auto b = model_->Prefill(copy, next, LogitsMode::kAll);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST_F(RecurrentInvariantsTest, InvalidTokensAreRejectedWithoutTouchingState) {
  RecurrentState state = model_->NewState();
  ASSERT_TRUE(model_->Prefill(state, RandomIds(3, 7), LogitsMode::kNone).ok());
  const std::vector<float> before = state.data();
  const std::vector<int32_t> bad = {1, static_cast<int32_t>(vocab_)};
  auto result = model_->Prefill(state, bad, LogitsMode::kLast);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("outside the vocabulary"), std::string::npos);
  const std::vector<int32_t> negative = {-1};
  EXPECT_FALSE(model_->Prefill(state, negative, LogitsMode::kLast).ok());
  EXPECT_FALSE(model_->Prefill(state, {}, LogitsMode::kLast).ok());
  EXPECT_EQ(state.data(), before);
}

TEST_F(RecurrentInvariantsTest, CpuBackendSlotsAreIsolatedAndCopyable) {
  auto model = CpuModel::Load(std::string(XLSTM_TEST_DATA_DIR) + "/hf/default");
  ASSERT_TRUE(model.ok());
  auto backend = CpuBackend::Create(std::move(*model), 3);
  ASSERT_TRUE(backend.ok());
  const std::vector<int32_t> prompt = RandomIds(10, 8);
  std::vector<float> logits;
  ForwardRow rows[] = {{0, prompt, LogitsMode::kLast}};
  ASSERT_TRUE(ForwardLogits(**backend, rows, logits).ok());
  ASSERT_TRUE((*backend)->CopySlot(0, 2).ok());
  EXPECT_EQ((*backend)->slot_state(2).data(), (*backend)->slot_state(0).data());
  for (float v : (*backend)->slot_state(1).data()) ASSERT_EQ(v, 0.0f);
  ASSERT_TRUE((*backend)->ResetSlot(0).ok());
  for (float v : (*backend)->slot_state(0).data()) ASSERT_EQ(v, 0.0f);
  EXPECT_FALSE((*backend)->ResetSlot(3).ok());
  EXPECT_FALSE((*backend)->CopySlot(-1, 0).ok());
  ForwardRow twice[] = {{1, prompt, LogitsMode::kLast}, {1, prompt, LogitsMode::kLast}};
  EXPECT_FALSE(ForwardLogits(**backend, twice, logits).ok());
}

}  // namespace
}  // namespace xlstm::engine
