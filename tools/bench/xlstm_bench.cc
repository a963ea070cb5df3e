// xlstm-bench: engine-level speed of the CUDA backend against the physical limits of the GPU
// (docs/performance.md), with random weights generated on the device (no files).
//
// Per model shape it measures, in one process and one GPU session:
//   - device bandwidth: a timed device-to-device cudaMemcpyAsync of >= 1 GiB (bytes read +
//     written per second, median of repeats, CUDA events);
//   - decode tok/s at each batch B: B slots reset and prefilled with a random prompt, then timed
//     steps of one token per row, each row fed back its chosen token; compared with the
//     bandwidth roofline B * BW / (W + B * 2 * S). The steps go through the call the serving
//     engine makes, Forward with one SampleSpec per row and device sampling ("greedy":
//     temperature 0; "sampled": temperature 0.8, top-p 0.95; "sampled_topk": the same with
//     top-k 50), or through ForwardGreedy
//     ("argmax", a benchmark-only shortcut), for each --decode-modes entry and each
//     --decode-paths entry (CUDA graphs, the same padded buckets launched eagerly, or the
//     general path; the backend's SetDecodePath switches between them on one backend). The
//     first mode on the first path is the headline ("headline": true in the JSON);
//   - prefill tok/s: b rows of T tokens in one Forward (kLast), compared with the bf16 compute
//     floor (2 FLOPs per weight per token at the peak tensor-core rate);
//   - time to first token at batch 1: reset + ForwardGreedy of the whole prompt until the token
//     id is on the host;
//   - device memory in use after setup.
// It prints a markdown table per shape and writes every figure to --json.
//
//   xlstm-bench --shapes 162m,407m,7b --json out.json --commit $(git rev-parse HEAD)
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/types/span.h"
#include "common/status_macros.h"
#include "engine/backend.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/dependent_launch.h"
#include "engine/model_config.h"
#include "nlohmann/json.hpp"

#ifndef XLSTM_BENCH_BUILD_COMMIT
#define XLSTM_BENCH_BUILD_COMMIT "unknown"
#endif

namespace xlstm::bench {
namespace {

using engine::ForwardRow;
using engine::LogitsMode;
using engine::ModelConfig;
using engine::cuda::CudaBackend;
using engine::cuda::CudaBackendOptions;
using Json = nlohmann::json;

constexpr double kGB = 1e9;
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// ---------------------------------------------------------------------------------------------
// Flags (hand-parsed so that the documented dashed spellings work: --decode-batches 1,8).

struct Options {
  std::vector<std::string> shapes = {"162m", "407m", "7b"};
  std::vector<int64_t> decode_batches = {1, 8, 64, 256};
  std::vector<std::string> decode_modes = {"greedy", "sampled"};
  std::vector<std::string> decode_paths = {"graphs"};
  std::string state_dtype = "float32";  // the recurrent state's storage (C and n)
  int64_t decode_prompt = 128;
  int64_t decode_steps = 64;
  int64_t prefill_tokens = 2048;
  std::vector<int64_t> prefill_batches = {1, 8};
  std::vector<int64_t> ttft_prompts = {128, 2048};
  int64_t repeats = 5;
  int64_t warmup = 3;
  std::string json_path;
  bool fp32_weights = false;
  bool bf16x2 = false;               // bf16 weights with bf16-pair activations
  bool no_gemv = false;              // cuBLAS for every product (no small-batch GEMV)
  bool no_dependent_launch = false;  // plain stream order between kernels
  int64_t max_slots = 0;             // 0: the largest decode batch
  std::string commit;
  uint64_t seed = 1234;
  int64_t device = 0;
  double bandwidth_gib = 1.0;
  double peak_tflops = 790.0;
  double budget_s = 20.0;
};

constexpr const char* kUsage = R"(usage: xlstm-bench [flags]
  --shapes LIST           model shapes: 162m, 407m, 7b or DxLxNH (e.g. 768x12x4) [162m,407m,7b]
  --decode-batches LIST   decode batch sizes [1,8,64,256]
  --decode-modes LIST     greedy (Forward, SampleSpec temperature 0), sampled (temperature 0.8,
                          top-p 0.95), sampled_topk (the same with top-k 50) and/or argmax
                          (ForwardGreedy) [greedy,sampled]
  --decode-paths LIST     graphs, buckets and/or general: how decode-only steps run
                          (engine/cuda/cuda_backend.h DecodePath) [graphs]
  --state-dtype T         float32 or bfloat16: storage of the recurrent state [float32]
  --decode-prompt N       prompt tokens prefilled into each decode slot before timing [128]
  --decode-steps N        timed decode steps per repeat (after warmup) [64]
  --prefill-tokens T      tokens per row of a prefill measurement [2048]
  --prefill-batches LIST  rows per prefill Forward [1,8]
  --ttft-prompts LIST     prompt lengths for time to first token at batch 1 [128,2048]
  --repeats N             timed repeats per measurement; the median is reported [5]
  --warmup N              untimed steps / passes before each measurement (>= 3) [3]
  --json PATH             write every figure as JSON (rewritten after each shape)
  --fp32-weights          fp32 weights and GEMMs instead of bf16
  --bf16x2                bf16 weights with bf16-pair (~16-bit) GEMM activations
  --no-gemv               cuBLAS for every product (CudaBackendOptions::small_batch_gemv off)
  --no-dependent-launch   kernels in plain stream order (engine/cuda/dependent_launch.h off)
  --max-slots N           slot pool cap [largest decode batch]
  --commit HASH           source commit to record (e.g. $(git rev-parse HEAD))
  --seed N                weight and prompt seed [1234]
  --device N              CUDA device [0]
  --bandwidth-gib X       size of the device-to-device copy for the bandwidth probe [1]
  --peak-tflops X         dense bf16 peak for the compute floor [790, H100 SXM measured]
  --budget-s X            soft cap on one decode measurement's timed seconds: fewer steps are
                          timed when warmup shows the requested ones would take longer [20]
)";

absl::StatusOr<std::vector<int64_t>> ParseIntList(const std::string& text) {
  std::vector<int64_t> out;
  for (absl::string_view piece : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int64_t value = 0;
    if (!absl::SimpleAtoi(piece, &value) || value < 1) {
      return absl::InvalidArgumentError(absl::StrCat("not a positive integer: '", piece, "'"));
    }
    out.push_back(value);
  }
  if (out.empty()) return absl::InvalidArgumentError("empty list");
  return out;
}

absl::StatusOr<int64_t> ParsePositive(const std::string& text) {
  int64_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < 1) {
    return absl::InvalidArgumentError(absl::StrCat("not a positive integer: '", text, "'"));
  }
  return value;
}

