#include "server/inference_service.h"

#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "engine/serving/result_sink.h"
#include "server/request_validation.h"

namespace xlstm::server {
namespace {

using engine::Clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

v1::FinishReason ToProto(engine::FinishReason r) {
  switch (r) {
    case engine::FinishReason::kLength:
      return v1::FINISH_REASON_LENGTH;
    case engine::FinishReason::kStopSequence:
      return v1::FINISH_REASON_STOP_SEQUENCE;
    case engine::FinishReason::kEosToken:
      return v1::FINISH_REASON_EOS_TOKEN;
    case engine::FinishReason::kCancelled:
      return v1::FINISH_REASON_CANCELLED;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

// The gRPC deadline as a steady-clock time point (none when the client set none).
std::optional<Clock::time_point> SteadyDeadline(const grpc::CallbackServerContext* context) {
  const auto deadline = context->deadline();
  if (deadline >= std::chrono::system_clock::time_point::max() - std::chrono::hours(24 * 365)) {
    return std::nullopt;
  }
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(deadline - std::chrono::system_clock::now());
}

uint64_t RandomSeed() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  return rng();
}

ValidationContext MakeValidation(const InferenceService& s) {
  return {&s.options(), &s.engine()->config(), s.engine()->num_slots(), s.codec()};
}

// Streams one Generate request. Messages from the engine thread are queued; one write is in
// flight at a time; the call finishes after the engine's on_done and the last write.
class GenerateReactor : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  GenerateReactor(InferenceService* service, grpc::CallbackServerContext* context,
                  const v1::GenerateRequest* request)
      : service_(service), arrival_(Clock::now()) {
    request_id_ = request->request_id();
    grpc::Status serving = service->CheckServing();
    if (!serving.ok()) {
      Finish(serving);
      return;
    }
    const uint64_t seed =
        request->sampling().has_seed() ? request->sampling().seed() : RandomSeed();
    seed_ = seed;
    absl::StatusOr<engine::GenerateRequest> r =
        ToEngineGenerate(MakeValidation(*service), *request, seed);
    if (!r.ok()) {
      if (service->metrics()) service->metrics()->RequestRefused("invalid");
      Finish(ToGrpc(r.status()));
      return;
    }
    n_ = r->n;
    last_token_time_.assign(n_, std::nullopt);
    r->arrival = arrival_;
    r->deadline = SteadyDeadline(context);
    deadline_ = r->deadline;
    sink_ = std::make_shared<engine::GenerateSink>(n_, [this] { DrainSink(); });
    r->sink = sink_;
    // mu_ is held across Submit so that the engine's callbacks (which take mu_) see id_.
    Action action = Action::kNone;
    {
      absl::MutexLock lock(&mu_);
      absl::StatusOr<engine::Engine::RequestId> id =
          service->engine()->SubmitGenerate(*std::move(r));
      if (!id.ok()) {
        if (service->metrics()) {
          service->metrics()->RequestRefused(
              id.status().code() == absl::StatusCode::kInvalidArgument ? "invalid" : "rejected");
        }
        finish_ = ToGrpc(id.status());
        action = NextLocked();
      } else {
        id_ = *id;
        submitted_ = true;
        if (cancel_seen_) service->engine()->Cancel(id_);
      }
    }
    Perform(action);
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancel_seen_ = true;
    if (submitted_ && !engine_done_) service_->engine()->Cancel(id_);
  }

  void OnWriteDone(bool ok) override {
    Action action;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) {
        broken_ = true;  // the client is gone; OnCancel follows
        queue_.clear();
      }
      action = NextLocked();
    }
    Perform(action);
  }

  void OnDone() override { delete this; }

 private:
  // Engine thread: turns what the sink holds into queued messages.
  void DrainSink() {
    while (true) {
      engine::SinkBatch batch = sink_->Take();
      if (batch.empty()) return;
      for (engine::SampleChunk& c : batch.chunks) {
        engine::SampleUpdate u;
        u.sample = c.sample;
        u.tokens = std::move(c.tokens);
        u.text = std::move(c.text);
        u.finish = c.finish;
        if (!c.token_times.empty()) u.time = c.token_times.back();
        OnUpdate(std::move(u));
      }
      if (batch.done) OnEngineDone(std::move(*batch.done));
    }
  }

