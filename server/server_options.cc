#include "server/server_options.h"

#include <limits>

#include "absl/strings/str_cat.h"

namespace xlstm::server {
namespace {

using Table = cli::OptionTable<ServerOptions>;
using O = ServerOptions;

constexpr int32_t kMaxPort = 65535;
constexpr int32_t kMaxTokens = 1 << 20;
constexpr int32_t kMaxCount = 1 << 16;
constexpr double kMaxSeconds = 86400;

Table BuildTable() {
  Table t("xlstm-server", "xlstm-server --model DIR [--port N] [--metrics-port M] [options]");
  t.Group("Server")
      .Text("model", &O::model_dir,
            "model directory (config.json, *.safetensors, optional tokenizer.json)", "DIR",
            /*required=*/true)
      .Text("host", &O::host, "address the gRPC server listens on", "ADDRESS")
      .Integer("port", &O::port, 0, kMaxPort,
               "gRPC port (0: pick a free one); a port in use is a start-up error")
      .Integer("metrics_port", &O::metrics_port, -1, kMaxPort,
               "Prometheus /metrics HTTP port (0: pick a free one; -1: off)")
      .Text("metrics_host", &O::metrics_host,
            "address /metrics listens on; loopback by default, since the page has no\n"
            "authentication (0.0.0.0 or the pod IP for a Prometheus on another host)",
            "ADDRESS")
      .Real("drain_grace_seconds", &O::drain_grace_seconds, 0, kMaxSeconds,
            "on SIGTERM or SIGINT, time in-flight requests get to finish", "SECONDS")
      .Choice("log_format", &O::log_format, kLogFormatNames,
              "log lines on stderr: text, or json (one object per line, for log collectors)")
      .Choice("log_level", &O::log_level, kLogLevelNames,
              "least severe log lines written: info and debug write a line per request and\n"
              "the stats lines; warning and error only server problems (and requests that failed\n"
              "inside the server)")
      .Real("stats_interval_seconds", &O::stats_interval_seconds, 0, kMaxSeconds,
            "a stats line (running, waiting, slots, tokens/s) this often while busy; 0: off",
            "SECONDS")
      .Text("auth_token_file", &O::auth_token_file,
            "bearer tokens, one a line, re-read when the file changes: every xlstm.v1 RPC\n"
            "then needs 'authorization: Bearer TOKEN' (health never does); empty: no auth",
            "PATH")
      .Text("tls_cert", &O::tls_cert,
            "PEM certificate chain: serve gRPC over TLS (with --tls-key); re-read when it\n"
            "changes",
            "PATH")
      .Text("tls_key", &O::tls_key, "PEM private key of --tls-cert", "PATH")
      .Text("tls_client_ca", &O::tls_client_ca,
            "PEM CA bundle: mutual TLS, every client must present a certificate it signed", "PATH")
      .Integer("tls_reload_seconds", &O::tls_reload_seconds, 1, 86400,
               "how often the TLS files are re-read (rotation without a restart)")
      .Choice("reflection", &O::reflection, kReflectionModeNames,
              "grpc.reflection: unless-auth (on without --auth-token-file, off with it),\n"
              "public (on, without a token even when auth is on), off");
  t.Group("Backend (engine::BackendOptions)")
      .Choice("backend", &O::backend, engine::kBackendKindNames,
              "compute backend (auto: cuda when this build has it and a GPU is visible)")
      .Choice("weight_dtype", &O::weight_dtype, engine::kWeightDtypeNames,
              "CUDA backend weights (float32: exact comparisons with the CPU reference)")
      .Choice("activation_dtype", &O::activation_dtype, engine::kActivationDtypeNames,
              "CUDA GEMM activations with bfloat16 weights (bfloat16x2: a bf16 pair, ~16 bits,\n"
              "closer to float32 results; prefill GEMMs do twice the work)")
      .Choice("state_dtype", &O::state_dtype, engine::kStateDtypeNames,
              "CUDA recurrent state C and n (bfloat16 halves a decode step's state traffic;\n"
              "accuracy cost in tests/bench/NOTES.md)")
      .Integer("num_slots", &O::num_slots, 1, kMaxCount,
               "recurrent-state slots: the most sequences decoded at once (CUDA: at most, as\n"
               "device memory permits)");
  t.Group("Engine (engine::EngineOptions)")
      .Integer("max_queue", &O::max_queue, 0, kMaxTokens,
               "most requests waiting for a slot; beyond it RESOURCE_EXHAUSTED at once")
      .Integer("step_token_budget", &O::step_token_budget, 1, kMaxTokens,
               "tokens fed per engine step (long prompts are prefilled in chunks)");
  t.Group("Request limits")
      .Integer("max_prompt_tokens", &O::max_prompt_tokens, 1, kMaxTokens,
               "most prompt tokens (Score: context + continuation)")
      .Integer("max_new_tokens_limit", &O::max_new_tokens_limit, 1, kMaxTokens,
               "largest max_new_tokens a request may ask for")
      .Integer("default_max_new_tokens", &O::default_max_new_tokens, 1, kMaxTokens,
               "max_new_tokens of a request that leaves it unset")
      .Integer("max_message_bytes", &O::max_message_bytes, 1024,
               std::numeric_limits<int32_t>::max(), "largest gRPC message, both ways")
      .Integer("max_n", &O::max_n, 1, 1024, "most parallel samples per request")
      .Integer("max_stop_strings", &O::max_stop_strings, 0, 1024, "most stop strings per request")
      .Integer("max_stop_string_bytes", &O::max_stop_string_bytes, 1, kMaxCount,
               "longest stop string, bytes")
      .Integer("max_score_items", &O::max_score_items, 1, kMaxCount, "most items per Score request")
      .Integer("max_continuations", &O::max_continuations, 1, kMaxCount,
               "most continuations per Score item")
      .Integer("max_embed_inputs", &O::max_embed_inputs, 1, kMaxCount,
               "most inputs per Embed request")
      .Integer("max_embed_positions", &O::max_embed_positions, 1, kMaxTokens,
               "most tokens of an Embed input with pooling = all (one row each)");
  t.Check([](const ServerOptions& o) -> absl::Status {
    if (o.default_max_new_tokens <= o.max_new_tokens_limit) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("--default-max-new-tokens: ", o.default_max_new_tokens,
                     " is above --max-new-tokens-limit ", o.max_new_tokens_limit));
  });
  t.Check([](const ServerOptions& o) -> absl::Status {
    if (o.tls_cert.empty() != o.tls_key.empty()) {
      return absl::InvalidArgumentError("--tls-cert and --tls-key: give both or neither");
    }
    if (!o.tls_client_ca.empty() && o.tls_cert.empty()) {
      return absl::InvalidArgumentError(
          "--tls-client-ca: mutual TLS needs the server's own --tls-cert and --tls-key");
    }
    return absl::OkStatus();
  });
  return t;
}

}  // namespace

