#include "tests/engine/hf_fixture.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "gtest/gtest.h"

namespace xlstm::testing {

HfFixture LoadHfFixture(const std::string& case_name) {
  HfFixture f;
  f.dir = std::string(XLSTM_TEST_DATA_DIR) + "/hf/" + case_name;
  std::ifstream in(f.dir + "/reference.json");
  EXPECT_TRUE(in.good()) << "missing " << f.dir << "/reference.json";
  f.meta = nlohmann::json::parse(in);
  auto file = engine::SafetensorsFile::Open(f.dir + "/reference.safetensors");
  EXPECT_TRUE(file.ok()) << file.status();
  if (file.ok()) f.logits_file = std::move(*file);
  return f;
}

std::vector<float> HfFixture::Logits(const std::string& name, int64_t* rows, int64_t* vocab) const {
  const engine::TensorView* view = logits_file->Find(name);
  EXPECT_NE(view, nullptr) << name;
  if (view == nullptr) return {};
  EXPECT_EQ(view->dtype, engine::DType::kF32);
  EXPECT_EQ(view->shape.size(), 2u);
  *rows = view->shape[0];
  *vocab = view->shape[1];
  std::vector<float> out(view->num_elements());
  engine::ConvertToFloat(view->dtype, view->data, out.size(), out.data());
  return out;
}

std::vector<int32_t> HfFixture::Ids(const std::string& key) const {
  return meta.at(key).get<std::vector<int32_t>>();
}

double RelativeError(const float* ours, const float* reference, int64_t n) {
  double max_diff = 0, max_ref = 0;
  for (int64_t i = 0; i < n; ++i) {
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(ours[i]) - reference[i]));
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(reference[i])));
  }
  return max_diff / max_ref;
}

}  // namespace xlstm::testing