  void OnUpdate(engine::SampleUpdate u) {
    Metrics* m = service_->metrics();
    if (m) {
      auto& last = last_token_time_[u.sample];
      if (!last) {
        if (!first_token_seen_) m->FirstToken(Seconds(u.time - arrival_));
        first_token_seen_ = true;
      } else {
        m->InterToken(Seconds(u.time - *last));
      }
      last = u.time;
    }
    v1::GenerateResponse msg;
    msg.set_request_id(request_id_);
    msg.set_index(u.sample);
    for (const engine::GeneratedToken& t : u.tokens) {
      v1::TokenOutput* out = msg.add_tokens();
      out->set_id(t.id);
      out->set_logprob(static_cast<float>(t.logprob));
      for (const auto& alt : t.top) {
        v1::TopLogprob* top = out->add_top();
        top->set_id(alt.token);
        top->set_logprob(static_cast<float>(alt.logprob));
      }
    }
    msg.set_text(std::move(u.text));
    if (u.finish) msg.set_finish_reason(ToProto(*u.finish));
    Action action;
    {
      absl::MutexLock lock(&mu_);
      if (!broken_) queue_.push_back(std::move(msg));
      action = NextLocked();
    }
    Perform(action);
  }

  void OnEngineDone(engine::GenerateDone d) {
    // gRPC cancels a call whose deadline passed, which can reach the engine before its own
    // deadline check: report it as the deadline it is.
    if (d.status.code() == absl::StatusCode::kCancelled && deadline_ &&
        Clock::now() >= *deadline_) {
      d.status = absl::DeadlineExceededError("deadline exceeded");
    }
    Metrics* m = service_->metrics();
    if (m) {
      m->RequestEnded(d.status,
                      engine::FinishReasonName(d.finish.empty() ? engine::FinishReason::kCancelled
                                                                : d.finish[0]),
                      d.timings, d.prompt_tokens, d.generated_tokens);
    }
    Action action;
    {
      absl::MutexLock lock(&mu_);
      engine_done_ = true;
      if (d.status.ok()) {
        v1::GenerateResponse last;
        last.set_request_id(request_id_);
        last.set_final(true);
        last.set_seed(seed_);
        last.mutable_usage()->set_prompt_tokens(d.prompt_tokens);
        last.mutable_usage()->set_generated_tokens(d.generated_tokens);
        const engine::RequestTimings& t = d.timings;
        if (t.was_admitted)
          last.mutable_timings()->set_queue_seconds(Seconds(t.admitted - t.arrival));
        if (t.has_first_token) {
          last.mutable_timings()->set_time_to_first_token_seconds(
              Seconds(t.first_token - t.arrival));
        }
        last.mutable_timings()->set_total_seconds(Seconds(t.done - t.arrival));
        for (size_t i = 0; i < d.finish.size(); ++i) {
          v1::SampleFinish* f = last.add_finishes();
          f->set_index(static_cast<int32_t>(i));
          f->set_finish_reason(ToProto(d.finish[i]));
        }
        if (!d.finish.empty()) last.set_finish_reason(ToProto(d.finish[0]));
        if (!broken_) queue_.push_back(std::move(last));
        finish_ = grpc::Status::OK;
      } else {
        finish_ = ToGrpc(d.status);
      }
      action = NextLocked();
    }
    Perform(action);
  }

  // What to start next: a write of the queued message, or the Finish. Decided under mu_ but
  // performed after releasing it (Perform), since gRPC may run reactions inline, and nothing
  // touches the reactor after Perform (it may be deleted by then).
  enum class Action { kNone, kWrite, kFinish };
  Action NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_) return Action::kNone;
    if (!queue_.empty() && !broken_) {
      current_ = std::move(queue_.front());
      queue_.pop_front();
      writing_ = true;
      return Action::kWrite;
    }
    if (finish_ && (queue_.empty() || broken_)) {
      finished_ = true;
      finish_status_ = *finish_;
      return Action::kFinish;
    }
    return Action::kNone;
  }
  void Perform(Action action) {
    if (action == Action::kWrite) StartWrite(&current_);
    if (action == Action::kFinish) Finish(finish_status_);
  }

  InferenceService* service_;
  const Clock::time_point arrival_;
  std::string request_id_;
  uint64_t seed_ = 0;
  int32_t n_ = 1;
  std::optional<Clock::time_point> deadline_;
  std::shared_ptr<engine::GenerateSink> sink_;
  // Engine thread only.
  std::vector<std::optional<Clock::time_point>> last_token_time_;
  bool first_token_seen_ = false;

  absl::Mutex mu_;
  engine::Engine::RequestId id_ ABSL_GUARDED_BY(mu_) = 0;
  bool submitted_ ABSL_GUARDED_BY(mu_) = false;
  bool cancel_seen_ ABSL_GUARDED_BY(mu_) = false;
  bool engine_done_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<v1::GenerateResponse> queue_ ABSL_GUARDED_BY(mu_);
  v1::GenerateResponse current_;  // the message being written (owned by the write in flight)
  grpc::Status finish_status_;    // set once, before the Finish
  std::optional<grpc::Status> finish_ ABSL_GUARDED_BY(mu_);
};