const cli::OptionTable<ServerOptions>& ServerOptionTable() {
  static const Table* const table = new Table(BuildTable());
  return *table;
}

engine::RequestLimits RequestLimitsOf(const ServerOptions& o) {
  engine::RequestLimits limits;
  limits.max_prompt_tokens = o.max_prompt_tokens;
  limits.max_new_tokens = o.max_new_tokens_limit;
  limits.default_max_new_tokens = o.default_max_new_tokens;
  limits.max_n = o.max_n;
  limits.max_stop_strings = o.max_stop_strings;
  limits.max_stop_string_bytes = o.max_stop_string_bytes;
  limits.max_score_items = o.max_score_items;
  limits.max_continuations = o.max_continuations;
  limits.max_embed_inputs = o.max_embed_inputs;
  limits.max_embed_positions = o.max_embed_positions;
  return limits;
}

engine::EngineOptions EngineOptionsOf(const ServerOptions& o) {
  engine::EngineOptions options;
  options.max_queue = o.max_queue;
  options.step_token_budget = o.step_token_budget;
  options.limits = RequestLimitsOf(o);
  return options;
}

engine::BackendOptions BackendOptionsOf(const ServerOptions& o) {
  engine::BackendOptions options;
  options.kind = o.backend;
  options.weight_dtype = o.weight_dtype;
  options.activation_dtype = o.activation_dtype;
  options.state_dtype = o.state_dtype;
  options.max_slots = o.num_slots;
  options.step_token_budget = o.step_token_budget;
  return options;
}

}  // namespace xlstm::server
