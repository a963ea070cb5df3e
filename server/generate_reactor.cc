#include "server/generate_reactor.h"

#include <random>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/inference_service.h"
#include "server/reactor_util.h"
#include "server/request_log.h"
#include "server/request_validation.h"

namespace xlstm::server {
namespace {

using engine::Clock;

uint64_t RandomSeed() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  return rng();
}

}  // namespace

GenerateReactor::GenerateReactor(InferenceService* service, grpc::CallbackServerContext* context,
                                 const v1::GenerateRequest* request)
    : service_(service),
      request_(request),
      arrival_(Clock::now()),
      deadline_(SteadyDeadline(context)) {
  const grpc::Status serving = service->CheckServing();
  if (!serving.ok()) {
    FinishRefused(serving);
    return;
  }
  // Token ids are checked in time linear in the message, which gRPC has just parsed anyway;
  // tokenizing text can take far longer and must not hold a callback thread.
  if (request->prompt_case() != v1::GenerateRequest::kText) {
    Validate();
    return;
  }
  // The checks by size need no tokenizing: refuse an oversized request at once, so that it never
  // waits for (or occupies) a text worker. Validate repeats them, in the same order.
  absl::Status sized = CheckRequestId(request->request_id());
  if (sized.ok()) {
    sized = CheckTextLength(MakeValidation(*service), "prompt.text", request->text().size());
  }
  if (!sized.ok()) {
    if (Metrics* m = service->metrics()) m->RequestRefused("invalid");
    FinishRefused(ToGrpc(sized));
    return;
  }
  Ref();
  if (!service->text_pool()->TrySubmit([this] {
        Validate();
        Unref();
      })) {
    Unref();
    if (Metrics* m = service->metrics()) m->RequestRejected("text_queue_full");
    FinishRefused(grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("the server's text queue is full (", service->text_pool()->queued(),
                     " requests waiting to be tokenized); retry later")));
  }
}

void GenerateReactor::Validate() {
  bool cancelled;
  {
    absl::MutexLock lock(&mu_);
    cancelled = cancel_seen_;
  }
  Metrics* m = service_->metrics();
  // The client gave up while the request waited for a text worker: skip the work.
  const auto refuse_cancelled = [&] {
    const bool deadline = deadline_ && Clock::now() >= *deadline_;
    if (m) m->RequestRefused(deadline ? "deadline" : "cancelled");
    FinishRefused(deadline ? grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded")
                           : grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  };
  if (cancelled) {
    refuse_cancelled();
    return;
  }
  seed_ = request_->sampling().has_seed() ? request_->sampling().seed() : RandomSeed();
  absl::StatusOr<engine::GenerateRequest> r =
      ToEngineGenerate(MakeValidation(*service_), *request_, seed_);
  if (!r.ok()) {
    if (m) m->RequestRefused("invalid");
    FinishRefused(ToGrpc(r.status()));
    return;
  }
  r->arrival = arrival_;
  r->deadline = deadline_;
  sink_ = std::make_shared<engine::GenerateSink>(r->n, [this] { OnSinkReady(); });
  r->sink = sink_;
  const int32_t n = r->n;
  absl::Status refused;
  {
    // mu_ is held across Submit so that OnCancel sees the id once the engine has the request.
    absl::MutexLock lock(&mu_);
    if (cancel_seen_) {
      cancelled = true;
    } else {
      last_token_time_.assign(static_cast<size_t>(n), std::nullopt);
      absl::StatusOr<engine::Engine::RequestId> id =
          service_->engine()->SubmitGenerate(*std::move(r));
      if (id.ok()) {
        id_ = *id;
        submitted_ = true;
      } else {
        refused = id.status();
      }
    }
  }
  if (cancelled) {
    refuse_cancelled();
  } else if (!refused.ok()) {
    if (m) {
      if (refused.code() == absl::StatusCode::kInvalidArgument) {
        m->RequestRefused("invalid");
      } else {
        m->RequestRejected(Metrics::RejectReason(refused));
      }
    }
    FinishRefused(ToGrpc(refused));
  }
}

void GenerateReactor::FinishRefused(const grpc::Status& status) {
  LogRefusedCall("generate", request_->request_id(), status, arrival_);
  {
    absl::MutexLock lock(&mu_);
    finished_ = true;
  }
  Finish(status);
}

void GenerateReactor::OnCancel() {
  absl::MutexLock lock(&mu_);
  cancel_seen_ = true;
  if (submitted_ && !engine_done_) service_->engine()->Cancel(id_);
}

void GenerateReactor::OnSinkReady() {
  // Engine thread: hand over and return; the message is built on the delivery pool.
  Ref();
  service_->delivery_pool()->Submit([this] {
    Pump();
    Unref();
  });
}

void GenerateReactor::Pump() {
  Action action;
  grpc::Status status;
  {
    absl::MutexLock lock(&mu_);
    action = NextLocked(&status);
  }
  Perform(action, status);
}

void GenerateReactor::OnWriteDone(bool ok) {
  Action action;
  grpc::Status status;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    // The client is gone (OnCancel follows): what is still pending is taken and dropped.
    if (!ok) broken_ = true;
    action = NextLocked(&status);
  }
  Perform(action, status);
}

