// xlstm-layer-profile: where one layer's time goes. Times each kernel and GEMM of one xLSTM
// block (the same launchers the CUDA backend runs, in the same order) on random data with CUDA
// events, for R rows of N tokens each, and prints a per-kernel table. The per-kernel breakdown
// in tests/bench/NOTES.md comes from this program.
//
//   xlstm-layer-profile D NUM_HEADS ROWS TOKENS_PER_ROW [STATE_DTYPE]
//   (STATE_DTYPE: float32, the default, or bfloat16: the recurrent state's storage)
//   e.g. xlstm-layer-profile 4096 8 1 2048    (the 7B shape, one 2048-token prefill)
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "engine/cuda/device_buffer.h"
#include "engine/cuda/gemm.h"
#include "engine/cuda/gemv_bf16.h"
#include "engine/cuda/kernels.h"
#include "engine/model_config.h"

namespace {

using namespace xlstm::engine::cuda;  // NOLINT: a small program

void Check(const absl::Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "xlstm-layer-profile: %s\n", s.ToString().c_str());
    std::exit(1);
  }
}

DeviceBuffer Alloc(size_t bytes) {
  absl::StatusOr<DeviceBuffer> b = DeviceBuffer::Allocate(bytes, "profile buffer");
  Check(b.status());
  return *std::move(b);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) {
    std::fprintf(stderr,
                 "usage: xlstm-layer-profile D NUM_HEADS ROWS TOKENS_PER_ROW "
                 "[float32|bfloat16]\n");
    return 2;
  }
  const std::string state_dtype = argc == 6 ? argv[5] : "float32";
  if (state_dtype != "float32" && state_dtype != "bfloat16") {
    std::fprintf(stderr, "xlstm-layer-profile: state dtype must be float32 or bfloat16\n");
    return 2;
  }
  const ActType state_type = state_dtype == "bfloat16" ? ActType::kBF16 : ActType::kF32;
  xlstm::engine::ModelConfig c;
  c.hidden_size = c.embedding_dim = std::atoi(argv[1]);
  c.num_heads = std::atoi(argv[2]);
  const int64_t R = std::atoi(argv[3]), per = std::atoi(argv[4]);
  if (c.hidden_size <= 0 || c.num_heads <= 0 || R <= 0 || per <= 0 ||
      c.qk_dim() % c.num_heads != 0) {
    std::fprintf(stderr, "xlstm-layer-profile: bad shape\n");
    return 2;
  }
  const int64_t D = c.hidden_size, NH = c.num_heads, QK = c.qk_dim(), V = c.v_dim(),
                F = c.ffn_dim(), dqk = c.qk_head_dim(), dv = c.v_head_dim(), T = R * per;
  const int64_t P = 2 * QK + 2 * V + 2 * NH;
  cudaStream_t st;
  cudaStreamCreate(&st);
  absl::StatusOr<std::unique_ptr<Gemm>> gemm_or = Gemm::Create(st);
  Check(gemm_or.status());
  Gemm& gemm = **gemm_or;
  // The same products through the small-batch GEMV (gemv_bf16.h), timed next to cuBLAS's when
  // there are at most Gemm::kGemvRouteRows tokens (the rows Gemm routes to it).
  absl::StatusOr<std::unique_ptr<Gemm>> gemv_or = Gemm::Create(st);
  Check(gemv_or.status());
  Gemm& gemv = **gemv_or;
  gemv.EnableSmallBatchGemv();
  DeviceBuffer x = Alloc(T * D * 4), act = Alloc(T * std::max({D, V, F}) * 2),
               proj = Alloc(T * P * 4), up = Alloc(T * 2 * F * 4);
  DeviceBuffer w_in = Alloc(P * D * 2), w_out = Alloc(D * V * 2), w_up = Alloc(2 * F * D * 2),
               w_down = Alloc(D * F * 2);
  DeviceBuffer ones = Alloc(std::max({V, 2 * F, D}) * 4), gates = Alloc(T * NH * 3 * 4);
  const StateLayout layout = StateLayout::For(1, NH, dqk, dv, state_type);
  const ScanPlan plan = ScanPlan::For(dqk, dv);
  DeviceBuffer states = Alloc(R * layout.slot_bytes()),
               partial = Alloc(plan.splits * T * NH * plan.partial_width * 4),
               meta = Alloc(3 * R * 4);
  std::vector<int32_t> host_meta(3 * R);
  for (int64_t r = 0; r < R; ++r) {
    host_meta[r] = static_cast<int32_t>(r);
    host_meta[R + r] = static_cast<int32_t>(r * per);
    host_meta[2 * R + r] = static_cast<int32_t>(per);
  }
  cudaMemcpy(meta.data(), host_meta.data(), host_meta.size() * 4, cudaMemcpyHostToDevice);
  const StepRows rows{meta.as<int32_t>(), meta.as<int32_t>() + R, meta.as<int32_t>() + 2 * R,
                      static_cast<int32_t>(R), static_cast<int32_t>(per)};
  Check(LaunchRandomNormal(x.data(), ActType::kF32, T * D, 1, 0, 1, st));
  Check(LaunchRandomNormal(proj.data(), ActType::kF32, T * P, 2, 0, 1, st));
  Check(LaunchRandomNormal(up.data(), ActType::kF32, T * 2 * F, 3, 0, 1, st));
  for (DeviceBuffer* b : {&w_in, &w_out, &w_up, &w_down}) {
    Check(LaunchRandomNormal(b->data(), ActType::kBF16, b->bytes() / 2, 4, 0, 0.02f, st));
  }
  Check(LaunchFill(ones.as<float>(), std::max({V, 2 * F, D}), 1.0f, st));
  if (cudaMemsetAsync(states.data(), 0, R * layout.slot_bytes(), st) != cudaSuccess) {
    Check(absl::InternalError("cudaMemsetAsync(states) failed"));
  }
  const DeviceMatrix in_proj{w_in.data(), P, D, ActType::kBF16},
      out_proj{w_out.data(), D, V, ActType::kBF16}, up_proj{w_up.data(), 2 * F, D, ActType::kBF16},
      down_proj{w_down.data(), D, F, ActType::kBF16};
  const int64_t i_col = 2 * QK + 2 * V, f_col = i_col + NH, o_col = 2 * QK + V;
  struct Step {
    const char* name;
    std::function<absl::Status()> run;
  };
  const std::vector<Step> steps = {
      {"rms_norm",
       [&] {
         return LaunchRmsNorm(x.as<float>(), T, D, ones.as<float>(), nullptr, 1e-6f, act.data(),
                              ActType::kBF16, st);
       }},
      {"gemm_in_proj",
       [&] { return gemm.Linear(in_proj, act.data(), T, proj.as<float>(), P, false); }},
      {"mlstm_gates",
       [&] {
         return LaunchMlstmGates(proj.as<float>(), P, i_col, f_col, ones.as<float>(),
                                 ones.as<float>(), 15.f, rows, layout, 0, states.data(),
                                 gates.as<float>(), st);
       }},
      {"mlstm_scan",
       [&] {
         return LaunchMlstmScan(proj.as<float>(), P, 0, QK, 2 * QK, gates.as<float>(), rows, layout,
                                plan, 0, T, states.data(), partial.as<float>(), st);
       }},
      {"head_norm_gate",
       [&] {
         return LaunchHeadNormGate(partial.as<float>(), plan, gates.as<float>(), proj.as<float>(),
                                   P, o_col, ones.as<float>(), nullptr, T, NH, dv, 1e-6f, 1e-6f,
                                   act.data(), ActType::kBF16, st);
       }},
      {"gemm_out_proj",
       [&] { return gemm.Linear(out_proj, act.data(), T, x.as<float>(), D, true); }},
      {"rms_norm_ffn",
       [&] {
         return LaunchRmsNorm(x.as<float>(), T, D, ones.as<float>(), nullptr, 1e-6f, act.data(),
                              ActType::kBF16, st);
       }},
      {"gemm_up_proj",
       [&] { return gemm.Linear(up_proj, act.data(), T, up.as<float>(), 2 * F, false); }},
      {"swiglu",
       [&] {
         return LaunchSwiGlu(up.as<float>(), T, F, nullptr, nullptr, act.data(), ActType::kBF16,
                             st);
       }},
      {"gemm_down_proj",
       [&] { return gemm.Linear(down_proj, act.data(), T, x.as<float>(), D, true); }},
  };
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  std::printf(
      "D=%ld heads=%ld: %ld rows x %ld tokens, %s state (dqk %ld, dv %ld; scan: %d rows x %d "
      "columns per thread, %d splits, %d column tiles, n %s)\n\n| kernel | ms per layer "
      "|\n|---|---|\n",
      D, NH, R, per, state_dtype.c_str(), dqk, dv, plan.rows_per_thread, plan.columns_per_thread,
      plan.splits, plan.column_tiles, plan.n_spread ? "spread over the tiles" : "as column dv");
  std::vector<Step> all_steps = steps;
  if (T <= Gemm::kGemvRouteRows) {
    all_steps.push_back({"gemv_in_proj (instead of gemm_in_proj)", [&] {
                           return gemv.Linear(in_proj, act.data(), T, proj.as<float>(), P, false);
                         }});
    all_steps.push_back({"gemv_out_proj", [&] {
                           return gemv.Linear(out_proj, act.data(), T, x.as<float>(), D, true);
                         }});
    all_steps.push_back({"gemv_up_proj", [&] {
                           return gemv.Linear(up_proj, act.data(), T, up.as<float>(), 2 * F, false);
                         }});
    all_steps.push_back({"gemv_down_proj", [&] {
                           return gemv.Linear(down_proj, act.data(), T, x.as<float>(), D, true);
                         }});
  }
  double total = 0, gemm_total = 0, gemv_total = 0;
  constexpr int kRepeats = 5;
  for (const Step& step : all_steps) {
    for (int i = 0; i < 2; ++i) Check(step.run());  // warm-up (cuBLAS heuristics, caches)
    cudaEventRecord(start, st);
    for (int i = 0; i < kRepeats; ++i) Check(step.run());
    cudaEventRecord(stop, st);
    if (cudaEventSynchronize(stop) != cudaSuccess) {
      std::fprintf(stderr, "xlstm-layer-profile: device fault\n");
      return 1;
    }
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    ms /= kRepeats;
    const std::string name = step.name;
    if (name.rfind("gemv_", 0) == 0) {
      gemv_total += ms;
    } else {
      total += ms;
      if (name.rfind("gemm_", 0) == 0) gemm_total += ms;
    }
    std::printf("| %s | %.3f |\n", step.name, ms);
  }
  std::printf("| total | %.3f |\n", total);
  if (gemv_total > 0) std::printf("| total with GEMV | %.3f |\n", total - gemm_total + gemv_total);
  return 0;
}
