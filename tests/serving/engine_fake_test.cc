// Engine tests on the FakeBackend: the loop's bookkeeping (admission, budget, stops, cancels,
// deadlines, queue bound, drain, faults) without model work.
#include <algorithm>
#include <memory>
#include <thread>
#include <vector>

#include "engine/sampling/logprobs.h"
#include "engine/serving/engine.h"
#include "engine/serving/result_sink.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/serving/collector.h"
#include "tests/serving/fake_backend.h"

namespace xlstm::engine {
namespace {

using testing::FakeBackend;
using testing::GenerateCollector;
using ::testing::HasSubstr;
using testing::ScoreCollector;

constexpr int64_t kVocab = 64;

struct Harness {
  explicit Harness(int32_t slots, EngineOptions options = {}, EngineObserver* observer = nullptr) {
    auto b = std::make_unique<FakeBackend>(slots, kVocab);
    backend = b.get();
    engine = *Engine::Create(std::move(b), options, observer);
  }
  FakeBackend* backend;
  std::unique_ptr<Engine> engine;

  void WaitIdle() {
    for (int i = 0; i < 2000; ++i) {
      EngineStats s = engine->Stats();
      if (s.running == 0 && s.waiting == 0 && s.slots_used == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    FAIL() << "engine did not become idle";
  }
  void WaitRunning(int32_t n) {
    for (int i = 0; i < 2000; ++i) {
      if (engine->Stats().running == n && backend->in_forward()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    FAIL() << "never " << n << " running";
  }
};

// Greedy tokens straight from the fake model.
std::vector<int32_t> Oracle(const std::vector<int32_t>& prompt, int32_t max_new) {
  uint64_t s = 0;
  for (int32_t t : prompt) s = FakeBackend::Advance(s, t);
  std::vector<int32_t> out;
  for (int32_t i = 0; i < max_new; ++i) {
    const int32_t t = Argmax(FakeBackend::Logits(s, kVocab));
    out.push_back(t);
    s = FakeBackend::Advance(s, t);
  }
  return out;
}

GenerateRequest Greedy(std::vector<int32_t> prompt, int32_t max_new) {
  GenerateRequest r;
  r.prompt = std::move(prompt);
  r.sampling.temperature = 0;
  r.stopping.max_new_tokens = max_new;
  r.stopping.ignore_eos = true;
  return r;
}

std::vector<int32_t> Prompt(int32_t len, int32_t salt) {
  std::vector<int32_t> p;
  for (int32_t i = 0; i < len; ++i) p.push_back((i * 7 + salt * 13 + 3) % kVocab);
  return p;
}

TEST(EngineFakeTest, GreedyMatchesOracleAndReleasesSlots) {
  Harness h(4);
  GenerateCollector c;
  GenerateRequest r = Greedy(Prompt(10, 1), 12);
  c.Attach(r);
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(r)).ok());
  ASSERT_TRUE(c.Wait());
  EXPECT_TRUE(c.Done().status.ok());
  EXPECT_EQ(c.Ids(), Oracle(Prompt(10, 1), 12));
  EXPECT_EQ(c.Done().finish[0], FinishReason::kLength);
  EXPECT_EQ(c.Done().generated_tokens, 12);
  h.WaitIdle();
}

TEST(EngineFakeTest, ManyMixedRequestsEqualTheirOraclesAndRespectTheBudget) {
  EngineOptions o;
  o.step_token_budget = 24;
  Harness h(8, o);
  std::vector<std::unique_ptr<GenerateCollector>> cs;
  for (int i = 0; i < 30; ++i) {
    cs.push_back(std::make_unique<GenerateCollector>());
    GenerateRequest r = Greedy(Prompt(1 + (i * 11) % 40, i), 1 + (i * 5) % 17);
    cs.back()->Attach(r);
    ASSERT_TRUE(h.engine->SubmitGenerate(std::move(r)).ok());
  }
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(cs[i]->Wait());
    EXPECT_EQ(cs[i]->Ids(), Oracle(Prompt(1 + (i * 11) % 40, i), 1 + (i * 5) % 17)) << i;
  }
  for (const FakeBackend::Step& s : h.backend->steps()) {
    EXPECT_LE(s.rows, 8);
    EXPECT_LE(s.tokens, std::max(24, s.decode_rows));
  }
  h.WaitIdle();
}

TEST(EngineFakeTest, SamplesOfOnePromptShareThePrefill) {
  Harness h(4);
  GenerateCollector c;
  GenerateRequest r = Greedy(Prompt(20, 2), 5);
  r.n = 3;
  c.Attach(r);
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(r)).ok());
  ASSERT_TRUE(c.Wait());
  for (int s = 0; s < 3; ++s) EXPECT_EQ(c.Ids(s), Oracle(Prompt(20, 2), 5));
  int32_t prefill_tokens = 0;
  for (const auto& s : h.backend->steps()) prefill_tokens += s.tokens - s.decode_rows;
  EXPECT_EQ(prefill_tokens, 20);  // once, not three times
  h.WaitIdle();
}

TEST(EngineFakeTest, SampledRequestIsReproducibleWhateverTheBatch) {
  auto run = [](int others) {
    Harness h(8);
    std::vector<std::unique_ptr<GenerateCollector>> cs;
    for (int i = 0; i <= others; ++i) {
      cs.push_back(std::make_unique<GenerateCollector>());
      GenerateRequest r = Greedy(Prompt(5 + i, i), 10);
      r.sampling.temperature = 0.9;
      r.sampling.top_p = 0.95;
      r.sampling.seed = 1234 + i;
      cs.back()->Attach(r);
      EXPECT_TRUE(h.engine->SubmitGenerate(std::move(r)).ok());
    }
    EXPECT_TRUE(cs[0]->Wait());
    std::vector<int32_t> ids = cs[0]->Ids();
    h.engine.reset();  // ends the others before their collectors go away
    return ids;
  };
  EXPECT_EQ(run(0), run(7));
}

TEST(EngineFakeTest, EosStopTokenAndMinNewTokens) {
  Harness h(2);
  const std::vector<int32_t> oracle = Oracle(Prompt(6, 3), 8);
  {
    GenerateCollector c;
    GenerateRequest r = Greedy(Prompt(6, 3), 8);
    r.stopping.stop_token_ids = {oracle[3]};
    c.Attach(r);
    ASSERT_TRUE(h.engine->SubmitGenerate(std::move(r)).ok());
    ASSERT_TRUE(c.Wait());
    const auto ids = c.Ids();
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids.back(), oracle[3]);
    EXPECT_LE(ids.size(), 4u);
    EXPECT_EQ(c.Done().finish[0], FinishReason::kStopSequence);
  }
  {
    // With min_new_tokens the stop token is masked until enough tokens exist.
    GenerateCollector c;
    GenerateRequest r = Greedy(Prompt(6, 3), 8);
    r.stopping.stop_token_ids = {oracle[0]};
    r.stopping.min_new_tokens = 3;
    c.Attach(r);
    ASSERT_TRUE(h.engine->SubmitGenerate(std::move(r)).ok());
    ASSERT_TRUE(c.Wait());
    EXPECT_NE(c.Ids()[0], oracle[0]);
    EXPECT_GE(c.Ids().size(), 3u);
  }
  h.WaitIdle();
}