GenerateReactor::Action GenerateReactor::NextLocked(grpc::Status* status) {
  if (writing_ || finished_) return Action::kNone;
  while (true) {
    if (!taken_.empty()) {
      engine::SampleChunk chunk = std::move(taken_.front());
      taken_.pop_front();
      if (broken_) continue;
      BuildMessage(std::move(chunk), &current_);
      writing_ = true;
      return Action::kWrite;
    }
    if (done_) {
      engine::GenerateDone done = *std::move(done_);
      done_.reset();
      finished_ = true;
      return FinalLocked(std::move(done), status) ? Action::kWriteAndFinish : Action::kFinish;
    }
    // Everything the engine appended since the last Take, in one go. An empty Take arms the
    // sink: OnSinkReady will run when output arrives.
    engine::SinkBatch batch = sink_->Take();
    if (batch.empty()) return Action::kNone;
    ObserveTokenTimes(batch);
    for (engine::SampleChunk& chunk : batch.chunks) taken_.push_back(std::move(chunk));
    if (batch.done) {
      // Counted and logged now, not after the last chunks are written: the request has ended.
      RecordEndLocked(&*batch.done);
      done_ = std::move(batch.done);
    }
  }
}

void GenerateReactor::Perform(Action action, const grpc::Status& status) {
  switch (action) {
    case Action::kNone:
      return;
    case Action::kWrite:
      StartWrite(&current_);
      return;
    case Action::kWriteAndFinish:
      StartWriteAndFinish(&current_, grpc::WriteOptions(), status);
      return;
    case Action::kFinish:
      Finish(status);
      return;
  }
}

void GenerateReactor::ObserveTokenTimes(const engine::SinkBatch& batch) {
  Metrics* m = service_->metrics();
  if (m == nullptr) return;
  if (!first_token_seen_) {
    // Samples are prefilled together; the request's first token is the earliest of them.
    std::optional<Clock::time_point> first;
    for (const engine::SampleChunk& c : batch.chunks) {
      if (!c.token_times.empty() && (!first || c.token_times.front() < *first)) {
        first = c.token_times.front();
      }
    }
    if (first) {
      m->FirstToken(Seconds(*first - arrival_));
      first_token_seen_ = true;
    }
  }
  for (const engine::SampleChunk& c : batch.chunks) {
    if (c.sample < 0 || static_cast<size_t>(c.sample) >= last_token_time_.size()) continue;
    std::optional<Clock::time_point>& last = last_token_time_[static_cast<size_t>(c.sample)];
    for (const Clock::time_point t : c.token_times) {
      if (last) m->InterToken(Seconds(t - *last));
      last = t;
    }
  }
}

void GenerateReactor::BuildMessage(engine::SampleChunk chunk, v1::GenerateResponse* msg) {
  msg->Clear();
  msg->set_request_id(request_->request_id());
  msg->set_index(chunk.sample);
  const TextCodec* codec = service_->codec();
  msg->mutable_tokens()->Reserve(static_cast<int>(chunk.tokens.size()));
  for (const engine::GeneratedToken& t : chunk.tokens) {
    v1::TokenOutput* out = msg->add_tokens();
    out->set_id(t.id);
    out->set_logprob(static_cast<float>(t.logprob));
    AddTopLogprobs(codec, t.top, [out] { return out->add_top(); });
  }
  msg->set_text(std::move(chunk.text));
  if (chunk.finish) msg->set_finish_reason(ToProto(*chunk.finish));
}

void GenerateReactor::RecordEndLocked(engine::GenerateDone* d) {
  engine_done_ = true;
  d->status = MapCancelAtDeadline(std::move(d->status), deadline_);
  if (Metrics* m = service_->metrics()) {
    m->RequestEnded(d->status,
                    engine::FinishReasonName(d->finish.empty() ? engine::FinishReason::kCancelled
                                                               : d->finish[0]),
                    d->timings, d->prompt_tokens, d->generated_tokens);
  }
  RequestLogRecord record;
  record.rpc = "generate";
  record.request_id = request_->request_id();
  record.engine_id = id_;
  record.status = d->status;
  record.finish_reason = d->finish.empty() ? "" : engine::FinishReasonName(d->finish[0]);
  record.prompt_tokens = d->prompt_tokens;
  record.generated_tokens = d->generated_tokens;
  record.timings = d->timings;
  LogRequestEnd(record);
}

bool GenerateReactor::FinalLocked(engine::GenerateDone d, grpc::Status* status) {
  const absl::Status& end = d.status;
  if (!end.ok()) {
    *status = ToGrpc(end);
    return false;
  }
  *status = grpc::Status::OK;
  if (broken_) return false;
  v1::GenerateResponse& last = current_;
  last.Clear();
  last.set_request_id(request_->request_id());
  last.set_final(true);
  last.set_seed(seed_);
  last.mutable_usage()->set_prompt_tokens(d.prompt_tokens);
  last.mutable_usage()->set_generated_tokens(d.generated_tokens);
  const engine::RequestTimings& t = d.timings;
  if (t.was_admitted) last.mutable_timings()->set_queue_seconds(Seconds(t.admitted - t.arrival));
  if (t.has_first_token) {
    last.mutable_timings()->set_time_to_first_token_seconds(Seconds(t.first_token - t.arrival));
  }
  last.mutable_timings()->set_total_seconds(Seconds(t.done - t.arrival));
  for (size_t i = 0; i < d.finish.size(); ++i) {
    v1::SampleFinish* f = last.add_finishes();
    f->set_index(static_cast<int32_t>(i));
    f->set_finish_reason(ToProto(d.finish[i]));
  }
  if (!d.finish.empty()) last.set_finish_reason(ToProto(d.finish[0]));
  return true;
}

}  // namespace xlstm::server
