#include "engine/serving/engine.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/serving/embed_task.h"
#include "engine/serving/engine_loop.h"
#include "engine/serving/generate_task.h"
#include "engine/serving/inbox.h"
#include "engine/serving/score_task.h"

namespace xlstm::engine {

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength:
      return "length";
    case FinishReason::kStopSequence:
      return "stop_sequence";
    case FinishReason::kEosToken:
      return "eos_token";
    case FinishReason::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

const char* PoolingName(Pooling pooling) {
  switch (pooling) {
    case Pooling::kLast:
      return "last";
    case Pooling::kMean:
      return "mean";
    case Pooling::kAll:
      return "all";
  }
  return "unknown";
}

namespace {

std::vector<int32_t> EosTokenIds(const ModelConfig& config) {
  std::vector<int32_t> ids;
  for (int64_t id : config.eos_token_ids) {
    if (id >= 0 && id < config.vocab_size) ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(std::unique_ptr<Backend> backend,
                                                       EngineOptions options,
                                                       EngineObserver* observer) {
  if (backend == nullptr) return absl::InvalidArgumentError("engine: no backend");
  if (backend->num_slots() < 1) return absl::InvalidArgumentError("engine: backend has no slots");
  if (options.max_queue < 0) {
    return absl::InvalidArgumentError(absl::StrCat("max_queue = ", options.max_queue, " < 0"));
  }
  if (options.step_token_budget < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("step_token_budget = ", options.step_token_budget, " < 1"));
  }
  std::unique_ptr<Engine> engine(new Engine(std::move(backend), options, observer));
  engine->thread_ = std::thread([loop = engine->loop_.get()] { loop->Run(); });
  return engine;
}

Engine::Engine(std::unique_ptr<Backend> backend, EngineOptions options, EngineObserver* observer)
    : config_(backend->config()),
      backend_name_(backend->name()),
      num_slots_(backend->num_slots()),
      options_(std::move(options)),
      bounds_{config_.vocab_size, num_slots_},
      eos_token_ids_(EosTokenIds(config_)),
      inbox_(std::make_unique<Inbox>(options_.max_queue, num_slots_)),
      loop_(std::make_unique<EngineLoop>(std::move(backend), options_, inbox_.get(), observer)) {}

Engine::~Engine() { Shutdown(absl::ZeroDuration()); }

absl::StatusOr<Engine::RequestId> Engine::SubmitGenerate(GenerateRequest request) {
  XLSTM_RETURN_IF_ERROR(ValidateGenerate(request, options_.limits, bounds_));
  if (!request.sink) return absl::InvalidArgumentError("generate request without a sink");
  return inbox_->Push(std::make_unique<GenerateTask>(std::move(request), eos_token_ids_));
}

absl::StatusOr<Engine::RequestId> Engine::SubmitScore(ScoreRequest request) {
  XLSTM_RETURN_IF_ERROR(ValidateScore(request, options_.limits, bounds_));
  if (!request.on_done) return absl::InvalidArgumentError("score request without on_done");
  return inbox_->Push(std::make_unique<ScoreTask>(std::move(request)));
}

absl::StatusOr<Engine::RequestId> Engine::SubmitEmbed(EmbedRequest request) {
  XLSTM_RETURN_IF_ERROR(ValidateEmbed(request, options_.limits, bounds_));
  if (!request.on_done) return absl::InvalidArgumentError("embed request without on_done");
  return inbox_->Push(std::make_unique<EmbedTask>(std::move(request), config_.hidden_size));
}

void Engine::Cancel(RequestId id) { inbox_->Cancel(id); }

void Engine::Shutdown(absl::Duration grace) {
  std::lock_guard<std::mutex> guard(shutdown_mu_);
  inbox_->StartDrain(grace);
  if (thread_.joinable()) thread_.join();
}

EngineStats Engine::Stats() const { return inbox_->Stats(); }

}  // namespace xlstm::engine