// Decodes each token to one letter, so that stop strings can be tested without a tokenizer.
class LetterDecoder : public TextDecoder {
 public:
  std::string Add(int32_t token) override { return std::string(1, 'a' + token % 26); }
  std::string Finish() override { return ""; }
};

TEST(EngineFakeTest, StopStringEndsTheStreamWithoutLeaking) {
  Harness h(2);
  const std::vector<int32_t> oracle = Oracle(Prompt(4, 9), 10);
  std::string full;
  for (int32_t t : oracle) full += static_cast<char>('a' + t % 26);
  const std::string stop = full.substr(5, 2);
  const size_t at = full.find(stop);
  GenerateCollector c;
  GenerateRequest r = Greedy(Prompt(4, 9), 10);
  r.make_decoder = [] { return std::make_unique<LetterDecoder>(); };
  r.stopping.stop_strings = {stop};
  c.Attach(r);
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(r)).ok());
  ASSERT_TRUE(c.Wait());
  EXPECT_EQ(c.Text(), full.substr(0, at));
  EXPECT_EQ(c.Ids().size(), at + 2);
  EXPECT_EQ(c.Done().finish[0], FinishReason::kStopSequence);
  h.WaitIdle();
}

TEST(EngineFakeTest, ScoreMatchesOracleWithSharedContext) {
  Harness h(4);
  const std::vector<int32_t> context = Prompt(9, 4);
  const std::vector<std::vector<int32_t>> conts = {{5, 6, 7}, {8}, {9, 10}};
  ScoreCollector c;
  ScoreRequest r;
  r.context = context;
  r.continuations = conts;
  r.top_logprobs = 2;
  c.Attach(r);
  ASSERT_TRUE(h.engine->SubmitScore(std::move(r)).ok());
  ASSERT_TRUE(c.Wait());
  ScoreDone d = c.Done();
  ASSERT_TRUE(d.status.ok()) << d.status;
  ASSERT_EQ(d.continuations.size(), 3u);
  for (size_t j = 0; j < conts.size(); ++j) {
    uint64_t s = 0;
    for (int32_t t : context) s = FakeBackend::Advance(s, t);
    double sum = 0;
    ASSERT_EQ(d.continuations[j].logprobs.size(), conts[j].size());
    for (size_t i = 0; i < conts[j].size(); ++i) {
      const double lp = TokenLogProb(FakeBackend::Logits(s, kVocab), conts[j][i]);
      EXPECT_NEAR(d.continuations[j].logprobs[i], lp, 1e-9);
      sum += lp;
      s = FakeBackend::Advance(s, conts[j][i]);
    }
    EXPECT_NEAR(d.continuations[j].sum, sum, 1e-9);
    EXPECT_EQ(d.continuations[j].top.size(), conts[j].size());
  }
  h.WaitIdle();
}