absl::StatusOr<double> ParsePositiveDouble(const std::string& text) {
  double value = 0;
  if (!absl::SimpleAtod(text, &value) || !(value > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("not a positive number: '", text, "'"));
  }
  return value;
}

absl::StatusOr<Options> ParseFlags(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (arg.rfind("--", 0) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg, "'"));
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    name = absl::StrReplaceAll(name, {{"_", "-"}});
    if (name == "bf16x2") {
      if (has_value) return absl::InvalidArgumentError("--bf16x2 takes no value");
      o.bf16x2 = true;
      continue;
    }
    if (name == "no-gemv") {
      if (has_value) return absl::InvalidArgumentError("--no-gemv takes no value");
      o.no_gemv = true;
      continue;
    }
    if (name == "no-dependent-launch") {
      if (has_value) return absl::InvalidArgumentError("--no-dependent-launch takes no value");
      o.no_dependent_launch = true;
      continue;
    }
    if (name == "fp32-weights") {
      if (has_value) return absl::InvalidArgumentError("--fp32-weights takes no value");
      o.fp32_weights = true;
      continue;
    }
    static constexpr const char* kValued[] = {
        "shapes",          "decode-batches", "decode-prompt", "decode-steps", "prefill-tokens",
        "prefill-batches", "ttft-prompts",   "repeats",       "warmup",       "json",
        "max-slots",       "commit",         "seed",          "device",       "bandwidth-gib",
        "peak-tflops",     "budget-s",       "decode-modes",  "decode-paths", "state-dtype"};
    if (std::find(std::begin(kValued), std::end(kValued), name) == std::end(kValued)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, "\n", kUsage));
    }
    if (!has_value) {
      if (i + 1 >= argc)
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      value = argv[++i];
    }
    absl::Status status = absl::OkStatus();
    auto set_int = [&](int64_t& field) {
      absl::StatusOr<int64_t> v = ParsePositive(value);
      if (v.ok()) field = *v;
      status = v.status();
    };
    auto set_list = [&](std::vector<int64_t>& field) {
      absl::StatusOr<std::vector<int64_t>> v = ParseIntList(value);
      if (v.ok()) field = *v;
      status = v.status();
    };
    auto set_double = [&](double& field) {
      absl::StatusOr<double> v = ParsePositiveDouble(value);
      if (v.ok()) field = *v;
      status = v.status();
    };
    if (name == "shapes") {
      o.shapes = absl::StrSplit(value, ',', absl::SkipEmpty());
      if (o.shapes.empty()) status = absl::InvalidArgumentError("empty list");
    } else if (name == "decode-batches") {
      set_list(o.decode_batches);
    } else if (name == "decode-modes" || name == "decode-paths") {
      std::vector<std::string> list = absl::StrSplit(value, ',', absl::SkipEmpty());
      const std::vector<std::string> known =
          name == "decode-modes"
              ? std::vector<std::string>{"greedy", "sampled", "sampled_topk", "argmax"}
              : std::vector<std::string>{"graphs", "buckets", "general"};
      for (const std::string& item : list) {
        if (std::find(known.begin(), known.end(), item) == known.end()) {
          status = absl::InvalidArgumentError(absl::StrCat("unknown entry '", item, "'"));
        }
      }
      if (list.empty()) status = absl::InvalidArgumentError("empty list");
      (name == "decode-modes" ? o.decode_modes : o.decode_paths) = std::move(list);
    } else if (name == "state-dtype") {
      if (value != "float32" && value != "bfloat16") {
        status = absl::InvalidArgumentError("must be float32 or bfloat16");
      }
      o.state_dtype = value;
    } else if (name == "decode-prompt") {
      set_int(o.decode_prompt);
    } else if (name == "decode-steps") {
      set_int(o.decode_steps);
    } else if (name == "prefill-tokens") {
      set_int(o.prefill_tokens);
    } else if (name == "prefill-batches") {
      set_list(o.prefill_batches);
    } else if (name == "ttft-prompts") {
      set_list(o.ttft_prompts);
    } else if (name == "repeats") {
      set_int(o.repeats);
    } else if (name == "warmup") {
      set_int(o.warmup);
    } else if (name == "json") {
      o.json_path = value;
    } else if (name == "max-slots") {
      set_int(o.max_slots);
    } else if (name == "commit") {
      o.commit = value;
    } else if (name == "seed") {
      if (!absl::SimpleAtoi(value, &o.seed)) status = absl::InvalidArgumentError("bad seed");
    } else if (name == "device") {
      if (!absl::SimpleAtoi(value, &o.device) || o.device < 0) {
        status = absl::InvalidArgumentError("bad device");
      }
    } else if (name == "bandwidth-gib") {
      set_double(o.bandwidth_gib);
    } else if (name == "peak-tflops") {
      set_double(o.peak_tflops);
    } else if (name == "budget-s") {
      set_double(o.budget_s);
    }
    if (!status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, ": ", status.message()));
    }
  }
  if (o.warmup < 3) return absl::InvalidArgumentError("--warmup must be >= 3");
  if (o.bandwidth_gib < 1.0) return absl::InvalidArgumentError("--bandwidth-gib must be >= 1");
  if (o.max_slots == 0) {
    o.max_slots = *std::max_element(o.decode_batches.begin(), o.decode_batches.end());
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Model shapes and the figures the roofline needs.

absl::StatusOr<ModelConfig> ShapeConfig(const std::string& shape, int64_t vocab) {
  int64_t d = 0, layers = 0, heads = 0;
  if (shape == "162m") {
    d = 768, layers = 12, heads = 4;
  } else if (shape == "407m") {
    d = 1024, layers = 24, heads = 4;
  } else if (shape == "7b") {
    d = 4096, layers = 32, heads = 8;
  } else {
    std::vector<std::string> parts = absl::StrSplit(shape, 'x');
    if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &d) ||
        !absl::SimpleAtoi(parts[1], &layers) || !absl::SimpleAtoi(parts[2], &heads)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown shape '", shape, "' (162m, 407m, 7b or DxLxNH)"));
    }
  }
  ModelConfig c;  // every other field: HF's xLSTMConfig defaults
  c.vocab_size = vocab;
  c.hidden_size = d;
  c.embedding_dim = d;
  c.num_hidden_layers = layers;
  c.num_blocks = layers;
  c.num_heads = heads;
  // model_config.h exposes validation only through parsing; round-trip to get it.
  return ModelConfig::FromJson(c.ToJson(), absl::StrCat("shape ", shape));
}

