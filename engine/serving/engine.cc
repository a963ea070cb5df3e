#include "engine/serving/engine.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/serving/result_sink.h"
#include "engine/serving/scheduler.h"
#include "engine/serving/slot_pool.h"
#include "engine/serving/stop_matcher.h"
#include "engine/util/status_macros.h"

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

namespace {

enum class Phase {
  kWaiting,
  kPrefill,  // Generate: sequence 0 feeds the prompt
  kDecode,   // Generate: every unfinished sample feeds its last token
  kContext,  // Score: sequence 0 feeds the context but its last token
  kScore,    // Score: each continuation feeds (context.back(), continuation[:-1]) for logits
};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// How close to its deadline a cancel must arrive to count as the deadline's (see Run()).
constexpr Clock::duration kDeadlineSlack = std::chrono::milliseconds(20);

// Sample i > 0 of an n > 1 request draws from its own stream.
uint64_t SampleSeed(uint64_t seed, int32_t sample) {
  return seed + static_cast<uint64_t>(sample) * 0x9E3779B97F4A7C15ULL;
}

bool Contains(const std::vector<int32_t>& ids, int32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

absl::Status CheckIds(absl::string_view field, const std::vector<int32_t>& ids, int64_t vocab) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, "[", i, "] = ", ids[i], " is outside the vocabulary [0, ", vocab, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

struct Sequence {
  int32_t slot = -1;
  std::vector<int32_t> feed;  // tokens to feed; the planner takes chunks from `fed` on
  size_t fed = 0;
  // Generate.
  bool done = false;
  FinishReason reason = FinishReason::kCancelled;
  std::optional<Sampler> sampler;
  std::unique_ptr<TextDecoder> decoder;
  std::optional<StopStringMatcher> stop;
  int32_t generated = 0;
  // Score.
  std::vector<int32_t> targets;
  size_t scored = 0;
  ContinuationScore score;
};

struct Engine::Request {
  RequestId id = 0;
  bool is_score = false;
  GenerateRequest gen;
  ScoreRequest score;
  Phase phase = Phase::kWaiting;
  std::vector<int32_t> slots;
  std::vector<Sequence> seqs;
  RequestTimings timings;
  std::optional<Clock::time_point> deadline;

  int32_t slots_needed() const {
    return is_score ? static_cast<int32_t>(score.continuations.size()) : gen.n;
  }
};

struct Engine::Loop {
  explicit Loop(std::unique_ptr<Backend> b) : backend(std::move(b)), pool(backend.get()) {}
  std::unique_ptr<Backend> backend;
  SlotPool pool;
  EngineObserver* observer = nullptr;
  std::deque<std::unique_ptr<Request>> waiting;
  std::vector<std::unique_ptr<Request>> active;  // in admission order (FCFS for prefill)
  ForwardOutput out;
  std::vector<SampleSpec> sample_specs;  // this step's draws (rows hold spans into it)
  std::vector<ScoreSpec> score_specs;    // this step's scored rows
  std::vector<int32_t> banned;           // scratch: tokens masked before min_new_tokens
  uint64_t steps = 0;
  std::string fault;
};

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
  engine->thread_ = std::thread([e = engine.get()] { e->Run(); });
  return engine;
}

Engine::Engine(std::unique_ptr<Backend> backend, EngineOptions options, EngineObserver* observer)
    : config_(backend->config()),
      backend_name_(backend->name()),
      num_slots_(backend->num_slots()),
      options_(options),
      loop_(std::make_unique<Loop>(std::move(backend))) {
  loop_->observer = observer;
  stats_.slots_total = num_slots_;
}

Engine::~Engine() { Shutdown(absl::ZeroDuration()); }

absl::StatusOr<Engine::RequestId> Engine::SubmitGenerate(GenerateRequest request) {
  const int64_t vocab = config_.vocab_size;
  if (request.prompt.empty()) return absl::InvalidArgumentError("prompt is empty");
  XLSTM_RETURN_IF_ERROR(CheckIds("prompt_ids", request.prompt, vocab));
  XLSTM_RETURN_IF_ERROR(CheckIds("stop_token_ids", request.stopping.stop_token_ids, vocab));
  XLSTM_RETURN_IF_ERROR(request.sampling.Validate());
  if (request.n < 1 || request.n > num_slots_) {
    return absl::InvalidArgumentError(
        absl::StrCat("n = ", request.n, " is outside [1, ", num_slots_, "] (the state slots)"));
  }
  const StoppingParams& s = request.stopping;
  if (s.max_new_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat("max_new_tokens = ", s.max_new_tokens, " < 0"));
  }
  if (s.min_new_tokens < 0 || s.min_new_tokens > s.max_new_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_new_tokens = ", s.min_new_tokens,
                     " is outside [0, max_new_tokens = ", s.max_new_tokens, "]"));
  }
  if (request.top_logprobs < 0 || request.top_logprobs > kMaxTopLogprobs) {
    return absl::InvalidArgumentError(absl::StrCat("top_logprobs = ", request.top_logprobs,
                                                   " is outside [0, ", kMaxTopLogprobs, "]"));
  }
  if (!s.stop_strings.empty() && !request.make_decoder) {
    return absl::InvalidArgumentError("stop strings need a tokenizer; this model has none");
  }
  if (!request.sink) return absl::InvalidArgumentError("generate request without a sink");
  auto r = std::make_unique<Request>();
  r->is_score = false;
  r->deadline = request.deadline;
  r->timings.arrival = request.arrival;
  r->gen = std::move(request);
  return Enqueue(std::move(r));
}

