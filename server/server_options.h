// Every setting of xlstm-server, with its default: the server's own (ports, drain, logging), the
// engine's (engine::EngineOptions), the backend's (engine::BackendOptions) and the request
// limits. ServerOptionTable() is the one table that parses, checks and prints them (--help and
// the start-up printout); the service reads the struct (immutable after start-up).
#ifndef XLSTM_SERVER_SERVER_OPTIONS_H_
#define XLSTM_SERVER_SERVER_OPTIONS_H_

#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "common/option_table.h"
#include "engine/backend_factory.h"
#include "engine/serving/engine.h"
#include "engine/serving/request_validation.h"
#include "server/request_log.h"

namespace xlstm::server {

// 50052: beside the gRPC port (the pair Triton uses as 8001/8002), away from the 9xxx range of
// Prometheus (9090), its Alertmanager and Pushgateway (9091-9093) and the exporters, and not
// Triton's own 8002, so that both servers and a Prometheus can share a node.
inline constexpr int32_t kDefaultMetricsPort = 50052;

// Whether grpc.reflection is served. gRPC's reflection service cannot check our tokens, so with
// --auth-token-file it is off unless the operator asks for it to be public.
enum class ReflectionMode { kUnlessAuth, kPublic, kOff };
inline constexpr std::array<std::pair<absl::string_view, ReflectionMode>, 3> kReflectionModeNames =
    {{
        {"unless-auth", ReflectionMode::kUnlessAuth},
        {"public", ReflectionMode::kPublic},
        {"off", ReflectionMode::kOff},
    }};

struct ServerOptions {
  // The server process.
  std::string model_dir;
  std::string host = "0.0.0.0";
  int32_t port = 50051;
  int32_t metrics_port = kDefaultMetricsPort;  // 0: pick a free one; -1: no metrics endpoint
  // Loopback by default: /metrics has no authentication and tells anyone who can reach it the
  // model's traffic and the server's limits, so exposing it is the operator's explicit choice.
  std::string metrics_host = "127.0.0.1";
  double drain_grace_seconds = 30;
  LogFormat log_format = LogFormat::kText;
  LogLevel log_level = LogLevel::kInfo;
  double stats_interval_seconds = 10;  // 0: no periodic stats line
  std::string auth_token_file;         // empty: no authentication
  std::string tls_cert;                // empty: plaintext (with tls_key)
  std::string tls_key;
  std::string tls_client_ca;        // non-empty: mutual TLS
  int32_t tls_reload_seconds = 10;  // how often the certificate files are re-read
  ReflectionMode reflection = ReflectionMode::kUnlessAuth;

  // The backend (engine::BackendOptions).
  engine::BackendKind backend = engine::BackendKind::kAuto;
  engine::WeightDtype weight_dtype = engine::WeightDtype::kBfloat16;
  engine::ActivationDtype activation_dtype = engine::ActivationDtype::kBfloat16;
  engine::StateDtype state_dtype = engine::StateDtype::kFloat32;
  int32_t num_slots = 64;

  // The engine (engine::EngineOptions); defaults are the engine's own.
  int32_t max_queue = engine::EngineOptions{}.max_queue;
  int32_t step_token_budget = engine::EngineOptions{}.step_token_budget;

  // Request limits (engine::RequestLimits, whose defaults are the only ones), checked by the
  // service and again by the engine.
  int32_t max_prompt_tokens = engine::RequestLimits{}.max_prompt_tokens;
  int32_t max_new_tokens_limit = engine::RequestLimits{}.max_new_tokens;
  int32_t default_max_new_tokens = engine::RequestLimits{}.default_max_new_tokens;
  int32_t max_message_bytes = 16 << 20;
  int32_t max_n = engine::RequestLimits{}.max_n;
  int32_t max_stop_strings = engine::RequestLimits{}.max_stop_strings;
  int32_t max_stop_string_bytes = engine::RequestLimits{}.max_stop_string_bytes;
  int32_t max_score_items = engine::RequestLimits{}.max_score_items;
  int32_t max_continuations = engine::RequestLimits{}.max_continuations;
  int32_t max_embed_inputs = engine::RequestLimits{}.max_embed_inputs;
  int32_t max_embed_positions = engine::RequestLimits{}.max_embed_positions;
};

// The table of xlstm-server's options (built once).
const cli::OptionTable<ServerOptions>& ServerOptionTable();

engine::RequestLimits RequestLimitsOf(const ServerOptions& options);
engine::EngineOptions EngineOptionsOf(const ServerOptions& options);
engine::BackendOptions BackendOptionsOf(const ServerOptions& options);

}  // namespace xlstm::server

#endif  // XLSTM_SERVER_SERVER_OPTIONS_H_
