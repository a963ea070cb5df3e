// Malformed model directories: every class of bad input gets an error that names the file,
// the tensor or field, and expected vs actual; none crashes (this binary also runs under the
// address/undefined sanitizer build in CI).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>

#include "engine/cpu/cpu_model.h"
#include "engine/weights/model_weights.h"
#include "engine/weights/random_init.h"
#include "engine/weights/safetensors.h"
#include "engine/weights/safetensors_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace xlstm::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

struct RawTensor {
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<std::byte> bytes;
};

class ModelLoadingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("xlstm_loading_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    config_.vocab_size = 32;
    config_.hidden_size = config_.embedding_dim = 64;
    config_.num_hidden_layers = config_.num_blocks = 1;
    config_.num_heads = 2;
    ASSERT_TRUE(WriteRandomModel(config_, 7, DType::kF32, dir_.string()).ok());
    ASSERT_TRUE(ModelWeights::Load(dir_.string()).ok()) << "the unmodified model must load";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string WeightsPath() const { return (dir_ / "model.safetensors").string(); }

  std::map<std::string, RawTensor> ReadTensors(const std::string& path) {
    std::map<std::string, RawTensor> out;
    auto file = SafetensorsFile::Open(path);
    EXPECT_TRUE(file.ok()) << file.status();
    for (const auto& [name, view] : (*file)->tensors()) {
      out[name] = {view.dtype, view.shape,
                   std::vector<std::byte>(view.data, view.data + view.num_bytes)};
    }
    return out;
  }

  void WriteTensors(const std::string& path, const std::map<std::string, RawTensor>& tensors) {
    std::vector<TensorSpec> specs;
    std::vector<const RawTensor*> data;
    for (const auto& [name, t] : tensors) {
      specs.push_back({name, t.dtype, t.shape});
      data.push_back(&t);
    }
    ASSERT_TRUE(WriteSafetensors(path, specs, [&](size_t i, absl::Span<std::byte> out) {
                  std::copy(data[i]->bytes.begin(), data[i]->bytes.end(), out.begin());
                }).ok());
  }

  // A file whose 8-byte length prefix says `declared_len` and whose header text is `header`.
  void WriteRaw(const std::string& path, uint64_t declared_len, const std::string& header,
                size_t data_bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((declared_len >> (8 * i)) & 0xff));
    out << header << std::string(data_bytes, '\0');
  }

  void WriteConfig(const std::string& text) {
    std::ofstream(dir_ / "config.json", std::ios::trunc) << text;
  }

  absl::Status Load() { return ModelWeights::Load(dir_.string()).status(); }
  // The load error's text, as std::string so that gmock prints it readably.
  std::string LoadError() { return std::string(Load().message()); }

  fs::path dir_;
  ModelConfig config_;
};

TEST_F(ModelLoadingTest, MissingTensor) {
  auto tensors = ReadTensors(WeightsPath());
  tensors.erase("backbone.blocks.0.mlstm_layer.k.weight");
  WriteTensors(WeightsPath(), tensors);
  const absl::Status s = Load();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(),
              AllOf(HasSubstr("missing tensor 'backbone.blocks.0.mlstm_layer.k.weight'"),
                    HasSubstr("[32, 64]")));
}

TEST_F(ModelLoadingTest, UnexpectedTensor) {
  auto tensors = ReadTensors(WeightsPath());
  tensors["backbone.blocks.1.norm_ffn.weight"] = tensors["backbone.blocks.0.norm_ffn.weight"];
  WriteTensors(WeightsPath(), tensors);
  EXPECT_THAT(LoadError(),
              AllOf(HasSubstr("model.safetensors"),
                    HasSubstr("unexpected tensor 'backbone.blocks.1.norm_ffn.weight'")));
}

