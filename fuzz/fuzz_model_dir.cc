// libFuzzer target: the model-directory loader (ModelWeights::Load: config.json, shapes against
// the config, safetensors). Input: a 4-byte little-endian length N, then N bytes of config.json,
// then the bytes of model.safetensors. Both are written into one scratch directory per process
// (under $TMPDIR) and loaded the way xlstm-run and the server load a model.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/weights/model_weights.h"

namespace {

const std::string& ScratchDir() {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string d = std::string(tmp != nullptr ? tmp : "/tmp") + "/xlstm_fuzz_model_dir_" +
                    std::to_string(getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

void Write(const std::string& path, const uint8_t* data, size_t size) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  size_t config_size = data[0] | (data[1] << 8) | (data[2] << 16) | (size_t{data[3]} << 24);
  if (config_size > size - 4) config_size = size - 4;
  const std::string& dir = ScratchDir();
  Write(dir + "/config.json", data + 4, config_size);
  Write(dir + "/model.safetensors", data + 4 + config_size, size - 4 - config_size);
  (void)xlstm::engine::ModelWeights::Load(dir);
  return 0;
}
