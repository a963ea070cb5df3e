// xlstm-server: the gRPC inference server.
//
//   xlstm-server --model DIR --port 50051 --metrics-port 9090 --backend auto
//
// Start-up: the gRPC port opens first with health NOT_SERVING (RPCs answer UNAVAILABLE), the
// model loads, then health turns SERVING. SIGTERM/SIGINT: health NOT_SERVING, new RPCs answer
// UNAVAILABLE, in-flight requests get --drain-grace-seconds to finish, the rest end with
// UNAVAILABLE, exit 0.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "engine/serving/engine.h"
#include "engine/util/status_macros.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/backend_factory.h"
#include "server/inference_service.h"
#include "server/metrics.h"
#include "server/server_options.h"
#include "server/text_codec.h"
#include "tools/common/flag_names.h"

ABSL_FLAG(std::string, model, "", "model directory (config.json, *.safetensors, tokenizer.json)");
ABSL_FLAG(std::string, host, "0.0.0.0", "address to listen on");
ABSL_FLAG(int32_t, port, 50051, "gRPC port (0: pick a free one)");
ABSL_FLAG(int32_t, metrics_port, 9090, "Prometheus /metrics port (0: pick; -1: off)");
ABSL_FLAG(std::string, backend, "auto", "auto | cpu | cuda (auto: cuda when a GPU is visible)");
ABSL_FLAG(std::string, weight_dtype, "bfloat16",
          "CUDA backend weights: bfloat16 | float32 (exact comparisons with the CPU reference)");
ABSL_FLAG(std::string, activation_dtype, "bfloat16",
          "CUDA GEMM activations with bfloat16 weights: bfloat16 | bfloat16x2 (a bf16 pair, ~16 "
          "bits: closer to float32 results; prefill GEMMs do twice the work)");
ABSL_FLAG(int32_t, num_slots, 64, "recurrent-state slots (max concurrent sequences)");
ABSL_FLAG(int32_t, max_queue, 256, "max waiting requests; beyond: RESOURCE_EXHAUSTED");
ABSL_FLAG(int32_t, max_prompt_tokens, 4096, "max prompt (or score context+continuation) tokens");
ABSL_FLAG(int32_t, max_new_tokens_limit, 4096, "max max_new_tokens a request may ask for");
ABSL_FLAG(int32_t, default_max_new_tokens, 64, "max_new_tokens when a request leaves it 0");
ABSL_FLAG(int32_t, step_token_budget, 512, "tokens fed per engine step (prefill chunking)");
ABSL_FLAG(int32_t, max_message_bytes, 16 << 20, "max gRPC message size, both ways");
ABSL_FLAG(double, drain_grace_seconds, 30, "on SIGTERM, time in-flight requests get to finish");
ABSL_FLAG(int32_t, max_n, 16, "max parallel samples per request");
ABSL_FLAG(int32_t, max_stop_strings, 16, "max stop strings per request");
ABSL_FLAG(int32_t, max_stop_string_bytes, 256, "max bytes per stop string");
ABSL_FLAG(int32_t, max_score_items, 64, "max items per Score request");
ABSL_FLAG(int32_t, max_continuations, 16, "max continuations per Score item");

