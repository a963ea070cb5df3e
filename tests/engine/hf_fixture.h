// Loads the Hugging Face reference fixtures written by tools/make_reference.py
// (tests/data/hf/<case>/): the checkpoint directory, reference.json and the fp32 logits in
// reference.safetensors.
#ifndef XLSTM_TESTS_ENGINE_HF_FIXTURE_H_
#define XLSTM_TESTS_ENGINE_HF_FIXTURE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/weights/safetensors.h"
#include "nlohmann/json.hpp"

namespace xlstm::testing {

// Every case tools/make_reference.py writes.
inline const std::vector<std::string>& HfCases() {
  static const std::vector<std::string> cases = {"default", "bias", "qk1_v05", "softcaps_sharded",
                                                 "fused"};
  return cases;
}

struct HfFixture {
  std::string dir;
  nlohmann::json meta;  // reference.json
  std::unique_ptr<engine::SafetensorsFile> logits_file;

  // Reference logits by tensor name, row-major [rows, vocab].
  std::vector<float> Logits(const std::string& name, int64_t* rows, int64_t* vocab) const;
  std::vector<int32_t> Ids(const std::string& key) const;
};

// Aborts the test (ASSERT) when the fixture cannot be read.
HfFixture LoadHfFixture(const std::string& case_name);

// max_i |a_i - b_i| / max_i |b_i| over one row.
double RelativeError(const float* ours, const float* reference, int64_t n);

}  // namespace xlstm::testing

#endif  // XLSTM_TESTS_ENGINE_HF_FIXTURE_H_