struct ModelFigures {
  int64_t block_linear_params = 0;  // all blocks' projection weights
  int64_t lm_head_params = 0;
  int64_t embedding_params = 0;
  int64_t other_params = 0;  // norm weights and gate biases
  int64_t linear_params() const { return block_linear_params + lm_head_params; }
  int64_t total_params() const { return linear_params() + embedding_params + other_params; }
};

ModelFigures Figures(const ModelConfig& c) {
  const int64_t d = c.hidden_size, qk = c.qk_dim(), v = c.v_dim(), nh = c.num_heads;
  const int64_t f = c.ffn_dim();
  const int64_t per_block = (2 * qk + 2 * v + 2 * nh) * d + d * v + 2 * f * d + d * f;
  ModelFigures m;
  m.block_linear_params = per_block * c.num_blocks;
  m.lm_head_params = c.vocab_size * d;
  m.embedding_params = c.vocab_size * d;
  m.other_params = c.num_blocks * (2 * d + v + 2 * nh) + d;
  return m;
}

// ---------------------------------------------------------------------------------------------
// Timing helpers.

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Device-to-device copy bandwidth (bytes read + written per second), median of `repeats`
// timings of `copies` back-to-back copies of `bytes`, by CUDA events on a private stream.
absl::StatusOr<Json> MeasureBandwidth(double gib, int64_t repeats) {
  const size_t bytes = static_cast<size_t>(gib * kGiB);
  constexpr int kCopies = 8;
  void* src = nullptr;
  void* dst = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  // Frees whatever was made, on every path.
  struct Cleanup {
    void** src;
    void** dst;
    cudaStream_t* stream;
    cudaEvent_t* start;
    cudaEvent_t* stop;
    ~Cleanup() {
      if (*start != nullptr) cudaEventDestroy(*start);
      if (*stop != nullptr) cudaEventDestroy(*stop);
      if (*stream != nullptr) cudaStreamDestroy(*stream);
      if (*src != nullptr) cudaFree(*src);
      if (*dst != nullptr) cudaFree(*dst);
    }
  } cleanup{&src, &dst, &stream, &start, &stop};
  XLSTM_CUDA_RETURN_IF_ERROR(cudaMalloc(&src, bytes));
  XLSTM_CUDA_RETURN_IF_ERROR(cudaMalloc(&dst, bytes));
  XLSTM_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  XLSTM_CUDA_RETURN_IF_ERROR(cudaEventCreate(&start));
  XLSTM_CUDA_RETURN_IF_ERROR(cudaEventCreate(&stop));
  XLSTM_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(src, 0x5a, bytes, stream));
  XLSTM_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(dst, 0, bytes, stream));
  for (int i = 0; i < 2; ++i) {
    XLSTM_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
  }
  XLSTM_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  std::vector<double> rates;
  for (int64_t r = 0; r < repeats; ++r) {
    XLSTM_CUDA_RETURN_IF_ERROR(cudaEventRecord(start, stream));
    for (int i = 0; i < kCopies; ++i) {
      XLSTM_CUDA_RETURN_IF_ERROR(
          cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
    }
    XLSTM_CUDA_RETURN_IF_ERROR(cudaEventRecord(stop, stream));
    XLSTM_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(stop));
    float ms = 0;
    XLSTM_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, start, stop));
    rates.push_back(2.0 * static_cast<double>(bytes) * kCopies / (ms * 1e-3));
  }
  const double median = Median(rates);
  return Json{{"bytes_per_copy", bytes},
              {"copies_per_repeat", kCopies},
              {"repeats", repeats},
              {"counted", "bytes read + bytes written"},
              {"bytes_per_s", median},
              {"gb_per_s", median / kGB},
              {"min_gb_per_s", *std::min_element(rates.begin(), rates.end()) / kGB},
              {"max_gb_per_s", *std::max_element(rates.begin(), rates.end()) / kGB}};
}

absl::StatusOr<std::pair<int64_t, int64_t>> MemInfo() {
  size_t free_bytes = 0, total_bytes = 0;
  XLSTM_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_bytes, &total_bytes));
  return std::make_pair(static_cast<int64_t>(free_bytes), static_cast<int64_t>(total_bytes));
}

std::vector<int32_t> RandomTokens(std::mt19937_64& rng, int64_t count, int64_t vocab) {
  std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> out(count);
  for (int32_t& t : out) t = dist(rng);
  return out;
}