namespace xlstm::server {
namespace {

constexpr char kServiceName[] = "xlstm.v1.Inference";

ServerOptions OptionsFromFlags() {
  ServerOptions o;
  o.model_dir = absl::GetFlag(FLAGS_model);
  o.host = absl::GetFlag(FLAGS_host);
  o.port = absl::GetFlag(FLAGS_port);
  o.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  o.backend = absl::GetFlag(FLAGS_backend);
  o.weight_dtype = absl::GetFlag(FLAGS_weight_dtype);
  o.activation_dtype = absl::GetFlag(FLAGS_activation_dtype);
  o.num_slots = absl::GetFlag(FLAGS_num_slots);
  o.max_queue = absl::GetFlag(FLAGS_max_queue);
  o.max_prompt_tokens = absl::GetFlag(FLAGS_max_prompt_tokens);
  o.max_new_tokens_limit = absl::GetFlag(FLAGS_max_new_tokens_limit);
  o.default_max_new_tokens = absl::GetFlag(FLAGS_default_max_new_tokens);
  o.step_token_budget = absl::GetFlag(FLAGS_step_token_budget);
  o.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  o.drain_grace_seconds = absl::GetFlag(FLAGS_drain_grace_seconds);
  o.max_n = absl::GetFlag(FLAGS_max_n);
  o.max_stop_strings = absl::GetFlag(FLAGS_max_stop_strings);
  o.max_stop_string_bytes = absl::GetFlag(FLAGS_max_stop_string_bytes);
  o.max_score_items = absl::GetFlag(FLAGS_max_score_items);
  o.max_continuations = absl::GetFlag(FLAGS_max_continuations);
  return o;
}

BackendChoice ChoiceFrom(const ServerOptions& o) {
  BackendChoice choice;
  choice.backend = o.backend;
  choice.weight_dtype = o.weight_dtype;
  choice.activation_dtype = o.activation_dtype;
  choice.max_slots = o.num_slots;
  choice.step_token_budget = o.step_token_budget;
  return choice;
}

absl::Status CheckOptions(const ServerOptions& o) {
  if (o.model_dir.empty()) return absl::InvalidArgumentError("--model is required");
  XLSTM_RETURN_IF_ERROR(CheckBackendChoice(ChoiceFrom(o)));
  auto positive = [](const char* name, int64_t v) -> absl::Status {
    if (v >= 1) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat("--", name, " = ", v, " must be >= 1"));
  };
  for (auto [name, v] : {std::pair<const char*, int64_t>{"num-slots", o.num_slots},
                         {"max-prompt-tokens", o.max_prompt_tokens},
                         {"max-new-tokens-limit", o.max_new_tokens_limit},
                         {"step-token-budget", o.step_token_budget},
                         {"max-message-bytes", o.max_message_bytes},
                         {"max-n", o.max_n}}) {
    if (absl::Status s = positive(name, v); !s.ok()) return s;
  }
  if (o.max_queue < 0) return absl::InvalidArgumentError("--max-queue must be >= 0");
  if (o.drain_grace_seconds < 0) return absl::InvalidArgumentError("--drain-grace-seconds < 0");
  return absl::OkStatus();
}

void PrintOptions(const ServerOptions& o) {
  std::printf(
      "xlstm-server configuration:\n  model                  %s\n  host                   %s\n"
      "  port                   %d\n  metrics-port           %d\n  backend                %s%s\n"
      "  weight-dtype           %s\n  activation-dtype       %s\n"
      "  num-slots              %d\n  max-queue              %d\n  max-prompt-tokens      %d\n"
      "  max-new-tokens-limit   %d\n  default-max-new-tokens %d\n  step-token-budget      %d\n"
      "  max-message-bytes      %d\n  drain-grace-seconds    %g\n  max-n                  %d\n"
      "  max-stop-strings       %d\n  max-stop-string-bytes  %d\n  max-score-items        %d\n"
      "  max-continuations      %d\n",
      o.model_dir.c_str(), o.host.c_str(), o.port, o.metrics_port, o.backend.c_str(),
      o.backend == "auto" ? absl::StrCat(" (-> ", ResolveBackendName("auto"), ")").c_str() : "",
      o.weight_dtype.c_str(), o.activation_dtype.c_str(), o.num_slots, o.max_queue,
      o.max_prompt_tokens, o.max_new_tokens_limit, o.default_max_new_tokens, o.step_token_budget,
      o.max_message_bytes, o.drain_grace_seconds, o.max_n, o.max_stop_strings,
      o.max_stop_string_bytes, o.max_score_items, o.max_continuations);
  std::fflush(stdout);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int Serve() {
  const ServerOptions options = OptionsFromFlags();
  if (absl::Status s = CheckOptions(options); !s.ok()) {
    std::fprintf(stderr, "xlstm-server: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  PrintOptions(options);

  // Signals are taken by sigwait in this thread only: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<Metrics> metrics;
  if (options.metrics_port >= 0) {
    try {
      metrics = std::make_unique<Metrics>(absl::StrCat(options.host, ":", options.metrics_port));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "xlstm-server: metrics port %d: %s\n", options.metrics_port, e.what());
      return 1;
    }
  }
  InferenceService service(options, metrics.get());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(absl::StrCat(options.host, ":", options.port),
                           grpc::InsecureServerCredentials(), &grpc_port);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || grpc_port == 0) {
    std::fprintf(stderr, "xlstm-server: cannot listen on %s:%d\n", options.host.c_str(),
                 options.port);
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  auto set_health = [&](bool serving) {
    health->SetServingStatus(serving);
    health->SetServingStatus(kServiceName, serving);
  };
  set_health(false);
  std::printf("xlstm-server: listening on %s:%d (loading the model)\n", options.host.c_str(),
              grpc_port);
  std::fflush(stdout);

  absl::StatusOr<std::unique_ptr<engine::Backend>> backend =
      CreateBackend(options.model_dir, ChoiceFrom(options));
  absl::StatusOr<std::unique_ptr<TextCodec>> codec = TextCodec::Load(options.model_dir);
  if (!backend.ok() || !codec.ok()) {
    const absl::Status& s = !backend.ok() ? backend.status() : codec.status();
    std::fprintf(stderr, "xlstm-server: %s\n", std::string(s.message()).c_str());
    server->Shutdown();
    return 1;
  }
  engine::EngineOptions engine_options;
  engine_options.max_queue = options.max_queue;
  engine_options.step_token_budget = options.step_token_budget;
  absl::StatusOr<std::unique_ptr<engine::Engine>> engine =
      engine::Engine::Create(*std::move(backend), engine_options, metrics.get());
  if (!engine.ok()) {
    std::fprintf(stderr, "xlstm-server: %s\n", std::string(engine.status().message()).c_str());
    server->Shutdown();
    return 1;
  }
  service.SetEngine(engine->get(), codec->get(), ReadFile(options.model_dir + "/config.json"));
  if (metrics) metrics->SetEngine(engine->get());
  set_health(true);
  std::printf("xlstm-server: ready grpc_port=%d metrics_port=%d backend=%s slots=%d tokenizer=%s\n",
              grpc_port, metrics ? metrics->port() : -1, (*engine)->backend_name().c_str(),
              (*engine)->num_slots(), *codec ? "yes" : "no");
  std::fflush(stdout);

  // Wait for SIGTERM/SIGINT, checking once a second that the engine is still healthy: after a
  // device fault the process exits non-zero so that an orchestrator restarts it.
  int signal = 0;
  const timespec poll_interval{1, 0};
  while (true) {
    signal = sigtimedwait(&signals, nullptr, &poll_interval);
    if (signal > 0) break;
    const engine::EngineStats stats = (*engine)->Stats();
    if (stats.failed) {
      std::fprintf(stderr, "xlstm-server: the engine failed (%s); exiting\n", stats.fault.c_str());
      set_health(false);
      service.BeginDrain();
      (*engine)->Shutdown(absl::ZeroDuration());
      server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
      if (metrics) metrics->SetEngine(nullptr);
      return 3;
    }
  }
  std::printf("xlstm-server: signal %d: draining (grace %gs)\n", signal,
              options.drain_grace_seconds);
  std::fflush(stdout);
  set_health(false);
  service.BeginDrain();
  (*engine)->Shutdown(absl::Seconds(options.drain_grace_seconds));
  // Every engine request has ended; give the last messages a moment to be written.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (metrics) metrics->SetEngine(nullptr);
  std::printf("xlstm-server: stopped\n");
  return 0;
}

}  // namespace
}  // namespace xlstm::server

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("xlstm-server --model DIR [--port N] [--metrics-port M] [limits]");
  std::vector<std::string> positional = xlstm::cli::ParseFlags(argc, argv, 1);
  if (!positional.empty()) {
    std::fprintf(stderr, "xlstm-server: unexpected argument '%s'\n", positional[0].c_str());
    return 2;
  }
  return xlstm::server::Serve();
}