absl::StatusOr<Engine::RequestId> Engine::SubmitScore(ScoreRequest request) {
  const int64_t vocab = config_.vocab_size;
  if (request.context.empty()) {
    return absl::InvalidArgumentError(
        "context is empty (the first continuation token is predicted from it; use the BOS "
        "token for an unconditional score)");
  }
  XLSTM_RETURN_IF_ERROR(CheckIds("context_ids", request.context, vocab));
  if (request.continuations.empty()) return absl::InvalidArgumentError("no continuations");
  if (static_cast<int64_t>(request.continuations.size()) > num_slots_) {
    return absl::InvalidArgumentError(absl::StrCat("continuations: ", request.continuations.size(),
                                                   " exceed the ", num_slots_, " state slots"));
  }
  for (size_t i = 0; i < request.continuations.size(); ++i) {
    if (request.continuations[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("continuations[", i, "] is empty"));
    }
    XLSTM_RETURN_IF_ERROR(
        CheckIds(absl::StrCat("continuations[", i, "]"), request.continuations[i], vocab));
  }
  if (request.top_logprobs < 0 || request.top_logprobs > kMaxTopLogprobs) {
    return absl::InvalidArgumentError(absl::StrCat("top_logprobs = ", request.top_logprobs,
                                                   " is outside [0, ", kMaxTopLogprobs, "]"));
  }
  if (!request.on_done) return absl::InvalidArgumentError("score request without on_done");
  auto r = std::make_unique<Request>();
  r->is_score = true;
  r->deadline = request.deadline;
  r->timings.arrival = request.arrival;
  r->score = std::move(request);
  return Enqueue(std::move(r));
}

absl::StatusOr<Engine::RequestId> Engine::Enqueue(std::unique_ptr<Request> request) {
  absl::MutexLock lock(&mu_);
  if (stats_.failed) {
    return absl::UnavailableError(absl::StrCat("engine failed: ", stats_.fault));
  }
  if (draining_) return absl::UnavailableError("server is draining; not accepting new requests");
  if (queued_ >= options_.max_queue) {
    return absl::ResourceExhaustedError(
        absl::StrCat("request queue is full (max_queue = ", options_.max_queue, ")"));
  }
  const RequestId id = next_id_++;
  request->id = id;
  ++queued_;
  inbox_.push_back(std::move(request));
  wake_.Signal();
  return id;
}

void Engine::Cancel(RequestId id) {
  absl::MutexLock lock(&mu_);
  cancels_.push_back(id);
  wake_.Signal();
}