TEST(EngineFakeTest, QueueFullIsRejectedAtOnce) {
  EngineOptions o;
  o.max_queue = 2;
  Harness h(1, o);
  h.backend->Hold(true);
  GenerateCollector a, b, c, d;
  GenerateRequest ra = Greedy(Prompt(3, 1), 4), rb = Greedy(Prompt(3, 2), 4),
                  rc = Greedy(Prompt(3, 3), 4), rd = Greedy(Prompt(3, 4), 4);
  a.Attach(ra);
  b.Attach(rb);
  c.Attach(rc);
  d.Attach(rd);
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(ra)).ok());
  h.WaitRunning(1);
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(rb)).ok());
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(rc)).ok());
  auto rejected = h.engine->SubmitGenerate(std::move(rd));
  EXPECT_EQ(rejected.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(rejected.status().message(), HasSubstr("max_queue = 2"));
  h.backend->Hold(false);
  ASSERT_TRUE(a.Wait() && b.Wait() && c.Wait());
  h.WaitIdle();
}

TEST(EngineFakeTest, CancelFreesTheSlotForTheNextRequestFirst) {
  Harness h(1);
  h.backend->Hold(true);
  GenerateCollector a, b;
  GenerateRequest ra = Greedy(Prompt(3, 1), 1000), rb = Greedy(Prompt(3, 2), 3);
  a.Attach(ra);
  b.Attach(rb);
  auto id = h.engine->SubmitGenerate(std::move(ra));
  ASSERT_TRUE(id.ok());
  h.WaitRunning(1);
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(rb)).ok());
  h.engine->Cancel(*id);
  h.backend->Hold(false);
  ASSERT_TRUE(a.Wait());
  EXPECT_EQ(a.Done().status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(a.Done().finish[0], FinishReason::kCancelled);
  EXPECT_LE(a.Ids().size(), 1u);  // the step in flight at most; no step after the cancel
  ASSERT_TRUE(b.Wait());
  EXPECT_EQ(b.Ids(), Oracle(Prompt(3, 2), 3));
  h.WaitIdle();
}

