// xlstm-server: the gRPC inference server.
//
//   xlstm-server --model DIR --port 50051 --metrics-port 50052 --backend auto
//
// Every option lives in one table (server/server_options.h): `--help` lists them. Start-up: the
// gRPC port opens first with health NOT_SERVING (RPCs answer UNAVAILABLE), the model loads, then
// health turns SERVING. A port already in use is a start-up error (exit 1). SIGTERM/SIGINT:
// health NOT_SERVING, new RPCs answer UNAVAILABLE, in-flight requests get --drain-grace-seconds
// to finish, the rest end with UNAVAILABLE, exit 0; while the model is still loading they stop
// the server at once (exit 0). A backend fault exits 3.
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/untrusted_file.h"
#include "engine/backend_factory.h"
#include "engine/serving/engine.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/inference_service.h"
#include "server/metrics.h"
#include "server/request_log.h"
#include "server/server_options.h"
#include "server/text_codec.h"
#include "server/tls_credentials.h"
#include "server/token_auth.h"

namespace xlstm::server {
namespace {

constexpr char kServiceName[] = "xlstm.v1.Inference";
constexpr int kExitStartFailure = 1;
constexpr int kExitEngineFault = 3;

// config.json's text for GetModelInfo; the loader has read and checked it already.
std::string ReadConfigText(const std::string& model_dir) {
  absl::StatusOr<std::string> text =
      files::ReadRegularFile(model_dir + "/config.json", files::kMaxJsonFileBytes);
  return text.ok() ? *std::move(text) : std::string();
}

// Why host:port cannot be listened on ("Address already in use", ...), found by binding a probe
// socket the way a server does; empty when it can be (then the failure was elsewhere).
std::string BindFailure(std::string host, int port) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* addresses = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &addresses); rc != 0) {
    return gai_strerror(rc);
  }
  std::string failure;
  for (addrinfo* a = addresses; a != nullptr && failure.empty(); a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0) failure = std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(addresses);
  return failure;
}

// "--port 50051: cannot listen on 0.0.0.0:50051: Address already in use".
std::string ListenError(const char* flag, const std::string& host, int port,
                        const std::string& fallback_reason) {
  std::string reason = BindFailure(host, port);
  if (reason.empty()) reason = fallback_reason;
  return absl::StrCat(flag, " ", port, ": cannot listen on ", host, ":", port,
                      reason.empty() ? "" : ": ", reason);
}

// Counts the engine's steps and fed tokens for the periodic stats line, and hands each step to
// the metrics (when they are on). Runs on the engine thread: atomics and a buffered append only.
class StepObserver : public engine::EngineObserver {
 public:
  explicit StepObserver(Metrics* metrics) : metrics_(metrics) {}
  void OnStep(const engine::StepStats& stats) override {
    steps_.fetch_add(1, std::memory_order_relaxed);
    tokens_.fetch_add(stats.tokens, std::memory_order_relaxed);
    if (metrics_ != nullptr) metrics_->OnStep(stats);
  }
  uint64_t steps() const { return steps_.load(std::memory_order_relaxed); }
  uint64_t tokens() const { return tokens_.load(std::memory_order_relaxed); }

 private:
  Metrics* const metrics_;
  std::atomic<uint64_t> steps_{0};
  std::atomic<uint64_t> tokens_{0};
};

// Writes a stats line every `interval` while the engine has work (or did some since the last
// line); silent while idle.
class StatsReporter {
 public:
  StatsReporter(double interval_seconds, const StepObserver* steps)
      : interval_(std::chrono::duration<double>(interval_seconds)),
        steps_(steps),
        last_time_(std::chrono::steady_clock::now()) {}

  void MaybeReport(const engine::EngineStats& stats) {
    if (interval_.count() <= 0) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_time_ < interval_) return;
    const uint64_t steps = steps_->steps();
    const uint64_t tokens = steps_->tokens();
    const double elapsed = std::chrono::duration<double>(now - last_time_).count();
    if (stats.running > 0 || stats.waiting > 0 || steps != last_steps_) {
      StatsLogRecord record;
      record.running = stats.running;
      record.waiting = stats.waiting;
      record.slots_used = stats.slots_used;
      record.slots_total = stats.slots_total;
      record.tokens_per_second = static_cast<double>(tokens - last_tokens_) / elapsed;
      record.steps_per_second = static_cast<double>(steps - last_steps_) / elapsed;
      LogStats(record);
    }
    last_time_ = now;
    last_steps_ = steps;
    last_tokens_ = tokens;
  }

 private:
  const std::chrono::duration<double> interval_;
  const StepObserver* const steps_;
  std::chrono::steady_clock::time_point last_time_;
  uint64_t last_steps_ = 0;
  uint64_t last_tokens_ = 0;
};