TEST_F(ModelLoadingTest, WrongShape) {
  auto tensors = ReadTensors(WeightsPath());
  RawTensor& q = tensors["backbone.blocks.0.mlstm_layer.q.weight"];
  q.shape = {64, 32};  // transposed
  WriteTensors(WeightsPath(), tensors);
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("model.safetensors"),
                                 HasSubstr("'backbone.blocks.0.mlstm_layer.q.weight'"),
                                 HasSubstr("has shape [64, 32], expected [32, 64]")));
}

TEST_F(ModelLoadingTest, NonFloatDType) {
  auto tensors = ReadTensors(WeightsPath());
  RawTensor& norm = tensors["backbone.out_norm.weight"];
  norm.dtype = DType::kI32;  // same byte size as F32
  WriteTensors(WeightsPath(), tensors);
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("'backbone.out_norm.weight'"), HasSubstr("dtype I32"),
                                 HasSubstr("F32, BF16 or F16")));
}

TEST_F(ModelLoadingTest, UnknownDType) {
  const std::string header =
      R"({"backbone.out_norm.weight":{"dtype":"Q4","shape":[64],"data_offsets":[0,256]}})";
  WriteRaw(WeightsPath(), header.size(), header, 256);
  EXPECT_THAT(LoadError(),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("'backbone.out_norm.weight'"),
                    HasSubstr("unknown dtype 'Q4'")));
}

TEST_F(ModelLoadingTest, HeaderLengthPastEndOfFile) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  WriteRaw(WeightsPath(), 1u << 20, header, 4);
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("model.safetensors"), HasSubstr("header length 1048576"),
                                 HasSubstr("exceeds the file")));
}

TEST_F(ModelLoadingTest, HugeHeaderLength) {
  WriteRaw(WeightsPath(), ~uint64_t{0}, "{}", 0);
  EXPECT_THAT(LoadError(), HasSubstr("exceeds the file"));
}

TEST_F(ModelLoadingTest, OffsetsOutsideTheFile) {
  const std::string header =
      R"({"backbone.out_norm.weight":{"dtype":"F32","shape":[64],"data_offsets":[1000,1256]}})";
  WriteRaw(WeightsPath(), header.size(), header, 256);
  EXPECT_THAT(LoadError(),
              AllOf(HasSubstr("'backbone.out_norm.weight'"),
                    HasSubstr("data_offsets end 1256 is past the data section (256 bytes)")));
}

TEST_F(ModelLoadingTest, OffsetsThatDisagreeWithTheShape) {
  const std::string header =
      R"({"backbone.out_norm.weight":{"dtype":"F32","shape":[64],"data_offsets":[0,200]}})";
  WriteRaw(WeightsPath(), header.size(), header, 256);
  EXPECT_THAT(LoadError(), HasSubstr("data_offsets cover 200 bytes but F32 [64] needs 256"));
}

TEST_F(ModelLoadingTest, OverlappingTensors) {
  const std::string header =
      R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"y":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})";
  WriteRaw(WeightsPath(), header.size(), header, 24);
  EXPECT_THAT(LoadError(), HasSubstr("overlaps tensor"));
}

TEST_F(ModelLoadingTest, TruncatedFile) {
  const auto size = fs::file_size(WeightsPath());
  fs::resize_file(WeightsPath(), size - 100);
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("model.safetensors"),
                                 HasSubstr("is past the data section"), HasSubstr("truncated")));
}

TEST_F(ModelLoadingTest, FileShorterThanTheLengthPrefix) {
  std::ofstream(WeightsPath(), std::ios::binary | std::ios::trunc) << "abc";
  EXPECT_THAT(LoadError(), HasSubstr("too short for the 8-byte header length"));
}

TEST_F(ModelLoadingTest, HeaderIsNotJson) {
  const std::string header = "{not json";
  WriteRaw(WeightsPath(), header.size(), header, 0);
  EXPECT_THAT(LoadError(),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("header is not valid JSON")));
}

TEST_F(ModelLoadingTest, ConfigIsNotJson) {
  WriteConfig("{\"model_type\": \"xlstm\", ");
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("config.json"), HasSubstr("invalid JSON")));
}

