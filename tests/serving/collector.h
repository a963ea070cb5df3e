// Collects a request's callbacks (which run on the engine thread) for a test thread to wait on.
#ifndef XLSTM_TESTS_SERVING_COLLECTOR_H_
#define XLSTM_TESTS_SERVING_COLLECTOR_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/serving/request.h"
#include "engine/serving/result_sink.h"

namespace xlstm::engine::testing {

// Blocks until `done` holds a value (set under `mu` by an on_done callback); false on timeout.
template <typename Done>
bool WaitForDone(absl::Mutex& mu, std::optional<Done>& done, absl::Duration timeout) {
  absl::MutexLock lock(&mu);
  return mu.AwaitWithTimeout(absl::Condition(
                                 +[](std::optional<Done>* d) { return d->has_value(); }, &done),
                             timeout);
}

struct GenerateCollector {
  absl::Mutex mu;
  std::vector<SampleUpdate> updates ABSL_GUARDED_BY(mu);
  std::optional<GenerateDone> done ABSL_GUARDED_BY(mu);
  std::shared_ptr<GenerateSink> sink;

  // Drains the request's sink whenever it has output, as the gRPC side does; each chunk a Take
  // returns becomes one SampleUpdate here (tokens coalesced).
  void Attach(GenerateRequest& r) {
    sink = std::make_shared<GenerateSink>(r.n, [this] { Drain(); });
    r.sink = sink;
  }
  void Drain() {
    // The sink re-arms only on an empty Take, so drain until one comes back empty.
    while (true) {
      SinkBatch batch = sink->Take();
      if (batch.empty()) return;
      absl::MutexLock lock(&mu);
      for (SampleChunk& c : batch.chunks) {
        SampleUpdate u;
        u.sample = c.sample;
        u.tokens = std::move(c.tokens);
        u.text = std::move(c.text);
        u.finish = c.finish;
        if (!c.token_times.empty()) u.time = c.token_times.back();
        updates.push_back(std::move(u));
      }
      if (batch.done) done = std::move(batch.done);
    }
  }
  // Waits for on_done; false on timeout.
  bool Wait(absl::Duration timeout = absl::Seconds(20)) { return WaitForDone(mu, done, timeout); }
  std::vector<int32_t> Ids(int32_t sample = 0) {
    absl::MutexLock lock(&mu);
    std::vector<int32_t> ids;
    for (const SampleUpdate& u : updates) {
      if (u.sample != sample) continue;
      for (const GeneratedToken& t : u.tokens) ids.push_back(t.id);
    }
    return ids;
  }
  std::string Text(int32_t sample = 0) {
    absl::MutexLock lock(&mu);
    std::string text;
    for (const SampleUpdate& u : updates) {
      if (u.sample == sample) text += u.text;
    }
    return text;
  }
  GenerateDone Done() {
    absl::MutexLock lock(&mu);
    return *done;
  }
};

struct ScoreCollector {
  absl::Mutex mu;
  std::optional<ScoreDone> done ABSL_GUARDED_BY(mu);
  void Attach(ScoreRequest& r) {
    r.on_done = [this](ScoreDone d) {
      absl::MutexLock lock(&mu);
      done = std::move(d);
    };
  }
  bool Wait(absl::Duration timeout = absl::Seconds(20)) { return WaitForDone(mu, done, timeout); }
  ScoreDone Done() {
    absl::MutexLock lock(&mu);
    return *done;
  }
};

struct EmbedCollector {
  absl::Mutex mu;
  std::optional<EmbedDone> done ABSL_GUARDED_BY(mu);
  void Attach(EmbedRequest& r) {
    r.on_done = [this](EmbedDone d) {
      absl::MutexLock lock(&mu);
      done = std::move(d);
    };
  }
  bool Wait(absl::Duration timeout = absl::Seconds(20)) { return WaitForDone(mu, done, timeout); }
  EmbedDone Done() {
    absl::MutexLock lock(&mu);
    return *done;
  }
};

}  // namespace xlstm::engine::testing

#endif  // XLSTM_TESTS_SERVING_COLLECTOR_H_