void Engine::Shutdown(absl::Duration grace) {
  std::lock_guard<std::mutex> guard(shutdown_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (!draining_) {
      draining_ = true;
      stats_.draining = true;
      drain_deadline_ = absl::Now() + grace;
    } else {
      drain_deadline_ = std::min(drain_deadline_, absl::Now() + grace);
    }
    wake_.Signal();
  }
  if (thread_.joinable()) thread_.join();
}

EngineStats Engine::Stats() const {
  absl::MutexLock lock(&mu_);
  EngineStats s = stats_;
  s.waiting = queued_;
  return s;
}

namespace {

// Everything below runs on the engine thread.

void Emit(Sequence& seq, int32_t sample, const GenerateRequest& req, GeneratedToken token,
          std::string text, Clock::time_point now) {
  SampleUpdate u;
  u.sample = sample;
  u.tokens.push_back(std::move(token));
  u.text = std::move(text);
  if (seq.done) u.finish = seq.reason;
  u.time = now;
  req.sink->Append(std::move(u));
}

}  // namespace

void Engine::Run() {
  Loop& L = *loop_;
  const int64_t vocab = config_.vocab_size;

  // Ends a request however it ends; the one place slots are released.
  auto end_request = [&](Request& r, absl::Status status) {
    if (!r.slots.empty()) L.pool.Release(r.slots);
    r.slots.clear();
    r.timings.done = Clock::now();
    if (r.is_score) {
      ScoreDone done;
      done.status = std::move(status);
      done.prompt_tokens = static_cast<int32_t>(r.score.context.size());
      for (const auto& c : r.score.continuations) done.prompt_tokens += c.size();
      if (done.status.ok()) {
        for (Sequence& s : r.seqs) done.continuations.push_back(std::move(s.score));
      }
      done.timings = r.timings;
      r.score.on_done(std::move(done));
    } else {
      GenerateDone done;
      done.status = std::move(status);
      done.prompt_tokens = static_cast<int32_t>(r.gen.prompt.size());
      done.finish.assign(r.gen.n, FinishReason::kCancelled);
      for (size_t i = 0; i < r.seqs.size(); ++i) {
        if (r.seqs[i].done) done.finish[i] = r.seqs[i].reason;
        done.generated_tokens += r.seqs[i].generated;
      }
      done.timings = r.timings;
      r.gen.sink->Finish(std::move(done));
    }
  };
  auto remove_active = [&](Request* r) {
    L.active.erase(std::find_if(L.active.begin(), L.active.end(),
                                [r](const auto& p) { return p.get() == r; }));
  };
  // A backend fault: every request ends, the engine refuses new work from now on.
  auto fail_all = [&](const absl::Status& fault) {
    {
      absl::MutexLock lock(&mu_);
      stats_.failed = true;
      stats_.fault = std::string(fault.message());
    }
    for (auto& r : L.active)
      end_request(*r, absl::InternalError(absl::StrCat("engine fault: ", fault.message())));
    L.active.clear();
  };

  // Score: copy the context state into each continuation's slot and start feeding.
  auto start_scoring = [&](Request& r) -> absl::Status {
    const int32_t last = r.score.context.back();
    for (size_t j = 0; j < r.seqs.size(); ++j) {
      Sequence& s = r.seqs[j];
      if (j > 0) XLSTM_RETURN_IF_ERROR(L.pool.Copy(r.slots[0], s.slot));
      const std::vector<int32_t>& cont = r.score.continuations[j];
      s.feed.assign(1, last);
      s.feed.insert(s.feed.end(), cont.begin(), cont.end() - 1);
      s.fed = 0;
      s.targets = cont;
    }
    r.phase = Phase::kScore;
    return absl::OkStatus();
  };

  auto admit = [&](Request& r) -> absl::Status {
    XLSTM_ASSIGN_OR_RETURN(r.slots, L.pool.Acquire(r.slots_needed()));
    r.timings.admitted = Clock::now();
    r.timings.was_admitted = true;
    r.seqs.resize(r.slots.size());
    for (size_t i = 0; i < r.slots.size(); ++i) r.seqs[i].slot = r.slots[i];
    if (r.is_score) {
      r.seqs[0].feed.assign(r.score.context.begin(), r.score.context.end() - 1);
      r.phase = Phase::kContext;
      if (r.seqs[0].feed.empty()) XLSTM_RETURN_IF_ERROR(start_scoring(r));
      return absl::OkStatus();
    }
    const GenerateRequest& g = r.gen;
    for (int32_t i = 0; i < g.n; ++i) {
      Sequence& s = r.seqs[i];
      SamplingParams p = g.sampling;
      if (i > 0) p.seed = SampleSeed(p.seed, i);
      s.sampler.emplace(p);
      for (int32_t t : g.prompt) s.sampler->ObservePrompt(t);
      if (g.make_decoder) s.decoder = g.make_decoder();
      if (!g.stopping.stop_strings.empty()) {
        s.stop.emplace(g.stopping.stop_strings, g.stopping.include_stop_str_in_output);
      }
    }
    r.seqs[0].feed = g.prompt;
    r.phase = Phase::kPrefill;
    return absl::OkStatus();
  };

  // The draw of sequence `i`'s next token, for the backend.
  auto sample_spec = [&](Request& r, int32_t i) {
    Sequence& s = r.seqs[i];
    const GenerateRequest& g = r.gen;
    const StoppingParams& stop = g.stopping;
    L.banned.clear();
    if (s.generated < stop.min_new_tokens) {
      if (!stop.ignore_eos) {
        for (int64_t e : config_.eos_token_ids) {
          if (e >= 0 && e < vocab) L.banned.push_back(static_cast<int32_t>(e));
        }
      }
      L.banned.insert(L.banned.end(), stop.stop_token_ids.begin(), stop.stop_token_ids.end());
    }
    SampleSpec spec;
    spec.params = s.sampler->params();
    spec.step = static_cast<uint64_t>(s.generated);
    spec.adjustments = s.sampler->Adjustments(L.banned);
    spec.logprob = g.logprobs || g.top_logprobs > 0;
    spec.top_logprobs = g.top_logprobs;
    return spec;
  };

  // Emits the token the backend chose for sequence `i`. Returns whether every sample of the
  // request is done.
  auto sample_and_emit = [&](Request& r, int32_t i, const TokenChoice& choice,
                             Clock::time_point now) {
    Sequence& s = r.seqs[i];
    const GenerateRequest& g = r.gen;
    const StoppingParams& stop = g.stopping;
    const int32_t token = choice.token;
    s.sampler->ObserveGenerated(token);
    ++s.generated;
    GeneratedToken out;
    out.id = token;
    if (g.logprobs || g.top_logprobs > 0) out.logprob = choice.logprob;
    if (g.top_logprobs > 0) out.top = choice.top;

    const bool is_eos =
        !stop.ignore_eos && std::find(config_.eos_token_ids.begin(), config_.eos_token_ids.end(),
                                      token) != config_.eos_token_ids.end();
    if (is_eos) {
      s.done = true;
      s.reason = FinishReason::kEosToken;
    } else if (Contains(stop.stop_token_ids, token)) {
      s.done = true;
      s.reason = FinishReason::kStopSequence;
    } else if (s.generated >= stop.max_new_tokens) {
      s.done = true;
      s.reason = FinishReason::kLength;
    }
    std::string text;
    if (s.decoder) {
      text = s.decoder->Add(token);
      if (s.done) text += s.decoder->Finish();
    }
    if (s.stop) {
      StopStringMatcher::Result m = s.stop->Add(text);
      text = std::move(m.emit);
      if (m.stopped) {
        s.done = true;
        s.reason = FinishReason::kStopSequence;
      } else if (s.done) {
        text += s.stop->Flush();
      }
    }
    if (!s.done) {
      s.feed.assign(1, token);
      s.fed = 0;
    }
    Emit(s, i, g, std::move(out), std::move(text), now);
    return std::all_of(r.seqs.begin(), r.seqs.end(), [](const Sequence& q) { return q.done; });
  };

  while (true) {
    const Clock::time_point iteration_start = Clock::now();
    std::vector<std::unique_ptr<Request>> incoming;
    std::vector<RequestId> cancels;
    bool drain_expired = false;
    {
      absl::MutexLock lock(&mu_);
      // Sleep while there is nothing to do; wake for the inbox, a cancel, shutdown, or the
      // earliest deadline of a waiting request.
      while (inbox_.empty() && cancels_.empty() && L.active.empty() && !draining_) {
        std::optional<Clock::time_point> earliest;
        for (const auto& r : L.waiting) {
          if (r->deadline && (!earliest || *r->deadline < *earliest)) earliest = r->deadline;
        }
        if (!L.waiting.empty() && !earliest) break;  // admit what waits
        if (!L.waiting.empty()) {
          const auto wait = *earliest - Clock::now();
          if (wait <= Clock::duration::zero()) break;
          wake_.WaitWithTimeout(&mu_, absl::FromChrono(wait));
          break;
        }
        wake_.Wait(&mu_);
      }
      incoming.swap(inbox_);
      cancels.swap(cancels_);
      drain_expired = draining_ && absl::Now() >= drain_deadline_;
    }
    for (auto& r : incoming) L.waiting.push_back(std::move(r));
    int32_t left_queue = 0;  // waiting requests that left the queue this iteration

    // 1. Cancels first, then deadlines: their slots are free for this iteration's admission.
    const Clock::time_point now = Clock::now();
    auto expired = [now](const auto& r) { return r->deadline && now >= *r->deadline; };
    // gRPC cancels a call whose deadline passed at about the moment our own deadline check
    // would end it; such a cancel is a deadline expiry (the clocks are converted at arrival, so
    // they may disagree by a little: kDeadlineSlack).
    auto cancel_status = [now](const Request& r) {
      return r.deadline && now + kDeadlineSlack >= *r.deadline
                 ? absl::DeadlineExceededError("deadline exceeded")
                 : absl::CancelledError("request cancelled");
    };
    for (RequestId id : cancels) {
      auto w = std::find_if(L.waiting.begin(), L.waiting.end(),
                            [id](const auto& r) { return r->id == id; });
      if (w != L.waiting.end()) {
        end_request(**w, cancel_status(**w));
        L.waiting.erase(w);
        ++left_queue;
        continue;
      }
      auto a = std::find_if(L.active.begin(), L.active.end(),
                            [id](const auto& r) { return r->id == id; });
      if (a != L.active.end()) {
        end_request(**a, cancel_status(**a));
        L.active.erase(a);
      }
    }
    for (auto it = L.waiting.begin(); it != L.waiting.end();) {
      if (expired(*it)) {
        end_request(**it, absl::DeadlineExceededError("deadline exceeded while queued"));
        it = L.waiting.erase(it);
        ++left_queue;
      } else {
        ++it;
      }
    }
    for (auto it = L.active.begin(); it != L.active.end();) {
      if (expired(*it)) {
        end_request(**it, absl::DeadlineExceededError("deadline exceeded"));
        it = L.active.erase(it);
      } else {
        ++it;
      }
    }
    if (drain_expired || !L.fault.empty()) {
      const absl::Status why =
          L.fault.empty() ? absl::UnavailableError("server shut down before the request finished")
                          : absl::UnavailableError(absl::StrCat("engine failed: ", L.fault));
      for (auto& r : L.active) end_request(*r, why);
      L.active.clear();
      for (auto& r : L.waiting) end_request(*r, why);
      left_queue += static_cast<int32_t>(L.waiting.size());
      L.waiting.clear();
    }

    // 2. Admission, FCFS: the head waits for enough free slots (no overtaking).
    while (!L.waiting.empty() && L.fault.empty() &&
           L.waiting.front()->slots_needed() <= L.pool.free()) {
      std::unique_ptr<Request> r = std::move(L.waiting.front());
      L.waiting.pop_front();
      ++left_queue;
      absl::Status s = admit(*r);
      if (!s.ok()) {
        end_request(*r, absl::InternalError(absl::StrCat("engine fault: ", s.message())));
        L.fault = std::string(s.message());
        fail_all(s);
        break;
      }
      Request* raw = r.get();
      L.active.push_back(std::move(r));
      // max_new_tokens == 0: nothing to generate.
      if (!raw->is_score && raw->gen.stopping.max_new_tokens == 0) {
        for (Sequence& q : raw->seqs) {
          q.done = true;
          q.reason = FinishReason::kLength;
        }
        end_request(*raw, absl::OkStatus());
        remove_active(raw);
      }
    }

    // Published before the step too, so that observers see admissions while a long step runs.
    {
      absl::MutexLock lock(&mu_);
      queued_ -= left_queue;
      left_queue = 0;
      stats_.running = static_cast<int32_t>(L.active.size());
      stats_.slots_used = L.pool.used();
    }

    // 3. Plan.
    struct RowRef {
      Request* r;
      int32_t seq;
      int32_t tokens;
    };
    std::vector<PlanCandidate> candidates;
    std::vector<RowRef> refs;
    for (auto& r : L.active) {
      for (size_t j = 0; j < r->seqs.size(); ++j) {
        Sequence& s = r->seqs[j];
        const bool feeds = (r->phase == Phase::kPrefill || r->phase == Phase::kContext)
                               ? j == 0
                               : (r->phase == Phase::kDecode ? !s.done : s.fed < s.feed.size());
        if (!feeds || s.fed >= s.feed.size()) continue;
        candidates.push_back(
            {static_cast<int32_t>(s.feed.size() - s.fed), r->phase == Phase::kDecode});
        refs.push_back({r.get(), static_cast<int32_t>(j), 0});
      }
    }
    const std::vector<PlannedChunk> plan = PlanStep(candidates, options_.step_token_budget);
    // What each planned row asks of the backend: a range of sample_specs, a score spec, or
    // nothing. Specs are collected first so that the rows' spans into them stay valid.
    struct RowAsk {
      size_t first_sample = 0, num_samples = 0;
      int32_t score = -1;  // index into score_specs
    };
    std::vector<RowAsk> asks;
    std::vector<RowRef> planned;
    L.sample_specs.clear();
    L.score_specs.clear();
    int32_t step_tokens = 0;
    for (const PlannedChunk& c : plan) {
      RowRef ref = refs[c.candidate];
      ref.tokens = c.tokens;
      Request& r = *ref.r;
      Sequence& s = r.seqs[ref.seq];
      RowAsk ask;
      ask.first_sample = L.sample_specs.size();
      switch (r.phase) {
        case Phase::kPrefill:
          // The prompt's last chunk: every sample draws its first token from its logits.
          if (s.fed + c.tokens == s.feed.size()) {
            for (int32_t j = 0; j < static_cast<int32_t>(r.seqs.size()); ++j) {
              L.sample_specs.push_back(sample_spec(r, j));
            }
          }
          break;
        case Phase::kDecode:
          L.sample_specs.push_back(sample_spec(r, ref.seq));
          break;
        case Phase::kScore:
          ask.score = static_cast<int32_t>(L.score_specs.size());
          L.score_specs.push_back(
              {absl::MakeConstSpan(s.targets).subspan(s.scored, c.tokens), r.score.top_logprobs});
          break;
        default:
          break;
      }
      ask.num_samples = L.sample_specs.size() - ask.first_sample;
      asks.push_back(ask);
      planned.push_back(ref);
      step_tokens += c.tokens;
    }
    std::vector<ForwardRow> rows;
    rows.reserve(planned.size());
    for (size_t k = 0; k < planned.size(); ++k) {
      const RowRef& ref = planned[k];
      Sequence& s = ref.r->seqs[ref.seq];
      ForwardRow row{s.slot, absl::MakeConstSpan(s.feed).subspan(s.fed, ref.tokens),
                     LogitsMode::kNone};
      row.samples =
          absl::MakeConstSpan(L.sample_specs).subspan(asks[k].first_sample, asks[k].num_samples);
      if (asks[k].score >= 0) row.score = &L.score_specs[asks[k].score];
      rows.push_back(row);
    }
    const Clock::time_point forward_start = Clock::now();

    // 4. Forward.
    Clock::time_point sample_start = forward_start;
    if (!rows.empty()) {
      absl::Status s = L.backend->Forward(rows, L.out);
      sample_start = Clock::now();
      if (!s.ok()) {
        L.fault = std::string(s.message());
        fail_all(s);
        for (auto& r : L.waiting)
          end_request(*r, absl::UnavailableError(absl::StrCat("engine failed: ", L.fault)));
        left_queue += static_cast<int32_t>(L.waiting.size());
        L.waiting.clear();
      } else {
        // 5. Emit tokens, record scores.
        size_t next_score = 0;
        std::vector<Request*> finished;
        for (size_t k = 0; k < planned.size(); ++k) {
          const RowRef& ref = planned[k];
          Request& r = *ref.r;
          Sequence& q = r.seqs[ref.seq];
          q.fed += ref.tokens;
          auto choice = [&](size_t j) -> const TokenChoice& {
            return L.out.samples[asks[k].first_sample + j];
          };
          const size_t scored = rows[k].score != nullptr ? static_cast<size_t>(ref.tokens) : 0;
          const size_t first_score = next_score;
          next_score += scored;
          if (std::find(finished.begin(), finished.end(), &r) != finished.end()) continue;
          switch (r.phase) {
            case Phase::kPrefill:
              if (q.fed == q.feed.size()) {
                absl::Status copied = absl::OkStatus();
                for (size_t j = 1; j < r.seqs.size() && copied.ok(); ++j) {
                  copied = L.pool.Copy(r.slots[0], r.seqs[j].slot);
                }
                if (!copied.ok()) {
                  L.fault = std::string(copied.message());
                  break;
                }
                r.phase = Phase::kDecode;
                r.timings.first_token = sample_start;
                r.timings.has_first_token = true;
                bool all_done = false;
                for (int32_t j = 0; j < static_cast<int32_t>(r.seqs.size()); ++j) {
                  all_done = sample_and_emit(r, j, choice(j), sample_start);
                }
                if (all_done) finished.push_back(&r);
              }
              break;
            case Phase::kDecode:
              if (sample_and_emit(r, ref.seq, choice(0), sample_start)) finished.push_back(&r);
              break;
            case Phase::kContext:
              if (q.fed == q.feed.size()) {
                absl::Status started = start_scoring(r);
                if (!started.ok()) L.fault = std::string(started.message());
              }
              break;
            case Phase::kScore: {
              if (!r.timings.has_first_token) {
                r.timings.first_token = sample_start;
                r.timings.has_first_token = true;
              }
              for (size_t t = 0; t < scored; ++t) {
                TargetScore& ts = L.out.scores[first_score + t];
                q.score.logprobs.push_back(ts.logprob);
                q.score.sum += ts.logprob;
                q.score.is_greedy = q.score.is_greedy && ts.is_argmax;
                if (r.score.top_logprobs > 0) q.score.top.push_back(std::move(ts.top));
                ++q.scored;
              }
              if (std::all_of(r.seqs.begin(), r.seqs.end(),
                              [](const Sequence& x) { return x.scored == x.targets.size(); })) {
                finished.push_back(&r);
              }
              break;
            }
            default:
              break;
          }
        }
        for (Request* r : finished) {
          end_request(*r, absl::OkStatus());
          remove_active(r);
        }
        if (!L.fault.empty()) fail_all(absl::InternalError(L.fault));
      }
    }
    const Clock::time_point end = Clock::now();
    if (!rows.empty()) ++L.steps;

    bool exit_loop = false;
    {
      absl::MutexLock lock(&mu_);
      queued_ -= left_queue;
      stats_.running = static_cast<int32_t>(L.active.size());
      stats_.slots_used = L.pool.used();
      stats_.steps = L.steps;
      if (!L.fault.empty() && !stats_.failed) {
        stats_.failed = true;
        stats_.fault = L.fault;
      }
      // A faulted engine keeps refusing (ending) what arrives until it is shut down.
      exit_loop = draining_ && L.active.empty() && L.waiting.empty() && inbox_.empty();
    }
    if (!rows.empty() && L.observer != nullptr) {
      StepStats st;
      st.schedule_seconds = Seconds(forward_start - iteration_start);
      st.forward_seconds = Seconds(sample_start - forward_start);
      st.sample_seconds = Seconds(end - sample_start);
      st.batch_rows = static_cast<int32_t>(rows.size());
      st.tokens = step_tokens;
      L.observer->OnStep(st);
    }
    if (exit_loop) break;
  }
}

}  // namespace xlstm::engine
