#include "server/score_reactor.h"

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

bool HasText(const v1::ScoreRequest& request) {
  for (const v1::ScoreItem& item : request.items()) {
    if (item.context_case() == v1::ScoreItem::kContextText || item.continuation_texts_size() > 0) {
      return true;
    }
  }
  return false;
}

}  // namespace

ScoreReactor::ScoreReactor(InferenceService* service, grpc::CallbackServerContext* context,
                           const v1::ScoreRequest* request, v1::ScoreResponse* response)
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
  // Refused by size at once rather than after waiting for a text worker (the texts' lengths are
  // checked by ToEngineScores, item by item, before any tokenizing).
  if (absl::Status id = CheckRequestId(request->request_id()); !id.ok()) {
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

void ScoreReactor::Validate() {
  Metrics* m = service_->metrics();
  const auto refuse_cancelled = [&] {
    const bool deadline = deadline_ && Clock::now() >= *deadline_;
    if (m) m->RequestRefused(deadline ? "deadline" : "cancelled");
    FinishRefused(deadline ? grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded")
                           : grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  };
  // The client gave up while the request waited for a text worker: skip the work.
  bool cancelled;
  {
    absl::MutexLock lock(&mu_);
    cancelled = cancel_seen_;
  }
  if (cancelled) {
    refuse_cancelled();
    return;
  }
  absl::StatusOr<std::vector<engine::ScoreRequest>> items =
      ToEngineScores(MakeValidation(*service_), *request_);
  if (!items.ok()) {
    if (m) m->RequestRefused("invalid");
    FinishRefused(ToGrpc(items.status()));
    return;
  }
  std::optional<absl::Status> refused;
  {
    absl::MutexLock lock(&mu_);
    if (cancel_seen_) {
      cancelled = true;
    } else {
      response_->set_request_id(request_->request_id());
      results_.resize(items->size());
      for (const engine::ScoreRequest& r : *items) {
        v1::ItemScore* item = response_->add_items();
        for (const std::vector<int32_t>& c : r.continuations) {
          item->add_continuations()->mutable_ids()->Add(c.begin(), c.end());
        }
      }
      for (size_t i = 0; i < items->size(); ++i) {
        engine::ScoreRequest& r = (*items)[i];
        r.arrival = arrival_;
        r.deadline = deadline_;
        r.on_done = [this, i](engine::ScoreDone d) { OnItemDone(i, std::move(d)); };
        absl::StatusOr<engine::Engine::RequestId> id =
            service_->engine()->SubmitScore(std::move(r));
        if (!id.ok()) {
          // The items not submitted never run; the submitted ones are cancelled and answer
          // through on_done (under mu_, so after this loop).
          if (m) m->RequestRejected(Metrics::RejectReason(id.status()));
          error_ = id.status();
          for (engine::Engine::RequestId prev : ids_) service_->engine()->Cancel(prev);
          break;
        }
        ids_.push_back(*id);
        ++pending_;
      }
      if (pending_ == 0) refused = *error_;
    }
  }
  if (cancelled) {
    refuse_cancelled();
  } else if (refused) {
    FinishRefused(ToGrpc(*refused));
  }
}

void ScoreReactor::FinishRefused(const grpc::Status& status) {
  LogRefusedCall("score", request_->request_id(), status, arrival_);
  Finish(status);
}

void ScoreReactor::OnCancel() {
  absl::MutexLock lock(&mu_);
  cancel_seen_ = true;
  for (engine::Engine::RequestId id : ids_) service_->engine()->Cancel(id);
}

void ScoreReactor::OnItemDone(size_t item, engine::ScoreDone done) {
  bool last;
  {
    absl::MutexLock lock(&mu_);
    if (!done.status.ok() && !error_) {
      error_ = MapCancelAtDeadline(done.status, deadline_);
      for (engine::Engine::RequestId id : ids_) service_->engine()->Cancel(id);
    }
    results_[item] = std::move(done);
    last = --pending_ == 0;
  }
  // Engine thread: the response (with the alternatives' text) is built on the delivery pool.
  if (last) service_->delivery_pool()->Submit([this] { Respond(); });
}

void ScoreReactor::Respond() {
  grpc::Status status;
  {
    absl::MutexLock lock(&mu_);
    Metrics* m = service_->metrics();
    const TextCodec* codec = service_->codec();
    RequestLogRecord record;
    record.rpc = "score";
    record.request_id = request_->request_id();
    record.engine_id = ids_.empty() ? 0 : ids_.front();
    record.timings.arrival = arrival_;
    int32_t prompt_tokens = 0;
    for (size_t i = 0; i < results_.size(); ++i) {
      if (!results_[i]) continue;  // never submitted
      const engine::ScoreDone& d = *results_[i];
      if (m) {
        m->RequestEnded(MapCancelAtDeadline(d.status, deadline_), "length", d.timings,
                        d.prompt_tokens, 0);
      }
      prompt_tokens += d.prompt_tokens;
      // The call's timings span its items: the first admission, the first scored row, the end
      // of the last item.
      const engine::RequestTimings& t = d.timings;
      engine::RequestTimings& all = record.timings;
      if (t.was_admitted && (!all.was_admitted || t.admitted < all.admitted)) {
        all.admitted = t.admitted;
        all.was_admitted = true;
      }
      if (t.has_first_token && (!all.has_first_token || t.first_token < all.first_token)) {
        all.first_token = t.first_token;
        all.has_first_token = true;
      }
      all.done = std::max(all.done, t.done);
      if (error_ || !d.status.ok()) continue;
      v1::ItemScore* out_item = response_->mutable_items(static_cast<int>(i));
      for (size_t j = 0; j < d.continuations.size(); ++j) {
        const engine::ContinuationScore& c = d.continuations[j];
        v1::ContinuationScore* out = out_item->mutable_continuations(static_cast<int>(j));
        out->mutable_logprobs()->Add(c.logprobs.begin(), c.logprobs.end());
        out->set_sum(c.sum);
        out->set_is_greedy(c.is_greedy);
        for (const auto& position : c.top) {
          v1::PositionTop* p = out->add_top();
          AddTopLogprobs(codec, position, [p] { return p->add_top(); });
        }
      }
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