TEST(EngineFakeTest, CancelWhileWaitingAndDeadlinesReleaseEverything) {
  Harness h(1);
  h.backend->Hold(true);
  GenerateCollector a, b, c;
  GenerateRequest ra = Greedy(Prompt(3, 1), 1000), rb = Greedy(Prompt(3, 2), 3),
                  rc = Greedy(Prompt(3, 3), 3);
  ra.deadline = Clock::now() + std::chrono::milliseconds(50);
  rc.deadline = Clock::now() + std::chrono::milliseconds(30);
  a.Attach(ra);
  b.Attach(rb);
  c.Attach(rc);
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(ra)).ok());
  h.WaitRunning(1);
  auto idb = h.engine->SubmitGenerate(std::move(rb));
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(rc)).ok());
  h.engine->Cancel(*idb);
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  h.backend->Hold(false);
  ASSERT_TRUE(a.Wait() && b.Wait() && c.Wait());
  EXPECT_EQ(a.Done().status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(b.Done().status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(c.Done().status.code(), absl::StatusCode::kDeadlineExceeded);
  h.WaitIdle();
}

// Regression (issue 10, defect 1): with one slot, requests that carry a (far) deadline and
// wait behind a long request are admitted as soon as the slot frees, not at their deadline.
TEST(EngineFakeTest, QueuedRequestsWithDeadlinesAreAdmittedWhenTheSlotFrees) {
  // The collectors outlive the engine, so that a failure ends the test cleanly.
  GenerateCollector long_request;
  std::vector<std::unique_ptr<GenerateCollector>> shorts;
  Harness h(1);
  GenerateRequest rl = Greedy(Prompt(3, 1), 150);
  long_request.Attach(rl);
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(rl)).ok());
  constexpr int kShort = 4;
  for (int i = 0; i < kShort; ++i) {
    shorts.push_back(std::make_unique<GenerateCollector>());
    GenerateRequest r = Greedy(Prompt(3, 10 + i), 3);
    r.deadline = Clock::now() + std::chrono::seconds(15);
    shorts.back()->Attach(r);
    ASSERT_TRUE(h.engine->SubmitGenerate(std::move(r)).ok());
  }
  ASSERT_TRUE(long_request.Wait());
  EXPECT_TRUE(long_request.Done().status.ok());
  const Clock::time_point long_done = Clock::now();
  for (int i = 0; i < kShort; ++i) {
    // Far less than the 15 s deadline: nobody may sleep until it.
    ASSERT_TRUE(shorts[i]->Wait(absl::Seconds(3))) << "short request " << i << " waited";
    EXPECT_TRUE(shorts[i]->Done().status.ok()) << i << ": " << shorts[i]->Done().status;
    EXPECT_EQ(shorts[i]->Ids(), Oracle(Prompt(3, 10 + i), 3)) << i;
  }
  EXPECT_LT(Clock::now() - long_done, std::chrono::seconds(2));
  h.WaitIdle();
}

// gRPC cancels a call when its deadline passes, often before the engine's own deadline check
// sees it: such a cancel ends the request as DEADLINE_EXCEEDED, an early one as CANCELLED.
TEST(EngineFakeTest, ACancelAtTheDeadlineIsADeadlineExpiry) {
  Harness h(2);
  h.backend->Hold(true);
  GenerateCollector late, early;
  GenerateRequest rl = Greedy(Prompt(3, 1), 1000), re = Greedy(Prompt(3, 2), 1000);
  rl.deadline = Clock::now() + std::chrono::milliseconds(30);
  re.deadline = Clock::now() + std::chrono::seconds(60);
  late.Attach(rl);
  early.Attach(re);
  auto id_late = h.engine->SubmitGenerate(std::move(rl));
  auto id_early = h.engine->SubmitGenerate(std::move(re));
  ASSERT_TRUE(id_late.ok() && id_early.ok());
  h.WaitRunning(2);
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  h.engine->Cancel(*id_late);
  h.engine->Cancel(*id_early);
  h.backend->Hold(false);
  ASSERT_TRUE(late.Wait() && early.Wait());
  EXPECT_EQ(late.Done().status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(early.Done().status.code(), absl::StatusCode::kCancelled);
  h.WaitIdle();
}

TEST(EngineFakeTest, InvalidRequestsAreRejectedWithFieldAndLimit) {
  Harness h(2);
  auto submit = [&](GenerateRequest r) {
    r.sink = std::make_shared<GenerateSink>(r.n, nullptr);
    return h.engine->SubmitGenerate(std::move(r)).status();
  };
  EXPECT_THAT(submit(Greedy({}, 3)).message(), HasSubstr("prompt is empty"));
  EXPECT_THAT(submit(Greedy({1, 64}, 3)).message(), HasSubstr("prompt.ids[1] = 64"));
  GenerateRequest n = Greedy({1}, 3);
  n.n = 3;
  EXPECT_THAT(submit(std::move(n)).message(), HasSubstr("n = 3 is outside [1, 2]"));
  GenerateRequest top = Greedy({1}, 3);
  top.top_logprobs = 21;
  EXPECT_THAT(submit(std::move(top)).message(), HasSubstr("top_logprobs = 21"));
  GenerateRequest stop = Greedy({1}, 3);
  stop.stopping.stop_strings = {"x"};
  EXPECT_THAT(submit(std::move(stop)).message(), HasSubstr("tokenizer"));
  EXPECT_EQ(h.engine->Stats().waiting, 0);
}

TEST(EngineFakeTest, DrainFinishesInFlightAndRefusesNew) {
  Harness h(2);
  GenerateCollector a;
  GenerateRequest ra = Greedy(Prompt(3, 1), 20);
  a.Attach(ra);
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(ra)).ok());
  std::thread drain([&] { h.engine->Shutdown(absl::Seconds(10)); });
  ASSERT_TRUE(a.Wait());
  EXPECT_TRUE(a.Done().status.ok());
  EXPECT_EQ(a.Ids().size(), 20u);
  drain.join();
  GenerateRequest late = Greedy(Prompt(3, 1), 2);
  late.sink = std::make_shared<GenerateSink>(late.n, nullptr);
  EXPECT_EQ(h.engine->SubmitGenerate(std::move(late)).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST(EngineFakeTest, DrainPastGraceEndsInFlightWithUnavailable) {
  Harness h(1);
  h.backend->Hold(true);
  GenerateCollector a, b;
  GenerateRequest ra = Greedy(Prompt(3, 1), 1000), rb = Greedy(Prompt(3, 2), 5);
  a.Attach(ra);
  b.Attach(rb);
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(ra)).ok());
  h.WaitRunning(1);
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(rb)).ok());
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    h.backend->Hold(false);
  });
  h.engine->Shutdown(absl::Milliseconds(20));
  release.join();
  ASSERT_TRUE(a.Wait() && b.Wait());
  EXPECT_EQ(a.Done().status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(b.Done().status.code(), absl::StatusCode::kUnavailable);
  h.WaitIdle();
}

