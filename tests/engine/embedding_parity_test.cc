// Embedding parity of the CPU reference backend with Hugging Face Transformers 5.17:
// Backend::Forward's `hidden` rows (the final-normed hidden states, what feeds lm_head) against
// xLSTMModel(...).last_hidden_state on the fixtures.
//
// Two independent checks:
// - EmbeddingReferenceTest: the hidden states themselves, against
//   tests/data/hf/<case>/embedding_reference.safetensors (tools/make_embedding_reference.py, run
//   on the GPU box). Fails, saying how to make it, while that file is missing.
// - HiddenThroughHeadTest: lm_head(hidden), soft-capped, must give the fixtures' HF logits
//   (reference.safetensors): HF's logits are lm_head(last_hidden_state), so this checks the
//   hidden states against HF without a new reference.
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_model.h"
#include "engine/serving/embedding_pooling.h"
#include "engine/weights/model_weights.h"
#include "engine/weights/safetensors.h"
#include "gtest/gtest.h"
#include "tests/engine/hf_fixture.h"

namespace xlstm::engine {
namespace {

using testing::HfCases;
using testing::LoadHfFixture;
using testing::RelativeError;

// The bound: max |ours - HF| / max |HF| per row.
constexpr double kHiddenTolerance = 1e-4;
constexpr double kLogitTolerance = 1e-4;

class EmbeddingParityBase : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fixture_ = LoadHfFixture(GetParam());
    auto model = CpuModel::Load(fixture_.dir);
    ASSERT_TRUE(model.ok()) << model.status();
    auto backend = CpuBackend::Create(std::move(*model), 1);
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = std::move(*backend);
  }

  // The backend's hidden states for `ids` fed in one row from a zeroed slot, [rows, D].
  std::vector<float> Hidden(const std::vector<int32_t>& ids, LogitsMode positions) {
    EXPECT_TRUE(backend_->ResetSlot(0).ok());
    ForwardRow row{0, ids, LogitsMode::kNone};
    row.hidden = positions;
    ForwardOutput out;
    const absl::Status s = backend_->Forward(absl::MakeConstSpan(&row, 1), out);
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_TRUE(out.logits.empty());  // a hidden row never runs lm_head
    return out.hidden;
  }

  int64_t dim() const { return backend_->config().hidden_size; }

  testing::HfFixture fixture_;
  std::unique_ptr<CpuBackend> backend_;
};

class EmbeddingReferenceTest : public EmbeddingParityBase {
 protected:
  // The reference `name` ([rows, D] float32) from embedding_reference.safetensors.
  std::vector<float> Reference(const std::string& name, int64_t* rows) {
    const std::string path = fixture_.dir + "/embedding_reference.safetensors";
    if (!std::filesystem::exists(path)) {
      ADD_FAILURE() << "missing " << path
                    << ": make it with `python3 tools/make_embedding_reference.py --dir "
                       "tests/data/hf` (transformers 5.17, torch) and commit it";
      return {};
    }
    auto file = SafetensorsFile::Open(path);
    EXPECT_TRUE(file.ok()) << file.status();
    if (!file.ok()) return {};
    const TensorView* view = (*file)->Find(name);
    EXPECT_NE(view, nullptr) << path << " has no tensor " << name;
    if (view == nullptr) return {};
    EXPECT_EQ(view->dtype, DType::kF32) << name;
    EXPECT_EQ(view->shape.size(), 2u) << name;
    EXPECT_EQ(view->shape.back(), dim()) << name;
    *rows = view->shape[0];
    std::vector<float> out(view->num_elements());
    ConvertToFloat(view->dtype, view->data, out.size(), out.data());
    return out;
  }