// Takes gRPC's reflection plugin out of a ServerBuilder. Linking grpc++_reflection registers
// the plugin for every builder at static initialization, so not calling
// InitProtoReflectionServerBuilderPlugin is not enough to turn reflection off.
class WithoutReflection : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    std::erase_if(*plugins, [](const std::unique_ptr<grpc::ServerBuilderPlugin>& plugin) {
      return dynamic_cast<const grpc::reflection::ProtoServerReflectionPlugin*>(plugin.get()) !=
             nullptr;
    });
  }
};

// What the loader thread produces: the backend and the text codec (or why they failed).
struct LoadedModel {
  absl::StatusOr<std::unique_ptr<engine::Backend>> backend{absl::UnknownError("not loaded")};
  absl::StatusOr<std::unique_ptr<TextCodec>> codec{absl::UnknownError("not loaded")};
};

// Loads the model on its own thread while this (the main) thread keeps waiting for `signals`,
// so that SIGTERM stops a server whose load is slow (a large checkpoint on slow storage, device
// start-up). Returns the loaded model, or null when a signal came first (`*signal` gets it);
// then the loader thread is left running, detached, holding its own reference to the result.
std::shared_ptr<LoadedModel> LoadModel(const ServerOptions& options, const sigset_t& signals,
                                       int* signal) {
  struct Shared {
    LoadedModel model;
    std::atomic<bool> done{false};
  };
  auto shared = std::make_shared<Shared>();
  // Test seam: XLSTM_TEST_LOAD_DELAY_MS lengthens the load, so that tests can signal a server
  // that is still loading. Unset in production.
  const char* delay = std::getenv("XLSTM_TEST_LOAD_DELAY_MS");
  const int delay_ms = delay != nullptr ? std::atoi(delay) : 0;
  std::thread loader([shared, options, delay_ms] {
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    shared->model.backend = engine::CreateBackend(options.model_dir, BackendOptionsOf(options));
    if (shared->model.backend.ok()) shared->model.codec = TextCodec::Load(options.model_dir);
    shared->done.store(true, std::memory_order_release);
  });
  const timespec poll{0, 50'000'000};
  while (!shared->done.load(std::memory_order_acquire)) {
    const int received = sigtimedwait(&signals, nullptr, &poll);
    if (received > 0) {
      *signal = received;
      loader.detach();
      return nullptr;
    }
  }
  loader.join();
  return std::shared_ptr<LoadedModel>(shared, &shared->model);
}

