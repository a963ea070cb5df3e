// Every limit and setting of xlstm-server, with its default. Filled from flags by main.cc and
// read by the service (immutable after start-up).
#ifndef XLSTM_SERVER_SERVER_OPTIONS_H_
#define XLSTM_SERVER_SERVER_OPTIONS_H_

#include <cstdint>
#include <string>

namespace xlstm::server {

struct ServerOptions {
  std::string model_dir;
  std::string host = "0.0.0.0";
  int32_t port = 50051;
  int32_t metrics_port = 9090;  // -1: no metrics endpoint
  std::string backend = "auto";
  std::string weight_dtype = "bfloat16";      // CUDA backend weights
  std::string activation_dtype = "bfloat16";  // CUDA GEMM activations (bf16 weights)
  int32_t num_slots = 64;
  int32_t max_queue = 256;
  int32_t max_prompt_tokens = 4096;
  int32_t max_new_tokens_limit = 4096;
  int32_t default_max_new_tokens = 64;
  int32_t step_token_budget = 512;
  int32_t max_message_bytes = 16 << 20;
  double drain_grace_seconds = 30;
  int32_t max_n = 16;
  int32_t max_stop_strings = 16;
  int32_t max_stop_string_bytes = 256;
  int32_t max_score_items = 64;
  int32_t max_continuations = 16;
};

}  // namespace xlstm::server

#endif  // XLSTM_SERVER_SERVER_OPTIONS_H_