TEST(EngineFakeTest, BackendFaultEndsRequestsWithInternalThenRefuses) {
  Harness h(2);
  h.backend->FailNextForward();
  GenerateCollector a;
  GenerateRequest ra = Greedy(Prompt(3, 1), 5);
  a.Attach(ra);
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(ra)).ok());
  ASSERT_TRUE(a.Wait());
  EXPECT_EQ(a.Done().status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(a.Done().status.message(), HasSubstr("fake device fault"));
  h.WaitIdle();
  EXPECT_TRUE(h.engine->Stats().failed);
  GenerateRequest late = Greedy(Prompt(3, 1), 2);
  late.sink = std::make_shared<GenerateSink>(late.n, nullptr);
  EXPECT_EQ(h.engine->SubmitGenerate(std::move(late)).status().code(),
            absl::StatusCode::kUnavailable);
}

// Without deadlines, requests queued behind a full engine run in arrival order (FCFS), each as
// soon as the slot frees.
TEST(EngineFakeTest, QueuedRequestsWithoutDeadlinesRunInArrivalOrder) {
  std::vector<std::unique_ptr<GenerateCollector>> cs;
  Harness h(1);
  for (int i = 0; i < 4; ++i) {
    cs.push_back(std::make_unique<GenerateCollector>());
    GenerateRequest r = Greedy(Prompt(3, i), i == 0 ? 40 : 3);
    cs.back()->Attach(r);
    ASSERT_TRUE(h.engine->SubmitGenerate(std::move(r)).ok());
  }
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(cs[i]->Wait(absl::Seconds(5))) << i;
  for (int i = 1; i < 4; ++i) {
    EXPECT_TRUE(cs[i]->Done().status.ok());
    EXPECT_LE(cs[i - 1]->Done().timings.done, cs[i]->Done().timings.admitted) << i;
  }
  h.WaitIdle();
}