absl::Status CheckIds(const std::vector<int32_t>& ids, size_t expected, int64_t vocab) {
  if (ids.size() != expected) {
    return absl::InternalError(
        absl::StrCat("ForwardGreedy returned ", ids.size(), " ids for ", expected, " rows"));
  }
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab) {
      return absl::InternalError(absl::StrCat("ForwardGreedy returned token id ", id,
                                              " outside the vocabulary [0, ", vocab, ")"));
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Measurements on one backend.

struct ShapeContext {
  const Options* options;
  CudaBackend* backend;
  ModelConfig config;
  ModelFigures figures;
  double bandwidth;     // bytes/s, measured
  double weight_bytes;  // W: linear weights read per decode step
  double state_bytes;   // S: slot bytes
};

Json Skipped(Json j, const std::string& reason) {
  j["status"] = "skipped";
  j["reason"] = reason;
  return j;
}

Json Failed(Json j, const absl::Status& status) {
  j["status"] = "error";
  j["reason"] = std::string(status.ToString());
  return j;
}

engine::cuda::DecodePath ParseDecodePath(const std::string& name) {
  using engine::cuda::DecodePath;
  return name == "graphs"    ? DecodePath::kGraphs
         : name == "buckets" ? DecodePath::kBuckets
                             : DecodePath::kGeneral;
}

// Decode at batch `batch`: reset and prefill `batch` slots, then time steps of `mode` (greedy,
// sampled or argmax; see the file comment) with decode-only steps running on `path`.
absl::StatusOr<Json> MeasureDecode(const ShapeContext& ctx, int64_t batch, const std::string& mode,
                                   const std::string& path, std::mt19937_64& rng) {
  const Options& o = *ctx.options;
  CudaBackend& be = *ctx.backend;
  const int64_t vocab = ctx.config.vocab_size;
  Json j = {
      {"batch", batch}, {"prompt_tokens", o.decode_prompt}, {"mode", mode}, {"decode_path", path}};
  if (mode == "sampled") {
    j["sampling"] = "temperature 0.8, top-p 0.95, seed per row, step counter per token";
  } else if (mode == "sampled_topk") {
    j["sampling"] = "temperature 0.8, top-k 50, top-p 0.95, seed per row, step counter per token";
  }
  const double bytes_per_step = ctx.weight_bytes + static_cast<double>(batch) * 2 * ctx.state_bytes;
  const double roofline = static_cast<double>(batch) * ctx.bandwidth / bytes_per_step;
  j["bytes_per_step"] = bytes_per_step;
  j["roofline_tok_s"] = roofline;
  if (batch > be.num_slots()) {
    return Skipped(j, absl::StrCat("batch ", batch, " > slot pool of ", be.num_slots(),
                                   " (--max-slots ", o.max_slots, ", capped by free memory)"));
  }
  // Prefill every slot with its own random prompt; the greedy tokens start the decode.
  std::vector<std::vector<int32_t>> prompts(batch);
  std::vector<ForwardRow> rows(batch);
  for (int64_t i = 0; i < batch; ++i) {
    XLSTM_RETURN_IF_ERROR(be.ResetSlot(static_cast<int32_t>(i)));
    prompts[i] = RandomTokens(rng, o.decode_prompt, vocab);
    rows[i] = ForwardRow{static_cast<int32_t>(i), prompts[i], LogitsMode::kLast};
  }
  std::vector<int32_t> ids;
  const double prefill_start = Now();
  XLSTM_RETURN_IF_ERROR(be.SetDecodePath(engine::cuda::DecodePath::kGeneral));
  XLSTM_RETURN_IF_ERROR(be.ForwardGreedy(rows, ids));
  j["setup_prefill_s"] = Now() - prefill_start;
  XLSTM_RETURN_IF_ERROR(CheckIds(ids, batch, vocab));
  XLSTM_RETURN_IF_ERROR(be.SetDecodePath(ParseDecodePath(path)));

  // One SampleSpec per row, as the engine hands them out; the step counter moves per token.
  std::vector<engine::SampleSpec> specs(batch);
  for (int64_t i = 0; i < batch; ++i) {
    if (mode == "sampled" || mode == "sampled_topk") {
      specs[i].params.temperature = 0.8;
      specs[i].params.top_p = 0.95;
      specs[i].params.top_k = mode == "sampled_topk" ? 50 : 0;
      specs[i].params.seed = o.seed + static_cast<uint64_t>(i);
    } else {
      specs[i].params.temperature = 0.0;
    }
  }
  std::vector<int32_t> next = ids;
  for (int64_t i = 0; i < batch; ++i) {
    rows[i] =
        ForwardRow{static_cast<int32_t>(i), absl::MakeConstSpan(&next[i], 1), LogitsMode::kLast};
    if (mode != "argmax") {
      rows[i].logits = LogitsMode::kNone;
      rows[i].samples = absl::MakeConstSpan(&specs[i], 1);
    }
  }
  engine::ForwardOutput out;
  auto step = [&]() -> absl::Status {
    if (mode == "argmax") {
      XLSTM_RETURN_IF_ERROR(be.ForwardGreedy(rows, ids));
    } else {
      XLSTM_RETURN_IF_ERROR(be.Forward(rows, out));
      ids.clear();
      for (const engine::TokenChoice& choice : out.samples) ids.push_back(choice.token);
      for (engine::SampleSpec& spec : specs) ++spec.step;
    }
    XLSTM_RETURN_IF_ERROR(CheckIds(ids, batch, vocab));
    std::copy(ids.begin(), ids.end(), next.begin());  // rows point into `next`
    return absl::OkStatus();
  };
  const double warm_start = Now();
  for (int64_t w = 0; w < o.warmup; ++w) XLSTM_RETURN_IF_ERROR(step());
  XLSTM_RETURN_IF_ERROR(be.Synchronize());
  const double warm_step_s = (Now() - warm_start) / static_cast<double>(o.warmup);
  int64_t steps = o.decode_steps;
  const double planned = warm_step_s * static_cast<double>(steps * o.repeats);
  if (planned > o.budget_s) {
    steps = std::max<int64_t>(
        3, static_cast<int64_t>(o.budget_s / (warm_step_s * static_cast<double>(o.repeats))));
    steps = std::min(steps, o.decode_steps);
  }
  std::vector<double> rates, step_ms;
  for (int64_t r = 0; r < o.repeats; ++r) {
    XLSTM_RETURN_IF_ERROR(be.Synchronize());
    const double start = Now();
    for (int64_t s = 0; s < steps; ++s) XLSTM_RETURN_IF_ERROR(step());
    XLSTM_RETURN_IF_ERROR(be.Synchronize());
    const double elapsed = Now() - start;
    rates.push_back(static_cast<double>(batch * steps) / elapsed);
    step_ms.push_back(1e3 * elapsed / static_cast<double>(steps));
  }
  const double tok_s = Median(rates);
  XLSTM_RETURN_IF_ERROR(be.SetDecodePath(engine::cuda::DecodePath::kGeneral));
  j["status"] = "ok";
  j["steps_per_repeat"] = steps;
  if (steps < o.decode_steps) {
    j["note"] = absl::StrFormat("steps cut from %d to %d by --budget-s %.0f", o.decode_steps, steps,
                                o.budget_s);
  }
  j["repeats"] = o.repeats;
  j["tok_s"] = tok_s;
  j["min_tok_s"] = *std::min_element(rates.begin(), rates.end());
  j["max_tok_s"] = *std::max_element(rates.begin(), rates.end());
  j["step_ms"] = Median(step_ms);
  j["achieved_gb_per_s"] = tok_s / static_cast<double>(batch) * bytes_per_step / kGB;
  j["pct_of_roofline"] = 100.0 * tok_s / roofline;
  return j;
}

// FLOPs of a Forward over `rows` rows of `tokens_per_row` tokens with kLast logits: every token
// through every block's projections, one lm_head row per row. The mLSTM cell's own arithmetic
// (~4 * DHQK * DHV per head per token, fp32) is not counted.
double PrefillFlops(const ModelFigures& m, int64_t rows, int64_t tokens_per_row) {
  return 2.0 * static_cast<double>(m.block_linear_params) *
             static_cast<double>(rows * tokens_per_row) +
         2.0 * static_cast<double>(m.lm_head_params) * static_cast<double>(rows);
}

absl::StatusOr<Json> MeasurePrefill(const ShapeContext& ctx, int64_t batch, std::mt19937_64& rng) {
  const Options& o = *ctx.options;
  CudaBackend& be = *ctx.backend;
  const int64_t t = o.prefill_tokens;
  Json j = {{"batch", batch}, {"tokens_per_row", t}, {"logits", "last"}};
  const double flops = PrefillFlops(ctx.figures, batch, t);
  const double compute_floor_s = flops / (o.peak_tflops * 1e12);
  const double memory_floor_s = (ctx.weight_bytes + batch * ctx.state_bytes) / ctx.bandwidth;
  j["flops"] = flops;
  j["compute_floor_ms"] = 1e3 * compute_floor_s;
  j["compute_floor_tok_s"] = static_cast<double>(batch * t) / compute_floor_s;
  j["memory_floor_ms"] = 1e3 * memory_floor_s;
  if (o.fp32_weights) j["note"] = "compute floor at the bf16 peak; fp32 GEMMs have a lower one";
  if (batch > be.num_slots()) {
    return Skipped(j, absl::StrCat("batch ", batch, " > slot pool of ", be.num_slots()));
  }
  std::vector<std::vector<int32_t>> prompts(batch);
  std::vector<ForwardRow> rows(batch);
  for (int64_t i = 0; i < batch; ++i) {
    prompts[i] = RandomTokens(rng, t, ctx.config.vocab_size);
    rows[i] = ForwardRow{static_cast<int32_t>(i), prompts[i], LogitsMode::kLast};
  }
  std::vector<float> logits;
  auto run = [&](double* seconds) -> absl::Status {
    for (int64_t i = 0; i < batch; ++i)
      XLSTM_RETURN_IF_ERROR(be.ResetSlot(static_cast<int32_t>(i)));
    XLSTM_RETURN_IF_ERROR(be.Synchronize());
    const double start = Now();
    XLSTM_RETURN_IF_ERROR(engine::ForwardLogits(be, rows, logits));
    XLSTM_RETURN_IF_ERROR(be.Synchronize());
    *seconds = Now() - start;
    if (logits.size() != static_cast<size_t>(batch * ctx.config.vocab_size)) {
      return absl::InternalError(absl::StrCat("Forward returned ", logits.size(), " logits"));
    }
    return absl::OkStatus();
  };
  double seconds = 0;
  for (int64_t w = 0; w < o.warmup; ++w) XLSTM_RETURN_IF_ERROR(run(&seconds));
  std::vector<double> times;
  for (int64_t r = 0; r < o.repeats; ++r) {
    XLSTM_RETURN_IF_ERROR(run(&seconds));
    times.push_back(seconds);
  }
  const double median_s = Median(times);
  j["status"] = "ok";
  j["repeats"] = o.repeats;
  j["ms"] = 1e3 * median_s;
  j["tok_s"] = static_cast<double>(batch * t) / median_s;
  j["achieved_tflops"] = flops / median_s / 1e12;
  j["pct_of_compute_floor"] = 100.0 * compute_floor_s / median_s;
  return j;
}

// Time to first token at batch 1: reset + the whole prompt in one ForwardGreedy, until the id
// is on the host. Also the same with Forward(kLast) logits copied to the host (what the server's
// sampling path waits for).
absl::StatusOr<Json> MeasureTtft(const ShapeContext& ctx, int64_t prompt_tokens,
                                 std::mt19937_64& rng) {
  const Options& o = *ctx.options;
  CudaBackend& be = *ctx.backend;
  Json j = {{"batch", 1}, {"prompt_tokens", prompt_tokens}};
  const double compute_floor_s =
      PrefillFlops(ctx.figures, 1, prompt_tokens) / (o.peak_tflops * 1e12);
  const double memory_floor_s = (ctx.weight_bytes + ctx.state_bytes) / ctx.bandwidth;
  const double floor_s = std::max(compute_floor_s, memory_floor_s);
  j["compute_floor_ms"] = 1e3 * compute_floor_s;
  j["memory_floor_ms"] = 1e3 * memory_floor_s;
  j["floor_ms"] = 1e3 * floor_s;
  const std::vector<int32_t> prompt = RandomTokens(rng, prompt_tokens, ctx.config.vocab_size);
  const ForwardRow row{0, prompt, LogitsMode::kLast};
  std::vector<int32_t> ids;
  std::vector<float> logits;
  auto greedy = [&](double* seconds) -> absl::Status {
    XLSTM_RETURN_IF_ERROR(be.Synchronize());
    const double start = Now();
    XLSTM_RETURN_IF_ERROR(be.ResetSlot(0));
    XLSTM_RETURN_IF_ERROR(be.ForwardGreedy(absl::MakeConstSpan(&row, 1), ids));
    *seconds = Now() - start;
    return CheckIds(ids, 1, ctx.config.vocab_size);
  };
  auto with_logits = [&](double* seconds) -> absl::Status {
    XLSTM_RETURN_IF_ERROR(be.Synchronize());
    const double start = Now();
    XLSTM_RETURN_IF_ERROR(be.ResetSlot(0));
    XLSTM_RETURN_IF_ERROR(engine::ForwardLogits(be, absl::MakeConstSpan(&row, 1), logits));
    const auto best = std::max_element(logits.begin(), logits.end());
    *seconds = Now() - start;
    if (logits.size() != static_cast<size_t>(ctx.config.vocab_size) || !std::isfinite(*best)) {
      return absl::InternalError("Forward returned bad logits");
    }
    return absl::OkStatus();
  };
  std::vector<double> greedy_times, logits_times;
  double seconds = 0;
  for (int64_t w = 0; w < o.warmup; ++w) {
    XLSTM_RETURN_IF_ERROR(greedy(&seconds));
    XLSTM_RETURN_IF_ERROR(with_logits(&seconds));
  }
  for (int64_t r = 0; r < o.repeats; ++r) {
    XLSTM_RETURN_IF_ERROR(greedy(&seconds));
    greedy_times.push_back(seconds);
    XLSTM_RETURN_IF_ERROR(with_logits(&seconds));
    logits_times.push_back(seconds);
  }
  const double median_s = Median(greedy_times);
  j["status"] = "ok";
  j["repeats"] = o.repeats;
  j["ms"] = 1e3 * median_s;
  j["min_ms"] = 1e3 * *std::min_element(greedy_times.begin(), greedy_times.end());
  j["ms_forward_logits"] = 1e3 * Median(logits_times);
  j["pct_of_floor"] = 100.0 * floor_s / median_s;
  return j;
}

// ---------------------------------------------------------------------------------------------
// Reporting.

std::string Thousands(double value) {
  const int64_t v = std::llround(value);
  std::string digits = absl::StrCat(v < 0 ? -v : v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

std::string Bytes(double bytes) {
  if (bytes >= kGB) return absl::StrFormat("%.2f GB", bytes / kGB);
  return absl::StrFormat("%.1f MB", bytes / 1e6);
}

std::string Markdown(const Json& s) {
  std::string out = absl::StrFormat(
      "\n### %s: D=%d, %d blocks, %d heads, vocab %d, %s weights, %s state\n\n",
      s["shape"].get<std::string>(), s["config"]["hidden_size"].get<int64_t>(),
      s["config"]["num_blocks"].get<int64_t>(), s["config"]["num_heads"].get<int64_t>(),
      s["config"]["vocab_size"].get<int64_t>(), s["weight_dtype"].get<std::string>(),
      s.value("state_dtype", std::string("float32")));
  if (s.contains("backend_options") && !s["backend_options"].value("small_batch_gemv", true)) {
    absl::StrAppend(&out, "(cuBLAS for every product: --no-gemv)\n\n");
  }
  if (s.contains("backend_options") && !s["backend_options"].value("dependent_launch", true)) {
    absl::StrAppend(&out, "(kernels in plain stream order: --no-dependent-launch)\n\n");
  }
  if (s.contains("error")) {
    absl::StrAppend(&out, "**failed**: ", s["error"].get<std::string>(), "\n\n");
  }
  if (!s.contains("memory") || !s.contains("ttft")) return out;
  const Json& m = s["memory"];
  absl::StrAppendFormat(
      &out,
      "bandwidth %.0f GB/s (d2d copy, read+write); W = %s/step; S = %s/sequence; %s params; "
      "%d slots; GPU memory in use (peak of samples) %s (weights %s, workspace %s, slots %s)\n\n",
      s["bandwidth"]["gb_per_s"].get<double>(), Bytes(s["weight_bytes_per_step"].get<double>()),
      Bytes(s["state_bytes_per_sequence"].get<double>()),
      absl::StrFormat("%.3f B", s["params"]["total"].get<double>() / 1e9),
      s["num_slots"].get<int64_t>(), Bytes(m["device_used_bytes_peak_sampled"].get<double>()),
      Bytes(m["weight_bytes"].get<double>()), Bytes(m["workspace_bytes"].get<double>()),
      Bytes(m["slot_pool_bytes"].get<double>()));
  absl::StrAppend(&out, "| measurement | measured | limit | % of limit |\n|---|---|---|---|\n");
  auto skipped = [](const Json& e) {
    return absl::StrCat("| ", e["status"].get<std::string>(), ": ", e["reason"].get<std::string>(),
                        " | | |\n");
  };
  for (const Json& e : s["decode"]) {
    absl::StrAppendFormat(&out, "| decode B=%d", e["batch"].get<int64_t>());
    if (e.contains("mode")) {
      absl::StrAppendFormat(&out, " %s, %s", e["mode"].get<std::string>(),
                            e["decode_path"].get<std::string>());
    }
    absl::StrAppend(&out, " ");
    if (e["status"] != "ok") {
      absl::StrAppend(&out, skipped(e));
      continue;
    }
    absl::StrAppendFormat(&out, "| %s tok/s (%.3f ms/step) | %s tok/s (bandwidth) | %.1f%% |\n",
                          Thousands(e["tok_s"].get<double>()), e["step_ms"].get<double>(),
                          Thousands(e["roofline_tok_s"].get<double>()),
                          e["pct_of_roofline"].get<double>());
  }
  for (const Json& e : s["prefill"]) {
    absl::StrAppendFormat(&out, "| prefill %d x %d ", e["batch"].get<int64_t>(),
                          e["tokens_per_row"].get<int64_t>());
    if (e["status"] != "ok") {
      absl::StrAppend(&out, skipped(e));
      continue;
    }
    absl::StrAppendFormat(&out, "| %s tok/s (%.2f ms) | %s tok/s (bf16 peak) | %.1f%% |\n",
                          Thousands(e["tok_s"].get<double>()), e["ms"].get<double>(),
                          Thousands(e["compute_floor_tok_s"].get<double>()),
                          e["pct_of_compute_floor"].get<double>());
  }
  for (const Json& e : s["ttft"]) {
    absl::StrAppendFormat(&out, "| TTFT %d tokens, B=1 ", e["prompt_tokens"].get<int64_t>());
    if (e["status"] != "ok") {
      absl::StrAppend(&out, skipped(e));
      continue;
    }
    absl::StrAppendFormat(&out, "| %.2f ms (%.2f ms with logits) | %.2f ms | %.1f%% |\n",
                          e["ms"].get<double>(), e["ms_forward_logits"].get<double>(),
                          e["floor_ms"].get<double>(), e["pct_of_floor"].get<double>());
  }
  return out;
}

absl::Status WriteJson(const std::string& path, const Json& j) {
  if (path.empty()) return absl::OkStatus();
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    if (!f) return absl::InternalError(absl::StrCat("cannot write ", tmp));
    f << j.dump(2) << "\n";
    if (!f) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

std::string UtcTimestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string CommandLine(int argc, char** argv) {
  std::vector<std::string> parts;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.find_first_of(" \t'\"$") != std::string::npos) {
      a = "'" + absl::StrReplaceAll(a, {{"'", "'\\''"}}) + "'";
    }
    parts.push_back(a);
  }
  return absl::StrJoin(parts, " ");
}

// ---------------------------------------------------------------------------------------------

// Runs every measurement of one shape into `s`, calling `checkpoint` after each (so that a run
// cut short by a timeout leaves what it measured). Errors of one measurement are recorded in its
// entry; an error that leaves the backend unusable ends the shape.
absl::Status RunShape(const Options& o, const std::string& shape, Json& s,
                      const std::function<void()>& checkpoint) {
  XLSTM_ASSIGN_OR_RETURN(ModelConfig config, ShapeConfig(shape, 50304));
  const ModelFigures figures = Figures(config);
  const double elt = o.fp32_weights ? 4.0 : 2.0;
  s["config"] = {{"vocab_size", config.vocab_size},  {"hidden_size", config.hidden_size},
                 {"num_blocks", config.num_blocks},  {"num_heads", config.num_heads},
                 {"qk_dim", config.qk_dim()},        {"v_dim", config.v_dim()},
                 {"ffn_dim", config.ffn_dim()},      {"qk_head_dim", config.qk_head_dim()},
                 {"v_head_dim", config.v_head_dim()}};
  s["params"] = {{"block_linear", figures.block_linear_params},
                 {"lm_head", figures.lm_head_params},
                 {"embedding", figures.embedding_params},
                 {"norms_and_biases", figures.other_params},
                 {"total", figures.total_params()}};

  // Bandwidth first, while the device is empty.
  XLSTM_ASSIGN_OR_RETURN(s["bandwidth"], MeasureBandwidth(o.bandwidth_gib, o.repeats));
  const double bandwidth = s["bandwidth"]["bytes_per_s"].get<double>();

  int64_t max_step_tokens = o.decode_prompt;
  for (int64_t b : o.prefill_batches)
    max_step_tokens = std::max(max_step_tokens, b * o.prefill_tokens);
  for (int64_t p : o.ttft_prompts) max_step_tokens = std::max(max_step_tokens, p);
  CudaBackendOptions bo;
  bo.device = static_cast<int>(o.device);
  bo.fp32_weights = o.fp32_weights;
  bo.bf16x2_activations = o.bf16x2;
  bo.small_batch_gemv = !o.no_gemv;
  bo.max_slots = static_cast<int32_t>(o.max_slots);
  bo.max_step_tokens = max_step_tokens;
  bo.max_logit_rows = std::max<int64_t>(256, o.max_slots);
  // Created with every decode path the run measures available (SetDecodePath switches).
  auto wants = [&](const char* path) {
    return std::find(o.decode_paths.begin(), o.decode_paths.end(), path) != o.decode_paths.end();
  };
  bo.state_type =
      o.state_dtype == "bfloat16" ? engine::cuda::ActType::kBF16 : engine::cuda::ActType::kF32;
  bo.decode_path = wants("graphs")    ? engine::cuda::DecodePath::kGraphs
                   : wants("buckets") ? engine::cuda::DecodePath::kBuckets
                                      : engine::cuda::DecodePath::kGeneral;
  s["backend_options"] = {{"max_slots", bo.max_slots},
                          {"max_step_tokens", bo.max_step_tokens},
                          {"max_logit_rows", bo.max_logit_rows},
                          {"reserve_bytes", bo.reserve_bytes},
                          {"fp32_weights", bo.fp32_weights},
                          {"bf16x2_activations", bo.bf16x2_activations},
                          {"state_dtype", o.state_dtype},
                          {"small_batch_gemv", bo.small_batch_gemv},
                          {"dependent_launch", engine::cuda::DependentLaunchEnabled()}};
  const double create_start = Now();
  XLSTM_ASSIGN_OR_RETURN(std::unique_ptr<CudaBackend> backend,
                         CudaBackend::CreateRandom(config, o.seed, bo));
  XLSTM_RETURN_IF_ERROR(backend->Synchronize());
  s["create_s"] = Now() - create_start;
  XLSTM_ASSIGN_OR_RETURN(auto mem, MemInfo());
  s["num_slots"] = backend->num_slots();
  const double weight_bytes = elt * static_cast<double>(figures.linear_params());
  const double state_bytes = static_cast<double>(backend->slot_bytes());
  s["weight_bytes_per_step"] = weight_bytes;
  s["weight_bytes_per_step_counted"] =
      "linear weights of every block + lm_head (no embedding table, norms or biases)";
  s["state_bytes_per_sequence"] = state_bytes;
  // C and n in the state dtype, m in fp32 (one per block and head).
  const double heads = static_cast<double>(config.num_blocks * config.num_heads);
  s["state_bytes_per_sequence_unpadded"] =
      (o.state_dtype == "bfloat16" ? 2.0 : 4.0) *
          (static_cast<double>(config.state_floats_per_sequence()) - heads) +
      4.0 * heads;
  s["memory"] = {{"device_total_bytes", mem.second},
                 {"device_free_bytes_after_setup", mem.first},
                 {"device_used_bytes", mem.second - mem.first},
                 {"weight_bytes", backend->weight_bytes()},
                 {"workspace_bytes", backend->workspace_bytes()},
                 {"slot_pool_bytes", backend->slot_bytes() * backend->num_slots()},
                 {"device_used_bytes_peak_sampled", mem.second - mem.first}};
  checkpoint();

  ShapeContext ctx{&o, backend.get(), config, figures, bandwidth, weight_bytes, state_bytes};
  std::mt19937_64 rng(o.seed ^ 0x9e3779b97f4a7c15ULL);
  absl::Status fatal = absl::OkStatus();
  // Runs one measurement; a failure is recorded and, if the backend is now failed, ends the shape.
  // Device memory in use is sampled after every measurement (cuBLAS may allocate lazily).
  auto record = [&](Json& list, Json base, const std::function<absl::StatusOr<Json>()>& fn) {
    if (!fatal.ok()) {
      list.push_back(Skipped(base, "backend failed earlier in this shape"));
      return;
    }
    absl::StatusOr<Json> result = fn();
    if (result.ok()) {
      list.push_back(*result);
    } else {
      list.push_back(Failed(base, result.status()));
      std::fprintf(stderr, "xlstm-bench: %s: %s\n", shape.c_str(),
                   result.status().ToString().c_str());
      if (absl::Status sync = backend->Synchronize(); !sync.ok()) fatal = sync;
    }
    if (absl::StatusOr<std::pair<int64_t, int64_t>> m = MemInfo(); m.ok()) {
      Json& peak = s["memory"]["device_used_bytes_peak_sampled"];
      peak = std::max(peak.get<int64_t>(), m->second - m->first);
    }
    checkpoint();
  };
  s["decode"] = Json::array();
  for (const std::string& path : o.decode_paths) {
    for (const std::string& mode : o.decode_modes) {
      const bool headline = path == o.decode_paths.front() && mode == o.decode_modes.front();
      for (int64_t b : o.decode_batches) {
        record(s["decode"], {{"batch", b}, {"mode", mode}, {"decode_path", path}}, [&] {
          absl::StatusOr<Json> e = MeasureDecode(ctx, b, mode, path, rng);
          if (e.ok()) (*e)["headline"] = headline;
          return e;
        });
      }
    }
  }
  s["prefill"] = Json::array();
  for (int64_t b : o.prefill_batches) {
    record(s["prefill"], {{"batch", b}, {"tokens_per_row", o.prefill_tokens}},
           [&] { return MeasurePrefill(ctx, b, rng); });
  }
  s["ttft"] = Json::array();
  for (int64_t p : o.ttft_prompts) {
    record(s["ttft"], {{"prompt_tokens", p}}, [&] { return MeasureTtft(ctx, p, rng); });
  }
  XLSTM_ASSIGN_OR_RETURN(auto mem_end, MemInfo());
  s["memory"]["device_used_bytes_at_end"] = mem_end.second - mem_end.first;
  if (!fatal.ok()) s["error"] = std::string(fatal.ToString());
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  absl::StatusOr<Options> parsed = ParseFlags(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "xlstm-bench: %s\n", std::string(parsed.status().message()).c_str());
    return 2;
  }
  const Options& o = *parsed;
  engine::cuda::SetDependentLaunch(!o.no_dependent_launch);
  for (const std::string& shape : o.shapes) {  // fail fast on a typo, before any GPU work
    if (absl::StatusOr<ModelConfig> c = ShapeConfig(shape, 50304); !c.ok()) {
      std::fprintf(stderr, "xlstm-bench: %s\n", c.status().ToString().c_str());
      return 2;
    }
  }
  if (engine::cuda::CudaDeviceCount() == 0) {
    std::fprintf(stderr, "xlstm-bench: no CUDA device\n");
    return 1;
  }
  absl::StatusOr<engine::cuda::CudaDeviceInfo> info =
      engine::cuda::GetCudaDeviceInfo(static_cast<int>(o.device));
  if (!info.ok()) {
    std::fprintf(stderr, "xlstm-bench: %s\n", info.status().ToString().c_str());
    return 1;
  }
  if (cudaError_t e = cudaSetDevice(static_cast<int>(o.device)); e != cudaSuccess) {
    std::fprintf(stderr, "xlstm-bench: cudaSetDevice: %s\n", cudaGetErrorString(e));
    return 1;
  }
  Json out;
  out["tool"] = "xlstm-bench";
  out["gpu"] = {{"name", info->name},
                {"sm_count", info->sm_count},
                {"compute_capability", info->compute_capability},
                {"total_bytes", info->total_bytes},
                {"device", o.device}};
  out["commit"] = o.commit.empty() ? "unknown" : o.commit;
  out["build_commit"] = XLSTM_BENCH_BUILD_COMMIT;
  out["command_line"] = CommandLine(argc, argv);
  out["timestamp"] = UtcTimestamp();
  out["settings"] = {{"decode_prompt", o.decode_prompt},
                     {"decode_steps", o.decode_steps},
                     {"prefill_tokens", o.prefill_tokens},
                     {"repeats", o.repeats},
                     {"warmup", o.warmup},
                     {"fp32_weights", o.fp32_weights},
                     {"max_slots", o.max_slots},
                     {"seed", o.seed},
                     {"peak_bf16_tflops", o.peak_tflops},
                     {"budget_s", o.budget_s},
                     {"decode_modes", o.decode_modes},
                     {"decode_paths", o.decode_paths},
                     {"state_dtype", o.state_dtype},
                     {"small_batch_gemv", !o.no_gemv},
                     {"dependent_launch", !o.no_dependent_launch},
                     {"timing", "host steady_clock around synchronous calls; median of repeats"}};
  out["shapes"] = Json::array();
  if (absl::Status w = WriteJson(o.json_path, out); !w.ok()) {  // fail before any GPU work
    std::fprintf(stderr, "xlstm-bench: %s\n", w.ToString().c_str());
    return 2;
  }
  std::printf("# xlstm-bench on %s (%d SMs, sm_%d), commit %s\n", info->name.c_str(),
              info->sm_count, info->compute_capability, out["commit"].get<std::string>().c_str());
  std::fflush(stdout);
  int rc = 0;
  for (const std::string& shape : o.shapes) {
    Json s = {{"shape", shape},
              {"weight_dtype",
               o.fp32_weights ? "fp32" : (o.bf16x2 ? "bf16 (bf16x2 activations)" : "bf16")},
              {"state_dtype", o.state_dtype}};
    const double start = Now();
    auto checkpoint = [&] {
      Json partial = out;
      partial["shapes"].push_back(s);
      if (absl::Status w = WriteJson(o.json_path, partial); !w.ok()) {
        std::fprintf(stderr, "xlstm-bench: %s\n", w.ToString().c_str());
      }
    };
    if (absl::Status status = RunShape(o, shape, s, checkpoint); !status.ok()) {
      s["error"] = std::string(status.ToString());
      std::fprintf(stderr, "xlstm-bench: %s: %s\n", shape.c_str(), status.ToString().c_str());
      rc = 1;
    }
    s["wall_s"] = Now() - start;
    if (s.contains("error")) rc = 1;
    if (s.contains("config")) std::fputs(Markdown(s).c_str(), stdout);
    std::fflush(stdout);
    if (!out.contains("bandwidth_gb_per_s") && s.contains("bandwidth")) {
      out["bandwidth_gb_per_s"] = s["bandwidth"]["gb_per_s"];
    }
    out["shapes"].push_back(std::move(s));
    if (absl::Status w = WriteJson(o.json_path, out); !w.ok()) {
      std::fprintf(stderr, "xlstm-bench: %s\n", w.ToString().c_str());
      rc = 1;
    }
  }
  return rc;
}

}  // namespace
}  // namespace xlstm::bench

int main(int argc, char** argv) { return xlstm::bench::Main(argc, argv); }