  void CheckPositions(const std::string& ids_key, const std::string& name) {
    const std::vector<int32_t> ids = fixture_.Ids(ids_key);
    int64_t rows = 0;
    const std::vector<float> reference = Reference(name, &rows);
    if (reference.empty()) return;
    ASSERT_EQ(rows, static_cast<int64_t>(ids.size())) << name;
    const int64_t D = dim();

    const std::vector<float> all = Hidden(ids, LogitsMode::kAll);
    ASSERT_EQ(all.size(), reference.size());
    double worst = 0;
    for (int64_t t = 0; t < rows; ++t) {
      const double err = RelativeError(&all[t * D], &reference[t * D], D);
      worst = std::max(worst, err);
      ASSERT_LE(err, kHiddenTolerance) << GetParam() << " " << name << " position " << t;
    }
    RecordProperty(name + "_max_rel_err", std::to_string(worst));

    // pooling = last is the reference's row S-1.
    const std::vector<float> last = Hidden(ids, LogitsMode::kLast);
    ASSERT_EQ(last.size(), static_cast<size_t>(D));
    EXPECT_LE(RelativeError(last.data(), &reference[(rows - 1) * D], D), kHiddenTolerance);

    // pooling = mean is the reference's column mean.
    std::vector<float> mean_ref(D, 0.0f);
    for (int64_t d = 0; d < D; ++d) {
      double sum = 0;
      for (int64_t t = 0; t < rows; ++t) sum += reference[t * D + d];
      mean_ref[d] = static_cast<float>(sum / rows);
    }
    EmbeddingPooler pooler(Pooling::kMean, D);
    pooler.Add(all);
    int32_t positions = 0;
    const std::vector<float> mean = pooler.Finish(/*normalize=*/false, positions);
    ASSERT_EQ(positions, 1);
    EXPECT_LE(RelativeError(mean.data(), mean_ref.data(), D), kHiddenTolerance);
  }
};

TEST_P(EmbeddingReferenceTest, LongPromptHiddenStatesMatchHf) {
  CheckPositions("ids_long", "hidden_long");
}

TEST_P(EmbeddingReferenceTest, ShortPromptHiddenStatesMatchHf) {
  CheckPositions("ids_short", "hidden_short");
}

INSTANTIATE_TEST_SUITE_P(Fixtures, EmbeddingReferenceTest, ::testing::ValuesIn(HfCases()));

class HiddenThroughHeadTest : public EmbeddingParityBase {
 protected:
  void CheckThroughHead(const std::string& ids_key, const std::string& name) {
    const std::vector<int32_t> ids = fixture_.Ids(ids_key);
    int64_t rows = 0, vocab = 0;
    const std::vector<float> reference = fixture_.Logits(name, &rows, &vocab);
    ASSERT_EQ(rows, static_cast<int64_t>(ids.size()));
    auto weights = ModelWeights::Load(fixture_.dir);
    ASSERT_TRUE(weights.ok()) << weights.status();
    const FloatTensor& head = (*weights)->lm_head;
    const std::optional<double> cap = (*weights)->config.output_logit_soft_cap;
    const int64_t D = dim();
    const std::vector<float> hidden = Hidden(ids, LogitsMode::kAll);
    ASSERT_EQ(hidden.size(), static_cast<size_t>(rows * D));
    std::vector<float> logits(vocab);
    double worst = 0;
    for (int64_t t = 0; t < rows; ++t) {
      // A plain dot product, not the model's Linear: the check must not share its code path.
      for (int64_t v = 0; v < vocab; ++v) {
        double dot = 0;
        for (int64_t d = 0; d < D; ++d)
          dot += static_cast<double>(head.data[v * D + d]) * hidden[t * D + d];
        logits[v] = static_cast<float>(cap ? *cap * std::tanh(dot / *cap) : dot);
      }
      const double err = RelativeError(logits.data(), &reference[t * vocab], vocab);
      worst = std::max(worst, err);
      ASSERT_LE(err, kLogitTolerance) << GetParam() << " " << name << " position " << t;
    }
    RecordProperty(name + "_through_head_max_rel_err", std::to_string(worst));
  }
};

TEST_P(HiddenThroughHeadTest, LongPromptHeadOfHiddenGivesHfLogits) {
  CheckThroughHead("ids_long", "logits_long");
}

TEST_P(HiddenThroughHeadTest, ShortPromptHeadOfHiddenGivesHfLogits) {
  CheckThroughHead("ids_short", "logits_short");
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HiddenThroughHeadTest, ::testing::ValuesIn(HfCases()));

}  // namespace
}  // namespace xlstm::engine