// One Score RPC: one engine request per item; the call finishes when all have ended (the first
// error cancels the rest).
class ScoreReactor : public grpc::ServerUnaryReactor {
 public:
  ScoreReactor(InferenceService* service, grpc::CallbackServerContext* context,
               const v1::ScoreRequest* request, v1::ScoreResponse* response)
      : service_(service), response_(response) {
    grpc::Status serving = service->CheckServing();
    if (!serving.ok()) {
      Finish(serving);
      return;
    }
    response->set_request_id(request->request_id());
    absl::StatusOr<std::vector<engine::ScoreRequest>> items =
        ToEngineScores(MakeValidation(*service), *request);
    if (!items.ok()) {
      if (service->metrics()) service->metrics()->RequestRefused("invalid");
      Finish(ToGrpc(items.status()));
      return;
    }
    const auto arrival = Clock::now();
    const auto deadline = SteadyDeadline(context);
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      pending_ = static_cast<int>(items->size());
      for (size_t i = 0; i < items->size(); ++i) {
        v1::ItemScore* item = response->add_items();
        for (const auto& c : (*items)[i].continuations) {
          item->add_continuations()->mutable_ids()->Add(c.begin(), c.end());
        }
      }
      for (size_t i = 0; i < items->size(); ++i) {
        engine::ScoreRequest& r = (*items)[i];
        r.arrival = arrival;
        r.deadline = deadline;
        r.on_done = [this, i](engine::ScoreDone d) { OnItemDone(i, std::move(d)); };
        absl::StatusOr<engine::Engine::RequestId> id = service->engine()->SubmitScore(std::move(r));
        if (!id.ok()) {
          // The items not submitted count as done; the submitted ones are cancelled.
          if (service->metrics()) service->metrics()->RequestRefused("rejected");
          if (!error_) error_ = ToGrpc(id.status());
          pending_ -= static_cast<int>(items->size() - i);
          for (auto prev : ids_) service->engine()->Cancel(prev);
          break;
        }
        ids_.push_back(*id);
      }
      finish = FinishLocked();
    }
    if (finish) Finish(finish_status_);
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    for (auto id : ids_) service_->engine()->Cancel(id);
  }
  void OnDone() override { delete this; }

 private:
  void OnItemDone(size_t i, engine::ScoreDone d) {
    if (Metrics* m = service_->metrics()) {
      m->RequestEnded(d.status, "length", d.timings, d.prompt_tokens, 0);
    }
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      --pending_;
      prompt_tokens_ += d.prompt_tokens;
      if (!d.status.ok()) {
        if (!error_) {
          error_ = ToGrpc(d.status);
          for (auto id : ids_) service_->engine()->Cancel(id);
        }
      } else {
        v1::ItemScore* item = response_->mutable_items(static_cast<int>(i));
        for (size_t j = 0; j < d.continuations.size(); ++j) {
          const engine::ContinuationScore& c = d.continuations[j];
          v1::ContinuationScore* out = item->mutable_continuations(static_cast<int>(j));
          out->mutable_logprobs()->Add(c.logprobs.begin(), c.logprobs.end());
          out->set_sum(c.sum);
          out->set_is_greedy(c.is_greedy);
          for (const auto& pos : c.top) {
            v1::PositionTop* p = out->add_top();
            for (const auto& alt : pos) {
              v1::TopLogprob* t = p->add_top();
              t->set_id(alt.token);
              t->set_logprob(static_cast<float>(alt.logprob));
            }
          }
        }
      }
      finish = FinishLocked();
    }
    if (finish) Finish(finish_status_);
  }
  // Whether to Finish now (done after releasing mu_; see GenerateReactor::Perform).
  bool FinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (pending_ > 0 || finished_) return false;
    finished_ = true;
    response_->mutable_usage()->set_prompt_tokens(prompt_tokens_);
    finish_status_ = error_ ? *error_ : grpc::Status::OK;
    return true;
  }

  InferenceService* service_;
  v1::ScoreResponse* response_;
  absl::Mutex mu_;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
  int32_t prompt_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<engine::Engine::RequestId> ids_ ABSL_GUARDED_BY(mu_);
  std::optional<grpc::Status> error_ ABSL_GUARDED_BY(mu_);
  grpc::Status finish_status_;
};

}  // namespace