// A request cancelled while it waits for a slot ends at once, never admitted, and the one
// behind it takes its turn.
TEST(EngineFakeTest, CancelWhileQueuedEndsItWithoutAdmission) {
  GenerateCollector a, b, c;
  Harness h(1);
  h.backend->Hold(true);
  GenerateRequest ra = Greedy(Prompt(3, 1), 5), rb = Greedy(Prompt(3, 2), 5),
                  rc = Greedy(Prompt(3, 3), 5);
  a.Attach(ra);
  b.Attach(rb);
  c.Attach(rc);
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(ra)).ok());
  h.WaitRunning(1);
  auto idb = h.engine->SubmitGenerate(std::move(rb));
  ASSERT_TRUE(idb.ok());
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(rc)).ok());
  EXPECT_EQ(h.engine->Stats().waiting, 2);
  h.engine->Cancel(*idb);
  h.backend->Hold(false);
  ASSERT_TRUE(a.Wait() && b.Wait() && c.Wait());
  EXPECT_EQ(b.Done().status.code(), absl::StatusCode::kCancelled);
  EXPECT_FALSE(b.Done().timings.was_admitted);
  EXPECT_TRUE(b.Ids().empty());
  EXPECT_TRUE(a.Done().status.ok());
  EXPECT_EQ(c.Ids(), Oracle(Prompt(3, 3), 5));
  h.WaitIdle();
}

// A fault in the middle of generation: the running requests end with INTERNAL after the tokens
// they already had, the queued one with UNAVAILABLE, every slot is free, new work is refused.
TEST(EngineFakeTest, FaultMidGenerationEndsRunningAndQueuedRequests) {
  GenerateCollector a, b, queued;
  EngineOptions options;
  options.limits.max_new_tokens = 1 << 24;  // they must still run when the fault comes
  Harness h(2, options);
  GenerateRequest ra = Greedy(Prompt(3, 1), 1 << 24), rb = Greedy(Prompt(4, 2), 1 << 24),
                  rq = Greedy(Prompt(5, 3), 3);
  a.Attach(ra);
  b.Attach(rb);
  queued.Attach(rq);
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(ra)).ok());
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(rb)).ok());
  for (int i = 0; i < 2000 && (a.Ids().size() < 3 || b.Ids().size() < 3); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  h.backend->Hold(true);
  h.WaitRunning(2);
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(rq)).ok());
  h.backend->FailNextForward();
  h.backend->Hold(false);
  ASSERT_TRUE(a.Wait() && b.Wait() && queued.Wait());
  for (GenerateCollector* c : {&a, &b}) {
    EXPECT_EQ(c->Done().status.code(), absl::StatusCode::kInternal);
    EXPECT_THAT(c->Done().status.message(), HasSubstr("fake device fault"));
    EXPECT_GE(c->Ids().size(), 3u);
    EXPECT_EQ(c->Done().generated_tokens, static_cast<int32_t>(c->Ids().size()));
  }
  EXPECT_EQ(queued.Done().status.code(), absl::StatusCode::kUnavailable);
  h.WaitIdle();
  const EngineStats stats = h.engine->Stats();
  EXPECT_TRUE(stats.failed);
  EXPECT_THAT(stats.fault, HasSubstr("fake device fault"));
  GenerateRequest late = Greedy(Prompt(3, 1), 2);
  late.sink = std::make_shared<GenerateSink>(late.n, nullptr);
  EXPECT_EQ(h.engine->SubmitGenerate(std::move(late)).status().code(),
            absl::StatusCode::kUnavailable);
}

// Draining lets the running request and the queued ones behind it finish.
TEST(EngineFakeTest, DrainFinishesQueuedRequestsToo) {
  std::vector<std::unique_ptr<GenerateCollector>> cs;
  Harness h(1);
  h.backend->Hold(true);
  for (int i = 0; i < 3; ++i) {
    cs.push_back(std::make_unique<GenerateCollector>());
    GenerateRequest r = Greedy(Prompt(3, i), 4);
    cs.back()->Attach(r);
    ASSERT_TRUE(h.engine->SubmitGenerate(std::move(r)).ok());
    if (i == 0) h.WaitRunning(1);
  }
  std::thread drain([&] { h.engine->Shutdown(absl::Seconds(10)); });
  while (!h.engine->Stats().draining) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  h.backend->Hold(false);
  drain.join();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(cs[i]->Wait(absl::Seconds(1)));
    EXPECT_TRUE(cs[i]->Done().status.ok()) << i << ": " << cs[i]->Done().status;
    EXPECT_EQ(cs[i]->Ids(), Oracle(Prompt(3, i), 4)) << i;
  }
}

