#include "server/metrics.h"

#include <chrono>
#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace xlstm::server {
namespace {

using prometheus::Histogram;

Histogram::BucketBoundaries LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
}
Histogram::BucketBoundaries CountBuckets() {
  return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384};
}
double Seconds(engine::Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

// The engine's gauges, read when Prometheus scrapes (always current, no polling thread).
class Metrics::EngineGauges : public prometheus::Collectable {
 public:
  explicit EngineGauges(const std::atomic<const engine::Engine*>* engine) : engine_(engine) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    engine::EngineStats s;
    if (const engine::Engine* e = engine_->load()) s = e->Stats();
    auto gauge = [](const char* name, const char* help, double v) {
      prometheus::MetricFamily f;
      f.name = name;
      f.help = help;
      f.type = prometheus::MetricType::Gauge;
      prometheus::ClientMetric m;
      m.gauge.value = v;
      f.metric.push_back(m);
      return f;
    };
    return {gauge("xlstm_requests_running", "Requests holding state slots.", s.running),
            gauge("xlstm_requests_waiting", "Requests queued for a slot.", s.waiting),
            gauge("xlstm_state_slots_used", "Recurrent-state slots in use.", s.slots_used),
            gauge("xlstm_state_slots_total", "Recurrent-state slots.", s.slots_total)};
  }

 private:
  const std::atomic<const engine::Engine*>* engine_;
};

Metrics::Metrics(const std::string& bind_address)
    : registry_(std::make_shared<prometheus::Registry>()),
      gauges_(std::make_shared<EngineGauges>(&engine_)) {
  auto& reg = *registry_;
  prompt_tokens_ = &prometheus::BuildCounter()
                        .Name("xlstm_prompt_tokens_total")
                        .Help("Prompt (and scored) tokens of ended requests.")
                        .Register(reg)
                        .Add({});
  generation_tokens_ = &prometheus::BuildCounter()
                            .Name("xlstm_generation_tokens_total")
                            .Help("Generated tokens of ended requests.")
                            .Register(reg)
                            .Add({});
  success_ = &prometheus::BuildCounter()
                  .Name("xlstm_request_success_total")
                  .Help("Requests that finished, by finish reason.")
                  .Register(reg);
  failure_ = &prometheus::BuildCounter()
                  .Name("xlstm_request_failure_total")
                  .Help("Requests that failed: invalid, rejected, cancelled, deadline, internal.")
                  .Register(reg);
  auto hist = [&](const char* name, const char* help, Histogram::BucketBoundaries b) {
    return &prometheus::BuildHistogram().Name(name).Help(help).Register(reg).Add({}, b);
  };
  ttft_ = hist("xlstm_time_to_first_token_seconds", "From arrival to the first token.",
               LatencyBuckets());
  itl_ =
      hist("xlstm_inter_token_latency_seconds", "Between tokens of one sample.", LatencyBuckets());
  e2e_ = hist("xlstm_e2e_request_latency_seconds", "From arrival to the end.", LatencyBuckets());
  queue_ = hist("xlstm_request_queue_time_seconds", "From arrival to admission.", LatencyBuckets());
  prefill_ = hist("xlstm_request_prefill_time_seconds", "From admission to the first token.",
                  LatencyBuckets());
  auto& step = prometheus::BuildHistogram()
                   .Name("xlstm_step_duration_seconds")
                   .Help("Engine loop stages per step: schedule, forward, sample.")
                   .Register(reg);
  step_schedule_ = &step.Add({{"phase", "schedule"}}, LatencyBuckets());
  step_forward_ = &step.Add({{"phase", "forward"}}, LatencyBuckets());
  step_sample_ = &step.Add({{"phase", "sample"}}, LatencyBuckets());
  batch_size_ = hist("xlstm_batch_size", "Sequences per engine step.", CountBuckets());
  prompt_len_ = hist("xlstm_request_prompt_tokens", "Prompt tokens per request.", CountBuckets());
  gen_len_ =
      hist("xlstm_request_generation_tokens", "Generated tokens per request.", CountBuckets());
  exposer_ = std::make_unique<prometheus::Exposer>(bind_address);
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(gauges_);
}

Metrics::~Metrics() = default;

int Metrics::port() const {
  std::vector<int> ports = exposer_->GetListeningPorts();
  return ports.empty() ? -1 : ports[0];
}

void Metrics::OnStep(const engine::StepStats& s) {
  step_schedule_->Observe(s.schedule_seconds);
  step_forward_->Observe(s.forward_seconds);
  step_sample_->Observe(s.sample_seconds);
  batch_size_->Observe(s.batch_rows);
}

void Metrics::FirstToken(double seconds) { ttft_->Observe(seconds); }
void Metrics::InterToken(double seconds) { itl_->Observe(seconds); }

void Metrics::RequestEnded(const absl::Status& status, const std::string& finished_reason,
                           const engine::RequestTimings& t, int32_t prompt_tokens,
                           int32_t generated_tokens) {
  prompt_tokens_->Increment(prompt_tokens);
  generation_tokens_->Increment(generated_tokens);
  prompt_len_->Observe(prompt_tokens);
  gen_len_->Observe(generated_tokens);
  e2e_->Observe(Seconds(t.done - t.arrival));
  if (t.was_admitted) queue_->Observe(Seconds(t.admitted - t.arrival));
  if (t.was_admitted && t.has_first_token) prefill_->Observe(Seconds(t.first_token - t.admitted));
  switch (status.code()) {
    case absl::StatusCode::kOk:
      success_->Add({{"finished_reason", finished_reason}}).Increment();
      break;
    case absl::StatusCode::kCancelled:
      failure_->Add({{"reason", "cancelled"}}).Increment();
      break;
    case absl::StatusCode::kDeadlineExceeded:
      failure_->Add({{"reason", "deadline"}}).Increment();
      break;
    case absl::StatusCode::kUnavailable:
      failure_->Add({{"reason", "rejected"}}).Increment();
      break;
    default:
      failure_->Add({{"reason", "internal"}}).Increment();
      break;
  }
}

void Metrics::RequestRefused(const std::string& reason) {
  failure_->Add({{"reason", reason}}).Increment();
}

}  // namespace xlstm::server
