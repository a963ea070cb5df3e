#include "server/embed_reactor.h"

#include <algorithm>
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

bool HasText(const v1::EmbedRequest& request) {
  for (const v1::EmbedInput& input : request.inputs()) {
    if (input.input_case() == v1::EmbedInput::kText) return true;
  }
  return false;
}

// The call's timings span its inputs: the first admission, the first hidden rows, the end of
// the last input.
void MergeTimings(const engine::RequestTimings& t, engine::RequestTimings& all) {
  if (t.was_admitted && (!all.was_admitted || t.admitted < all.admitted)) {
    all.admitted = t.admitted;
    all.was_admitted = true;
  }
  if (t.has_first_token && (!all.has_first_token || t.first_token < all.first_token)) {
    all.first_token = t.first_token;
    all.has_first_token = true;
  }
  all.done = std::max(all.done, t.done);
}

}  // namespace

EmbedReactor::EmbedReactor(InferenceService* service, grpc::CallbackServerContext* context,
                           const v1::EmbedRequest* request, v1::EmbedResponse* response)
    : service_(service),
      request_(request),
      response_(response),
      arrival_(Clock::now()),
      deadline_(SteadyDeadline(context)) {
  const grpc::Status serving = service->CheckServing();
  if (!serving.ok()) {
    FinishRefused(serving);
    return;
  }
  // Token ids are checked inline (linear in the message); tokenizing runs on the text pool.
  if (!HasText(*request)) {
    Validate();
    return;
  }
  if (absl::Status id = engine::ValidateRequestId(request->request_id()); !id.ok()) {
    if (Metrics* m = service->metrics()) m->RequestRefused("invalid");
    FinishRefused(ToGrpc(id));
    return;
  }
  if (!service->text_pool()->TrySubmit([this] { Validate(); })) {
    if (Metrics* m = service->metrics()) m->RequestRejected("text_queue_full");
    FinishRefused(grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("the server's text queue is full (", service->text_pool()->queued(),
                     " requests waiting to be tokenized); retry later")));
  }
}

void EmbedReactor::Validate() {
  Metrics* m = service_->metrics();
  const auto refuse_cancelled = [&] {
    const bool deadline = deadline_ && Clock::now() >= *deadline_;
    if (m) m->RequestRefused(deadline ? "deadline" : "cancelled");
    FinishRefused(deadline ? grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded")
                           : grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  };
  bool cancelled;
  {
    absl::MutexLock lock(&mu_);
    cancelled = cancel_seen_;
  }
  if (cancelled) {
    refuse_cancelled();
    return;
  }
  absl::StatusOr<std::vector<engine::EmbedRequest>> inputs =
      ToEngineEmbeds(MakeValidation(*service_), *request_);
  if (!inputs.ok()) {
    if (m) m->RequestRefused("invalid");
    FinishRefused(ToGrpc(inputs.status()));
    return;
  }
  if (absl::Status size = engine::ValidateEmbedResponseBytes(
          *inputs, service_->engine()->config().hidden_size, service_->options().max_message_bytes);
      !size.ok()) {
    if (m) m->RequestRefused("invalid");
    FinishRefused(ToGrpc(size));
    return;
  }
  std::optional<absl::Status> refused;
  {
    absl::MutexLock lock(&mu_);
    cancelled = cancel_seen_;
    if (!cancelled) refused = Submit(*std::move(inputs));
  }
  if (cancelled) {
    refuse_cancelled();
  } else if (refused) {
    FinishRefused(ToGrpc(*refused));
  }
}

std::optional<absl::Status> EmbedReactor::Submit(std::vector<engine::EmbedRequest> inputs) {
  response_->set_request_id(request_->request_id());
  response_->set_hidden_size(static_cast<int32_t>(service_->engine()->config().hidden_size));
  results_.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) response_->add_embeddings();
  for (size_t i = 0; i < inputs.size(); ++i) {
    engine::EmbedRequest& r = inputs[i];
    r.arrival = arrival_;
    r.deadline = deadline_;
    r.on_done = [this, i](engine::EmbedDone d) { OnInputDone(i, std::move(d)); };
    absl::StatusOr<engine::Engine::RequestId> id = service_->engine()->SubmitEmbed(std::move(r));
    if (!id.ok()) {
      // The inputs not submitted never run; the submitted ones are cancelled and answer
      // through on_done (under mu_, so after this returns).
      if (Metrics* m = service_->metrics()) m->RequestRejected(Metrics::RejectReason(id.status()));
      error_ = id.status();
      for (engine::Engine::RequestId prev : ids_) service_->engine()->Cancel(prev);
      break;
    }
    ids_.push_back(*id);
    ++pending_;
  }
  if (pending_ == 0) return *error_;
  return std::nullopt;
}

void EmbedReactor::FinishRefused(const grpc::Status& status) {
  LogRefusedCall("embed", request_->request_id(), status, arrival_);
  Finish(status);
}

void EmbedReactor::OnCancel() {
  absl::MutexLock lock(&mu_);
  cancel_seen_ = true;
  for (engine::Engine::RequestId id : ids_) service_->engine()->Cancel(id);
}

void EmbedReactor::OnInputDone(size_t input, engine::EmbedDone done) {
  bool last;
  {
    absl::MutexLock lock(&mu_);
    if (!done.status.ok() && !error_) {
      error_ = MapCancelAtDeadline(done.status, deadline_);
      for (engine::Engine::RequestId id : ids_) service_->engine()->Cancel(id);
    }
    results_[input] = std::move(done);
    last = --pending_ == 0;
  }
  // Engine thread: copying the floats into the response happens on the delivery pool.
  if (last) service_->delivery_pool()->Submit([this] { Respond(); });
}

void EmbedReactor::Respond() {
  grpc::Status status;
  {
    absl::MutexLock lock(&mu_);
    Metrics* m = service_->metrics();
    RequestLogRecord record;
    record.rpc = "embed";
    record.request_id = request_->request_id();
    record.engine_id = ids_.empty() ? 0 : ids_.front();
    record.timings.arrival = arrival_;
    int32_t prompt_tokens = 0;
    for (size_t i = 0; i < results_.size(); ++i) {
      if (!results_[i]) continue;  // never submitted
      engine::EmbedDone& d = *results_[i];
      // Counted like a Score item: prompt tokens only, nothing generated.
      if (m) {
        m->RequestEnded(MapCancelAtDeadline(d.status, deadline_), "length", d.timings,
                        d.prompt_tokens, 0);
      }
      prompt_tokens += d.prompt_tokens;
      MergeTimings(d.timings, record.timings);
      if (error_ || !d.status.ok()) continue;
      v1::Embedding* out = response_->mutable_embeddings(static_cast<int>(i));
      out->mutable_values()->Add(d.values.begin(), d.values.end());
      out->set_positions(d.positions);
      out->set_tokens(d.prompt_tokens);
    }
    response_->mutable_usage()->set_prompt_tokens(prompt_tokens);
    record.prompt_tokens = prompt_tokens;
    record.status = error_ ? *error_ : absl::OkStatus();
    LogRequestEnd(record);
    status = error_ ? ToGrpc(*error_) : grpc::Status::OK;
  }
  Finish(status);
}

}  // namespace xlstm::server
