// Where the engine thread leaves a Generate request's output, and where the consumer (the gRPC
// reactor, or a test) takes it from, coalesced.
//
// The engine appends one token at a time; the consumer takes everything pending at once when it
// can write, so a slow reader costs one message per write, not one per token. What a sink holds
// is bounded by the request itself (n samples x max_new_tokens tokens, their text and top
// log-probs), never by how slowly the consumer reads; `pending_bytes()` reports it.
//
// Threading: Append and Finish run on the engine thread and only hold the sink's mutex briefly.
// Take and pending_bytes may run on any thread. `on_ready` runs on the engine thread, outside the
// lock, when output arrives while the sink is armed; a Take that finds nothing (no chunk and no
// done) arms it, any other Take disarms it. So the consumer is woken at most once per Take that
// came back empty, and after a Take that returned data it must call Take again (after its write)
// without waiting to be woken. The sink starts armed.
//
// Ownership: shared (std::shared_ptr) by the engine's request and the consumer. After Finish the
// engine never touches the sink again; `on_ready` must stay callable until Finish has returned.
#ifndef XLSTM_ENGINE_SERVING_RESULT_SINK_H_
#define XLSTM_ENGINE_SERVING_RESULT_SINK_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "engine/serving/request.h"

namespace xlstm::engine {

// Everything one sample produced since the last Take.
struct SampleChunk {
  int32_t sample = 0;
  std::vector<GeneratedToken> tokens;
  std::vector<Clock::time_point> token_times;  // when the engine emitted each token
  std::string text;                            // concatenated text deltas
  std::optional<FinishReason> finish;          // set when the sample's last token is in here
};

struct SinkBatch {
  std::vector<SampleChunk> chunks;   // samples with pending output, by sample index
  std::optional<GenerateDone> done;  // the request's end; comes with (or after) the last chunks
  bool empty() const { return chunks.empty() && !done.has_value(); }
};

class GenerateSink {
 public:
  // `samples` is the request's n. `on_ready` may be empty (the consumer polls).
  GenerateSink(int32_t samples, std::function<void()> on_ready);

  GenerateSink(const GenerateSink&) = delete;
  GenerateSink& operator=(const GenerateSink&) = delete;

  // Engine thread. `update.tokens` may be empty (a text-only flush).
  void Append(SampleUpdate update);
  // Engine thread; the last call the engine makes on this sink.
  void Finish(GenerateDone done);

  // Any thread: takes what is pending (see the arming rule above).
  SinkBatch Take();
  // Bytes currently held for the consumer (tokens, their top log-probs, times and text).
  size_t pending_bytes() const;
  bool finished() const;

 private:
  void NotifyIfArmed(bool armed_before);

  const std::function<void()> on_ready_;
  mutable absl::Mutex mu_;
  std::vector<SampleChunk> pending_ ABSL_GUARDED_BY(mu_);  // [samples]
  std::vector<bool> has_pending_ ABSL_GUARDED_BY(mu_);     // [samples]
  std::optional<GenerateDone> done_ ABSL_GUARDED_BY(mu_);
  bool done_taken_ ABSL_GUARDED_BY(mu_) = false;
  bool armed_ ABSL_GUARDED_BY(mu_) = true;
  size_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SERVING_RESULT_SINK_H_
