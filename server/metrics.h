// Prometheus metrics (names as in docs/serving-conventions.md), served on their own HTTP port.
// Observes the engine from outside: per-step stats through EngineObserver, per-request events
// from the service, and the engine's gauges read at scrape time.
//
// Every xlstm_ name passes `promtool check metrics`: counters end in _total, gauges never do (the
// slot pool's size is xlstm_state_slots_capacity). The vllm: gauges repeat the engine's gauges
// under the names that load-aware routers read (the Gateway API Inference Extension's endpoint
// picker, llm-d); promtool's only remark on them is the colon, which those names require.
//
// Thread safety: every method may be called from any thread. OnStep runs on the engine thread:
// it only appends the step to a bounded buffer under a mutex held for a push_back; the step
// histograms are observed from that buffer by FlushSteps(), which each scrape runs first (and the
// server's main thread runs once a second), so histogram work never lands on the engine thread.
#ifndef XLSTM_SERVER_METRICS_H_
#define XLSTM_SERVER_METRICS_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/serving/engine.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace xlstm::server {

class Metrics : public engine::EngineObserver {
 public:
  // Steps buffered between flushes; beyond it steps are dropped (and counted). A second of steps
  // at the fastest decode rates is a few thousand.
  static constexpr size_t kMaxBufferedSteps = 1 << 16;

  // Serves /metrics on host:port (port 0 picks one). A port that cannot be bound is an error
  // naming it (and why, e.g. "Address already in use").
  static absl::StatusOr<std::unique_ptr<Metrics>> Create(const std::string& host, int port);
  ~Metrics() override;

  int port() const;
  // The engine whose gauges are reported (null while loading). Must outlive its registration.
  void SetEngine(const engine::Engine* engine) { engine_.store(engine); }

  void OnStep(const engine::StepStats& stats) override;
  // Observes the buffered steps into the step histograms.
  void FlushSteps();

  void FirstToken(double seconds_since_arrival);
  void InterToken(double seconds);
  // A generate or score request that reached the engine and ended.
  void RequestEnded(const absl::Status& status, const std::string& finished_reason,
                    const engine::RequestTimings& timings, int32_t prompt_tokens,
                    int32_t generated_tokens);
  // A request refused before the engine ran it: "invalid", "cancelled", "deadline".
  void RequestRefused(const std::string& reason);
  // A request turned away at admission (counted as a failure with reason "rejected", and in
  // xlstm_request_rejected_total by why): "loading", "draining", "text_queue_full",
  // "queue_full", "engine_failed" ("other" for a Submit status outside those).
  void RequestRejected(const std::string& reason);
  // The rejection reason of a status the engine's Submit returned.
  static std::string RejectReason(const absl::Status& submit_status);

 private:
  class ScrapeTimeCollector;

  Metrics();

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<ScrapeTimeCollector> scrape_time_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::atomic<const engine::Engine*> engine_{nullptr};

  absl::Mutex steps_mu_;
  std::vector<engine::StepStats> pending_steps_ ABSL_GUARDED_BY(steps_mu_);
  uint64_t dropped_steps_ ABSL_GUARDED_BY(steps_mu_) = 0;

  prometheus::Counter* prompt_tokens_;
  prometheus::Counter* generation_tokens_;
  prometheus::Counter* dropped_steps_counter_;
  prometheus::Family<prometheus::Counter>* success_;
  prometheus::Family<prometheus::Counter>* failure_;
  prometheus::Family<prometheus::Counter>* rejected_;
  prometheus::Histogram* ttft_;
  prometheus::Histogram* itl_;
  prometheus::Histogram* e2e_;
  prometheus::Histogram* queue_;
  prometheus::Histogram* prefill_;
  prometheus::Histogram* step_schedule_;
  prometheus::Histogram* step_forward_;
  prometheus::Histogram* step_sample_;
  prometheus::Histogram* batch_size_;
  prometheus::Histogram* prompt_len_;
  prometheus::Histogram* gen_len_;
};

}  // namespace xlstm::server

#endif  // XLSTM_SERVER_METRICS_H_