TEST_F(ModelLoadingTest, UnsupportedModelType) {
  WriteConfig(R"({"model_type": "llama", "hidden_size": 64})");
  EXPECT_THAT(LoadError(),
              AllOf(HasSubstr("config.json"), HasSubstr("unsupported model_type 'llama'")));
  WriteConfig(R"({"hidden_size": 64})");
  EXPECT_THAT(LoadError(), HasSubstr("missing field 'model_type'"));
}

TEST_F(ModelLoadingTest, HeadsThatDoNotDivideTheDims) {
  ModelConfig c = config_;
  c.num_heads = 3;
  WriteConfig(c.ToJson());
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("config.json"), HasSubstr("qk_dim"),
                                 HasSubstr("32 is not divisible by num_heads = 3")));
  c = config_;
  c.qk_dim_factor = 0.25;  // qk_dim 16 divides 2 heads, v_dim 64
  c.v_dim_factor = 0.3;    // int(64 * 0.3) = 19, odd
  WriteConfig(c.ToJson());
  EXPECT_THAT(
      LoadError(),
      HasSubstr("v_dim = int(hidden_size * v_dim_factor) = 19 is not divisible by num_heads = 2"));
}

TEST_F(ModelLoadingTest, FieldOfTheWrongType) {
  WriteConfig(R"({"model_type": "xlstm", "hidden_size": "large"})");
  EXPECT_THAT(LoadError(), HasSubstr("field 'hidden_size' must be an integer or null, got string"));
  WriteConfig(R"({"model_type": "xlstm", "use_bias": 1})");
  EXPECT_THAT(LoadError(), HasSubstr("field 'use_bias' must be true or false"));
  WriteConfig(R"({"model_type": "xlstm", "weight_mode": "packed"})");
  EXPECT_THAT(LoadError(),
              HasSubstr("field 'weight_mode' is 'packed', expected one of: single, fused"));
  WriteConfig(R"({"model_type": "xlstm", "num_heads": 0})");
  EXPECT_THAT(LoadError(), HasSubstr("field 'num_heads' is 0, must be in [1, 4096]"));
}

TEST_F(ModelLoadingTest, EmbeddingDimMustEqualHiddenSize) {
  ModelConfig c = config_;
  c.embedding_dim = 32;
  WriteConfig(c.ToJson());
  EXPECT_THAT(LoadError(), HasSubstr("embedding_dim (32) must equal hidden_size (64)"));
}

TEST_F(ModelLoadingTest, ConfigThatDisagreesWithTheWeights) {
  ModelConfig c = config_;
  c.vocab_size = 33;
  WriteConfig(c.ToJson());
  EXPECT_THAT(LoadError(),
              HasSubstr("'backbone.embeddings.weight' has shape [32, 64], expected [33, 64]"));
  c = config_;
  c.weight_mode = WeightMode::kFused;
  WriteConfig(c.ToJson());
  EXPECT_THAT(LoadError(),
              HasSubstr("missing tensor 'backbone.blocks.0.mlstm_layer.qkv_opreact.weight'"));
}

TEST_F(ModelLoadingTest, MissingFiles) {
  fs::remove(WeightsPath());
  EXPECT_THAT(LoadError(), HasSubstr("no model.safetensors and no model.safetensors.index.json"));
  fs::remove(dir_ / "config.json");
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("config.json"), HasSubstr("cannot open")));
  EXPECT_THAT(std::string(ModelWeights::Load((dir_ / "nope").string()).status().message()),
              HasSubstr("not a model directory"));
}

