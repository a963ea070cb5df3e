#include "server/metrics.h"

#include <chrono>
#include <exception>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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

// Runs first at every scrape: observes the buffered engine steps (so the step histograms are
// current) and reads the engine's gauges (always current, no polling thread).
class Metrics::ScrapeTimeCollector : public prometheus::Collectable {
 public:
  explicit ScrapeTimeCollector(Metrics* metrics) : metrics_(metrics) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    metrics_->FlushSteps();
    engine::EngineStats s;
    if (const engine::Engine* e = metrics_->engine_.load()) s = e->Stats();
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
    // The state slots stand in for a KV cache: a request holds its slots (one per sample) from
    // admission to its end, as a transformer's request holds its cache blocks.
    const double slot_usage =
        s.slots_total > 0 ? static_cast<double>(s.slots_used) / s.slots_total : 0.0;
    return {
        gauge("xlstm_requests_running", "Requests holding state slots.", s.running),
        gauge("xlstm_requests_waiting", "Requests queued for a slot.", s.waiting),
        gauge("xlstm_state_slots_used", "Recurrent-state slots in use.", s.slots_used),
        gauge("xlstm_state_slots_capacity", "Recurrent-state slots in the pool.", s.slots_total),
        gauge("xlstm_engine_failed", "1 once a backend fault has ended the engine.", s.failed),
        gauge("xlstm_engine_draining", "1 while the server drains (SIGTERM).", s.draining),
        gauge("vllm:num_requests_running", "Requests holding state slots (for routers).",
              s.running),
        gauge("vllm:num_requests_waiting", "Requests queued for a slot (for routers).", s.waiting),
        gauge("vllm:kv_cache_usage_perc",
              "Fraction of recurrent-state slots in use, 0..1 (the state slots are this "
              "server's KV cache; for routers).",
              slot_usage)};
  }

 private:
  Metrics* const metrics_;
};

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      scrape_time_(std::make_shared<ScrapeTimeCollector>(this)) {
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
  rejected_ = &prometheus::BuildCounter()
                   .Name("xlstm_request_rejected_total")
                   .Help(
                       "Requests turned away at admission, by reason: loading, draining, "
                       "text_queue_full, queue_full, engine_failed.")
                   .Register(reg);
  // Every reason exists from the start at 0, so rate() over it is 0, not empty, until it happens.
  for (const char* reason : {"invalid", "rejected", "cancelled", "deadline", "internal"}) {
    failure_->Add({{"reason", reason}});
  }
  for (const char* reason :
       {"loading", "draining", "text_queue_full", "queue_full", "engine_failed"}) {
    rejected_->Add({{"reason", reason}});
  }
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
  dropped_steps_counter_ =
      &prometheus::BuildCounter()
           .Name("xlstm_step_stats_dropped_total")
           .Help("Engine steps left out of the step histograms (buffer full between scrapes).")
           .Register(reg)
           .Add({});
  pending_steps_.reserve(1024);
}

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Create(const std::string& host, int port) {
  std::unique_ptr<Metrics> metrics(new Metrics());
  try {
    // civetweb's listening_ports syntax wants IPv6 literals in brackets.
    const bool bare_ipv6 = host.find(':') != std::string::npos && host.front() != '[';
    const std::string address =
        bare_ipv6 ? absl::StrCat("[", host, "]:", port) : absl::StrCat(host, ":", port);
    metrics->exposer_ = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    // civetweb says only "null context when constructing CivetServer"; the caller names the port.
    return absl::UnavailableError(e.what());
  }
  // The scrape-time collector first: it flushes the steps before the registry is read.
  metrics->exposer_->RegisterCollectable(metrics->scrape_time_);
  metrics->exposer_->RegisterCollectable(metrics->registry_);
  return metrics;
}

Metrics::~Metrics() {
  // Stop serving before the members a scrape reads are destroyed.
  exposer_.reset();
}

int Metrics::port() const {
  std::vector<int> ports = exposer_->GetListeningPorts();
  return ports.empty() ? -1 : ports[0];
}

void Metrics::OnStep(const engine::StepStats& s) {
  absl::MutexLock lock(&steps_mu_);
  if (pending_steps_.size() < kMaxBufferedSteps) {
    pending_steps_.push_back(s);
  } else {
    ++dropped_steps_;
  }
}

void Metrics::FlushSteps() {
  std::vector<engine::StepStats> steps;
  steps.reserve(1024);  // the buffer handed back keeps a capacity, so OnStep rarely allocates
  uint64_t dropped = 0;
  {
    absl::MutexLock lock(&steps_mu_);
    steps.swap(pending_steps_);
    std::swap(dropped, dropped_steps_);
  }
  for (const engine::StepStats& s : steps) {
    step_schedule_->Observe(s.schedule_seconds);
    step_forward_->Observe(s.forward_seconds);
    step_sample_->Observe(s.sample_seconds);
    batch_size_->Observe(s.batch_rows);
  }
  if (dropped > 0) dropped_steps_counter_->Increment(static_cast<double>(dropped));
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

void Metrics::RequestRejected(const std::string& reason) {
  failure_->Add({{"reason", "rejected"}}).Increment();
  rejected_->Add({{"reason", reason}}).Increment();
}

std::string Metrics::RejectReason(const absl::Status& submit_status) {
  switch (submit_status.code()) {
    case absl::StatusCode::kResourceExhausted:
      return "queue_full";
    case absl::StatusCode::kUnavailable:
      // The engine's inbox: "engine failed: ..." or "server is draining; ...".
      return absl::StartsWith(submit_status.message(), "engine failed") ? "engine_failed"
                                                                        : "draining";
    default:
      return "other";
  }
}

}  // namespace xlstm::server
