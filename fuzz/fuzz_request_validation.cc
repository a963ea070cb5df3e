// libFuzzer target: request bytes -> proto -> validated engine request, the server's path
// (server/checked_request.h's parser, then server/request_validation.h), with the server's
// default limits and a model with the GPT-NeoX tokenizer, so that text fields are tokenized.
// The first byte picks the RPC: Generate, Score or Tokenize.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "engine/model_config.h"
#include "grpcpp/support/byte_buffer.h"
#include "server/checked_request.h"
#include "server/request_validation.h"
#include "server/server_options.h"
#include "server/text_codec.h"

namespace {

struct Fixture {
  xlstm::server::ServerOptions options;
  xlstm::engine::ModelConfig config;
  std::unique_ptr<xlstm::server::TextCodec> codec;
  xlstm::server::ValidationContext context() const {
    return {&options, &config, /*num_slots=*/8, codec.get()};
  }
};

const Fixture& GetFixture() {
  static const Fixture* fixture = [] {
    auto* f = new Fixture();
    f->config.vocab_size = 50304;  // the tokenizer's ids fit
    // TextCodec loads a model directory's tokenizer files: a directory with only tokenizer.json.
    const std::string dir = std::filesystem::temp_directory_path() / "xlstm_fuzz_validation";
    std::filesystem::create_directories(dir);
    std::filesystem::copy_file(XLSTM_FUZZ_TOKENIZER_JSON, dir + "/tokenizer.json",
                               std::filesystem::copy_options::overwrite_existing);
    auto codec = xlstm::server::TextCodec::Load(dir);
    if (codec.ok()) f->codec = *std::move(codec);
    return f;
  }();
  return *fixture;
}

template <class Message>
bool Parse(const uint8_t* data, size_t size, Message* message) {
  grpc::Slice slice(data, size);
  grpc::ByteBuffer buffer(&slice, 1);
  return xlstm::server::ParseRequestBytes(&buffer, message).ok();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const Fixture& f = GetFixture();
  const uint8_t rpc = data[0] % 3;
  ++data;
  --size;
  if (rpc == 0) {
    xlstm::v1::GenerateRequest request;
    if (Parse(data, size, &request)) {
      (void)xlstm::server::ToEngineGenerate(f.context(), request, /*seed=*/1);
    }
  } else if (rpc == 1) {
    xlstm::v1::ScoreRequest request;
    if (Parse(data, size, &request)) (void)xlstm::server::ToEngineScores(f.context(), request);
  } else {
    xlstm::v1::TokenizeRequest request;
    if (Parse(data, size, &request)) (void)xlstm::server::ToTokenIds(f.context(), request);
  }
  return 0;
}