TEST_F(ModelLoadingTest, ShardedIndexErrors) {
  auto tensors = ReadTensors(WeightsPath());
  fs::remove(WeightsPath());
  std::map<std::string, RawTensor> a, b;
  for (auto& [name, t] : tensors) (name.find("blocks") != std::string::npos ? a : b)[name] = t;
  WriteTensors((dir_ / "model-00001-of-00002.safetensors").string(), a);
  WriteTensors((dir_ / "model-00002-of-00002.safetensors").string(), b);
  auto write_index = [&](const std::map<std::string, std::string>& overrides) {
    nlohmann::json map;
    for (auto& [name, t] : a) map[name] = "model-00001-of-00002.safetensors";
    for (auto& [name, t] : b) map[name] = "model-00002-of-00002.safetensors";
    for (auto& [name, file] : overrides) map[name] = file;
    std::ofstream(dir_ / "model.safetensors.index.json", std::ios::trunc)
        << nlohmann::json{{"metadata", nlohmann::json::object()}, {"weight_map", map}}.dump();
  };
  write_index({});
  ASSERT_TRUE(Load().ok()) << Load();

  write_index({{"backbone.out_norm.weight", "model-00001-of-00002.safetensors"}});
  EXPECT_THAT(LoadError(),
              HasSubstr("lists tensor 'backbone.out_norm.weight' in "
                        "model-00001-of-00002.safetensors, but that shard does not contain it"));
  write_index({{"backbone.out_norm.weight", "model-00003-of-00002.safetensors"}});
  EXPECT_THAT(LoadError(),
              AllOf(HasSubstr("model-00003-of-00002.safetensors"), HasSubstr("cannot open")));
  write_index({{"backbone.out_norm.weight", "../../etc/passwd"}});
  EXPECT_THAT(LoadError(), HasSubstr("must be a file name in the model directory"));
  std::ofstream(dir_ / "model.safetensors.index.json", std::ios::trunc) << "{\"weight_map\": 3}";
  EXPECT_THAT(LoadError(), HasSubstr("missing object 'weight_map'"));
}

// nlohmann::json reports a number that overflows a double as out_of_range, not parse_error;
// both must come back as an error naming the file, never as an exception.
TEST_F(ModelLoadingTest, OverflowingNumberInConfig) {
  WriteConfig(R"({"model_type": "xlstm", "chunk_size": 1e999})");
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("config.json"), HasSubstr("invalid JSON"),
                                 HasSubstr("number overflow")));
}

TEST_F(ModelLoadingTest, OverflowingNumberInSafetensorsHeader) {
  const std::string header = R"({"x": {"dtype": "F32", "shape": [1e999], "data_offsets": [0, 4]}})";
  WriteRaw(WeightsPath(), header.size(), header, 4);
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("model.safetensors"),
                                 HasSubstr("header is not valid JSON"), HasSubstr("overflow")));
}

TEST_F(ModelLoadingTest, OverflowingNumberInGenerationConfig) {
  std::ofstream(dir_ / "generation_config.json") << R"({"eos_token_id": 1e999})";
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("generation_config.json"), HasSubstr("invalid JSON"),
                                 HasSubstr("number overflow")));
}

TEST_F(ModelLoadingTest, OverflowingNumberInShardIndex) {
  fs::remove(WeightsPath());
  std::ofstream(dir_ / "model.safetensors.index.json") << R"({"metadata": {"total_size": 1e999}})";
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("model.safetensors.index.json"),
                                 HasSubstr("invalid JSON"), HasSubstr("number overflow")));
}

// A symlink to itself: stat() fails with ELOOP, which std::filesystem::exists throws on.
TEST_F(ModelLoadingTest, SymlinkLoopAtWeights) {
  fs::remove(WeightsPath());
  fs::create_symlink("model.safetensors", WeightsPath());
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("model.safetensors"),
                                 HasSubstr("Too many levels of symbolic links")));
}

TEST_F(ModelLoadingTest, SymlinkLoopAtGenerationConfig) {
  fs::create_symlink("generation_config.json", dir_ / "generation_config.json");
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("generation_config.json"),
                                 HasSubstr("Too many levels of symbolic links")));
}