int Serve(const ServerOptions& options) {
  const cli::OptionTable<ServerOptions>& table = ServerOptionTable();
  std::string resolved;
  if (options.backend == engine::BackendKind::kAuto) {
    resolved = absl::StrCat("  (backend auto resolves to ",
                            engine::BackendKindName(engine::ResolveBackendKind(options.backend)),
                            " on this machine)\n");
  }
  LogConfiguration(table.Describe(options) + resolved, table.Values(options));

  // Signals are taken by sigwait in this thread only: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<Metrics> metrics;
  if (options.metrics_port >= 0) {
    absl::StatusOr<std::unique_ptr<Metrics>> created =
        Metrics::Create(options.metrics_host, options.metrics_port);
    if (!created.ok()) {
      LogMessage(LogLevel::kError,
                 ListenError("--metrics-port", options.metrics_host, options.metrics_port,
                             std::string(created.status().message())));
      return kExitStartFailure;
    }
    metrics = *std::move(created);
  }
  StepObserver step_observer(metrics.get());
  StatsReporter stats_reporter(options.stats_interval_seconds, &step_observer);

  std::unique_ptr<TokenAuthenticator> auth;
  if (!options.auth_token_file.empty()) {
    absl::StatusOr<std::unique_ptr<TokenAuthenticator>> created =
        TokenAuthenticator::Create(options.auth_token_file);
    if (!created.ok()) {
      LogMessage(LogLevel::kError, absl::StrCat("--auth-token-file: ", created.status().message()));
      return kExitStartFailure;
    }
    auth = *std::move(created);
  }
  InferenceService service(options, metrics.get(), auth.get());
  grpc::EnableDefaultHealthCheckService(true);
  const bool reflection = options.reflection == ReflectionMode::kPublic ||
                          (options.reflection == ReflectionMode::kUnlessAuth && auth == nullptr);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  // The health service is gRPC's built-in one, which does not use the generated health proto:
  // touching its descriptor links the generated code in and registers health.proto in the
  // generated pool, so that reflection can describe grpc.health.v1.Health, not only list it.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();

  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(options);
  if (!credentials.ok()) {
    LogMessage(LogLevel::kError, credentials.status().message());
    return kExitStartFailure;
  }
  grpc::ServerBuilder builder;
  if (!reflection) builder.SetOption(std::make_unique<WithoutReflection>());
  int grpc_port = 0;
  builder.AddListeningPort(absl::StrCat(options.host, ":", options.port), *credentials, &grpc_port);
  // gRPC sets SO_REUSEPORT by default, so a second server on a port in use would start and
  // silently share its traffic; without it a port in use is a start-up error.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || grpc_port == 0) {
    LogMessage(LogLevel::kError, ListenError("--port", options.host, options.port, ""));
    return kExitStartFailure;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  auto set_health = [&](bool serving) {
    health->SetServingStatus(serving);
    health->SetServingStatus(kServiceName, serving);
  };
  set_health(false);
  LogLifecycle(absl::StrCat("listening on ", options.host, ":", grpc_port, " (loading the model)"));
  int signal = 0;

  std::shared_ptr<LoadedModel> loaded = LoadModel(options, signals, &signal);
  if (loaded == nullptr) {
    // A signal while loading: nothing is serving yet, so there is nothing to drain. The loader
    // thread may still be inside a long read (or a device call) that cannot be interrupted, so
    // the process ends here without running destructors that would race with it.
    LogLifecycle(absl::StrCat("signal ", signal, " while loading the model: stopped"));
    server->Shutdown(std::chrono::system_clock::now());
    std::fflush(nullptr);
    std::_Exit(0);
  }
  absl::StatusOr<std::unique_ptr<engine::Backend>>& backend = loaded->backend;
  absl::StatusOr<std::unique_ptr<TextCodec>>& codec = loaded->codec;
  if (!backend.ok() || !codec.ok()) {
    const absl::Status& s = !backend.ok() ? backend.status() : codec.status();
    LogMessage(LogLevel::kError, s.message());
    server->Shutdown();
    return kExitStartFailure;
  }
  absl::StatusOr<std::unique_ptr<engine::Engine>> engine =
      engine::Engine::Create(*std::move(backend), EngineOptionsOf(options), &step_observer);
  if (!engine.ok()) {
    LogMessage(LogLevel::kError, engine.status().message());
    server->Shutdown();
    return kExitStartFailure;
  }
  service.SetEngine(engine->get(), codec->get(), ReadConfigText(options.model_dir));
  if (metrics) metrics->SetEngine(engine->get());
  set_health(true);
  LogLifecycle(
      absl::StrCat("ready grpc_port=", grpc_port, " metrics_port=", metrics ? metrics->port() : -1,
                   " backend=", (*engine)->backend_name(), " slots=", (*engine)->num_slots(),
                   " tokenizer=", *codec ? "yes" : "no"));

  // Wait for SIGTERM/SIGINT. Meanwhile, about once a second: check that the engine is still
  // healthy (after a device fault the process exits non-zero so that an orchestrator restarts
  // it), move buffered step stats into the histograms, and write the stats line when due.
  const double poll_seconds = options.stats_interval_seconds > 0
                                  ? std::clamp(options.stats_interval_seconds, 0.01, 1.0)
                                  : 1.0;
  const timespec poll_interval{
      static_cast<time_t>(poll_seconds),
      static_cast<long>((poll_seconds - static_cast<time_t>(poll_seconds)) * 1e9)};
  while (true) {
    signal = sigtimedwait(&signals, nullptr, &poll_interval);
    if (signal > 0) break;
    const engine::EngineStats stats = (*engine)->Stats();
    if (metrics) metrics->FlushSteps();
    stats_reporter.MaybeReport(stats);
    if (stats.failed) {
      LogMessage(LogLevel::kError, absl::StrCat("the engine failed (", stats.fault, "); exiting"));
      set_health(false);
      service.BeginDrain();
      (*engine)->Shutdown(absl::ZeroDuration());
      server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
      if (metrics) metrics->SetEngine(nullptr);
      return kExitEngineFault;
    }
  }
  LogLifecycle(
      absl::StrCat("signal ", signal, ": draining (grace ", options.drain_grace_seconds, "s)"));
  set_health(false);
  service.BeginDrain();
  (*engine)->Shutdown(absl::Seconds(options.drain_grace_seconds));
  // Every engine request has ended; give the last messages a moment to be written.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (metrics) metrics->SetEngine(nullptr);
  LogLifecycle("stopped");
  return 0;
}

}  // namespace
}  // namespace xlstm::server

int main(int argc, char** argv) {
  using xlstm::server::ServerOptions;
  const ServerOptions options = xlstm::server::ServerOptionTable().ParseOrExit(argc, argv);
  xlstm::server::ConfigureLogging(options.log_format, options.log_level);
  return xlstm::server::Serve(options);
}
