#include "tests/tokenizer/reference_fixture.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

namespace xlstm::tokenizer::testing {

std::string TestDataPath(const std::string& relative) {
  return std::string(XLSTM_TEST_DATA_DIR) + "/" + relative;
}

const nlohmann::json& Reference() {
  static const nlohmann::json* const reference = [] {
    const std::string path = TestDataPath("tokenizer_reference.json");
    std::ifstream in(path);
    if (!in) {
      std::fprintf(stderr, "cannot open %s\n", path.c_str());
      std::abort();
    }
    std::stringstream contents;
    contents << in.rdbuf();
    return new nlohmann::json(nlohmann::json::parse(contents.str()));
  }();
  return *reference;
}

const Tokenizer& ReferenceTokenizer(const std::string& name) {
  static std::mutex mu;
  static auto* const loaded = new std::map<std::string, std::unique_ptr<Tokenizer>>();
  std::lock_guard<std::mutex> lock(mu);
  auto it = loaded->find(name);
  if (it != loaded->end()) return *it->second;
  const std::string path = TestDataPath(Reference()["tokenizers"][name].get<std::string>());
  auto tokenizer = Tokenizer::FromFile(path);
  if (!tokenizer.ok()) {
    std::fprintf(stderr, "cannot load %s: %s\n", path.c_str(),
                 tokenizer.status().ToString().c_str());
    std::abort();
  }
  return *loaded->emplace(name, *std::move(tokenizer)).first->second;
}

std::string Printable(const std::string& text) {
  return nlohmann::json(text).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
}

}  // namespace xlstm::tokenizer::testing