grpc::Status ToGrpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

void InferenceService::SetEngine(engine::Engine* engine, const TextCodec* codec,
                                 std::string config_json) {
  config_json_ = std::move(config_json);
  codec_.store(codec);
  engine_.store(engine);
}

grpc::Status InferenceService::CheckServing() const {
  if (engine_.load() == nullptr) {
    if (metrics_) metrics_->RequestRefused("rejected");
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the model is still loading");
  }
  if (draining_.load()) {
    if (metrics_) metrics_->RequestRefused("rejected");
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "the server is draining; not accepting new requests");
  }
  return grpc::Status::OK;
}

grpc::ServerWriteReactor<v1::GenerateResponse>* InferenceService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  return new GenerateReactor(this, context, request);
}

grpc::ServerUnaryReactor* InferenceService::Score(grpc::CallbackServerContext* context,
                                                  const v1::ScoreRequest* request,
                                                  v1::ScoreResponse* response) {
  return new ScoreReactor(this, context, request, response);
}

grpc::ServerUnaryReactor* InferenceService::Tokenize(grpc::CallbackServerContext* context,
                                                     const v1::TokenizeRequest* request,
                                                     v1::TokenizeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (engine_.load() == nullptr) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the model is still loading"));
    return reactor;
  }
  const int64_t bad = FirstInvalidUtf8(request->text());
  if (bad >= 0) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 absl::StrCat("text is not valid UTF-8 (byte offset ", bad, ")")));
    return reactor;
  }
  const TextCodec* codec = codec_.load();
  if (codec == nullptr) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "this model has no tokenizer"));
    return reactor;
  }
  absl::StatusOr<std::vector<int32_t>> ids =
      codec->Encode(request->text(), request->add_special_tokens());
  if (!ids.ok()) {
    reactor->Finish(ToGrpc(ids.status()));
    return reactor;
  }
  response->mutable_ids()->Add(ids->begin(), ids->end());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::Detokenize(grpc::CallbackServerContext* context,
                                                       const v1::DetokenizeRequest* request,
                                                       v1::DetokenizeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const TextCodec* codec = codec_.load();
  if (engine_.load() == nullptr || codec == nullptr) {
    reactor->Finish(grpc::Status(
        engine_.load() == nullptr ? grpc::StatusCode::UNAVAILABLE
                                  : grpc::StatusCode::FAILED_PRECONDITION,
        engine_.load() == nullptr ? "the model is still loading" : "this model has no tokenizer"));
    return reactor;
  }
  std::vector<int32_t> ids(request->ids().begin(), request->ids().end());
  absl::StatusOr<std::string> text = codec->Decode(ids, request->skip_special_tokens());
  if (!text.ok()) {
    reactor->Finish(ToGrpc(text.status()));
    return reactor;
  }
  response->set_text(*text);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::GetModelInfo(grpc::CallbackServerContext* context,
                                                         const v1::GetModelInfoRequest*,
                                                         v1::GetModelInfoResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  engine::Engine* e = engine_.load();
  if (e == nullptr) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the model is still loading"));
    return reactor;
  }
  response->set_model_dir(options_.model_dir);
  response->set_config_json(config_json_);
  response->set_vocab_size(e->config().vocab_size);
  for (int64_t id : e->config().eos_token_ids) response->add_eos_token_ids(id);
  response->set_backend(e->backend_name());
  response->set_num_slots(e->num_slots());
  response->set_has_tokenizer(codec_.load() != nullptr);
  response->set_slots_used(e->Stats().slots_used);
  v1::Limits* l = response->mutable_limits();
  l->set_max_prompt_tokens(options_.max_prompt_tokens);
  l->set_max_new_tokens(options_.max_new_tokens_limit);
  l->set_max_queue(options_.max_queue);
  l->set_step_token_budget(options_.step_token_budget);
  l->set_max_n(std::min(options_.max_n, e->num_slots()));
  l->set_max_top_logprobs(engine::kMaxTopLogprobs);
  l->set_max_stop_strings(options_.max_stop_strings);
  l->set_max_stop_string_bytes(options_.max_stop_string_bytes);
  l->set_max_message_bytes(options_.max_message_bytes);
  l->set_max_score_items(options_.max_score_items);
  l->set_max_continuations(std::min(options_.max_continuations, e->num_slots()));
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace xlstm::server