// Loads in the background and expects an answer within 10 s. A loader that blocks on the FIFO
// (open() of a FIFO waits for a writer) is released by opening the FIFO for writing, so that a
// failing test ends instead of hanging.
std::string LoadErrorWithin10s(const fs::path& dir, const fs::path& fifo) {
  std::future<absl::Status> load =
      std::async(std::launch::async, [dir] { return ModelWeights::Load(dir.string()).status(); });
  if (load.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "loading a model with a FIFO at " << fifo << " hangs";
    const int fd = ::open(fifo.c_str(), O_WRONLY);
    if (fd >= 0) ::close(fd);
  }
  return std::string(load.get().message());
}

TEST_F(ModelLoadingTest, FifoInPlaceOfWeightsIsRefusedWithoutBlocking) {
  fs::remove(WeightsPath());
  ASSERT_EQ(::mkfifo(WeightsPath().c_str(), 0600), 0);
  EXPECT_THAT(
      LoadErrorWithin10s(dir_, WeightsPath()),
      AllOf(HasSubstr("model.safetensors"), HasSubstr("is a FIFO; expected a regular file")));
}

TEST_F(ModelLoadingTest, FifoInPlaceOfConfigIsRefusedWithoutBlocking) {
  fs::remove(dir_ / "config.json");
  ASSERT_EQ(::mkfifo((dir_ / "config.json").c_str(), 0600), 0);
  EXPECT_THAT(LoadErrorWithin10s(dir_, dir_ / "config.json"),
              AllOf(HasSubstr("config.json"), HasSubstr("is a FIFO; expected a regular file")));
}

TEST_F(ModelLoadingTest, DirectoryInPlaceOfGenerationConfig) {
  fs::create_directory(dir_ / "generation_config.json");
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("generation_config.json"),
                                 HasSubstr("is a directory; expected a regular file")));
}

TEST_F(ModelLoadingTest, RandomModelOverTheSizeLimitIsRefusedBeforeWriting) {
  ModelConfig c = config_;
  c.hidden_size = c.embedding_dim = 1'000'000;
  c.vocab_size = 50'304;
  const fs::path out = dir_ / "huge";
  const absl::Status s = WriteRandomModel(c, 1, DType::kBF16, out.string());
  EXPECT_THAT(std::string(s.message()), HasSubstr("over the limit of"));
  EXPECT_FALSE(fs::exists(out)) << "nothing is written for a refused config";
}

TEST_F(ModelLoadingTest, TiedHeadFallsBackToEmbeddingsOnlyWhenAbsentAndTied) {
  auto tensors = ReadTensors(WeightsPath());
  tensors.erase("lm_head.weight");
  WriteTensors(WeightsPath(), tensors);
  EXPECT_THAT(LoadError(), HasSubstr("missing tensor 'lm_head.weight'"));
  ModelConfig c = config_;
  c.tie_word_embeddings = true;
  WriteConfig(c.ToJson());
  auto weights = ModelWeights::Load(dir_.string());
  ASSERT_TRUE(weights.ok()) << weights.status();
  EXPECT_EQ((*weights)->lm_head.data, (*weights)->embeddings.data);
}

TEST_F(ModelLoadingTest, HalfPrecisionWeightsLoadAsTheirFloatValues) {
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    ASSERT_TRUE(WriteRandomModel(config_, 7, dtype, dir_.string()).ok());
    auto weights = ModelWeights::Load(dir_.string());
    ASSERT_TRUE(weights.ok()) << weights.status();
    auto file = SafetensorsFile::Open(WeightsPath());
    const TensorView* view = (*file)->Find("backbone.blocks.0.mlstm_layer.v.weight");
    ASSERT_NE(view, nullptr);
    ASSERT_EQ(view->dtype, dtype);
    std::vector<float> expected(view->num_elements());
    ConvertToFloat(dtype, view->data, expected.size(), expected.data());
    EXPECT_EQ(std::vector<float>((*weights)->blocks[0].v_weight.data,
                                 (*weights)->blocks[0].v_weight.data + expected.size()),
              expected);
  }
}

}  // namespace
}  // namespace xlstm::engine