TEST(EngineFakeTest, NothingToGenerateEndsAtAdmission) {
  GenerateCollector c;
  Harness h(1);
  GenerateRequest r = Greedy(Prompt(3, 1), 0);
  c.Attach(r);
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(r)).ok());
  ASSERT_TRUE(c.Wait());
  EXPECT_TRUE(c.Done().status.ok());
  EXPECT_EQ(c.Done().finish[0], FinishReason::kLength);
  EXPECT_TRUE(c.Ids().empty());
  EXPECT_TRUE(h.backend->steps().empty());
  h.WaitIdle();
}

TEST(EngineFakeTest, ScoreWithOneTokenContext) {
  ScoreCollector c;
  Harness h(2);
  ScoreRequest r;
  r.context = {7};
  r.continuations = {{3, 4}, {5}};
  c.Attach(r);
  ASSERT_TRUE(h.engine->SubmitScore(std::move(r)).ok());
  ASSERT_TRUE(c.Wait());
  ASSERT_TRUE(c.Done().status.ok()) << c.Done().status;
  const uint64_t s7 = FakeBackend::Advance(0, 7);
  EXPECT_NEAR(c.Done().continuations[0].logprobs[0],
              TokenLogProb(FakeBackend::Logits(s7, kVocab), 3), 1e-9);
  EXPECT_NEAR(c.Done().continuations[0].logprobs[1],
              TokenLogProb(FakeBackend::Logits(FakeBackend::Advance(s7, 3), kVocab), 4), 1e-9);
  EXPECT_NEAR(c.Done().continuations[1].logprobs[0],
              TokenLogProb(FakeBackend::Logits(s7, kVocab), 5), 1e-9);
  h.WaitIdle();
}

// gRPC rounds a timeout up (to 3 significant digits) on the wire, so a client's cancel at its
// own deadline reaches the engine up to 1% of the timeout before the server's deadline: it
// still counts as the deadline's.
TEST(EngineFakeTest, ACancelWithinTheTimeoutRoundingIsADeadlineExpiry) {
  GenerateCollector c;
  Harness h(1);
  h.backend->Hold(true);
  GenerateRequest r = Greedy(Prompt(3, 1), 1000);
  r.arrival = Clock::now() - std::chrono::seconds(20);         // a 20 s timeout...
  r.deadline = Clock::now() + std::chrono::milliseconds(150);  // ...of which 150 ms are left
  c.Attach(r);
  auto id = h.engine->SubmitGenerate(std::move(r));
  ASSERT_TRUE(id.ok());
  h.WaitRunning(1);
  h.engine->Cancel(*id);
  h.backend->Hold(false);
  ASSERT_TRUE(c.Wait());
  EXPECT_EQ(c.Done().status.code(), absl::StatusCode::kDeadlineExceeded);
  h.WaitIdle();
}

// Records the observer's steps (called on the engine thread).
class StepRecorder : public EngineObserver {
 public:
  void OnStep(const StepStats& stats) override {
    absl::MutexLock lock(&mu_);
    steps_.push_back({stats, Clock::now()});
  }
  struct Seen {
    StepStats stats;
    Clock::time_point at;
  };
  std::vector<Seen> steps() {
    absl::MutexLock lock(&mu_);
    return steps_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Seen> steps_ ABSL_GUARDED_BY(mu_);
};

// Regression (issue 10, defect 4): idle time before a request is no phase of its first step;
// the phases of a step add up to at most its wall time.
TEST(EngineFakeTest, StepPhasesExcludeIdleTimeAndFitInWallTime) {
  StepRecorder recorder;
  GenerateCollector c;
  Harness h(1, EngineOptions{}, &recorder);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the engine idles
  const Clock::time_point submitted = Clock::now();
  GenerateRequest r = Greedy(Prompt(3, 1), 3);
  c.Attach(r);
  ASSERT_TRUE(h.engine->SubmitGenerate(std::move(r)).ok());
  ASSERT_TRUE(c.Wait());
  h.WaitIdle();
  const std::vector<StepRecorder::Seen> steps = recorder.steps();
  ASSERT_EQ(steps.size(), 3u);  // the prompt, then two decodes
  Clock::time_point previous = submitted;
  for (const StepRecorder::Seen& step : steps) {
    const double phases =
        step.stats.schedule_seconds + step.stats.forward_seconds + step.stats.sample_seconds;
    EXPECT_LT(step.stats.schedule_seconds, 0.1);
    EXPECT_LE(phases, std::chrono::duration<double>(step.at - previous).count() + 1e-6);
    previous = step.at;
  }
}

}  // namespace
}  // namespace xlstm::engine
