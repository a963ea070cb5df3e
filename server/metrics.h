// Prometheus metrics (names as in docs/serving-conventions.md), served on their own HTTP port.
// Observes the engine from outside: per-step stats through EngineObserver, per-request events
// from the service, and the engine's gauges read at scrape time.
//
// Thread safety: every method may be called from any thread (prometheus-cpp metrics are
// thread-safe); OnStep runs on the engine thread and does not block.
#ifndef XLSTM_SERVER_METRICS_H_
#define XLSTM_SERVER_METRICS_H_

#include <atomic>
#include <memory>
#include <string>

#include "engine/serving/engine.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace xlstm::server {

class Metrics : public engine::EngineObserver {
 public:
  // Serves /metrics on `bind_address` ("host:port"; port 0 picks one).
  explicit Metrics(const std::string& bind_address);
  ~Metrics() override;

  int port() const;
  // The engine whose gauges are reported (null while loading). Must outlive its registration.
  void SetEngine(const engine::Engine* engine) { engine_.store(engine); }

  void OnStep(const engine::StepStats& stats) override;

  void FirstToken(double seconds_since_arrival);
  void InterToken(double seconds);
  // A generate or score request that reached the engine and ended.
  void RequestEnded(const absl::Status& status, const std::string& finished_reason,
                    const engine::RequestTimings& timings, int32_t prompt_tokens,
                    int32_t generated_tokens);
  // A request refused before the engine ran it: "invalid", "rejected".
  void RequestRefused(const std::string& reason);

 private:
  class EngineGauges;

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<EngineGauges> gauges_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::atomic<const engine::Engine*> engine_{nullptr};

  prometheus::Counter* prompt_tokens_;
  prometheus::Counter* generation_tokens_;
  prometheus::Family<prometheus::Counter>* success_;
  prometheus::Family<prometheus::Counter>* failure_;
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
