// Engine-side request and result types for the serving engine. Plain C++: no gRPC, protobuf or
// prometheus types (the server maps its wire types onto these).
//
// Result contract: a Generate request's output goes to its GenerateSink (result_sink.h): the
// engine thread appends tokens and finally calls Finish exactly once; a Score or Embed request's
// `on_done` runs exactly once on the engine thread, must not block, and must not call back into
// the Engine synchronously except Cancel(). After a failed Submit neither is ever touched.
#ifndef XLSTM_ENGINE_SERVING_REQUEST_H_
#define XLSTM_ENGINE_SERVING_REQUEST_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/sampling/logprobs.h"
#include "engine/sampling/sampler.h"

namespace xlstm::engine {

class GenerateSink;  // result_sink.h

using Clock = std::chrono::steady_clock;

// Turns generated token ids into text, one id at a time (an adapter over the tokenizer's
// incremental decoder, made by the server). Owned by one request sample; called only on the
// engine thread. Must be cheap: it runs inside the loop.
class TextDecoder {
 public:
  virtual ~TextDecoder() = default;
  // Text that became final with `token` (possibly empty while a character is incomplete).
  virtual std::string Add(int32_t token) = 0;
  // Whatever is left at the end of the stream.
  virtual std::string Finish() = 0;
};

enum class FinishReason { kLength, kStopSequence, kEosToken, kCancelled };
const char* FinishReasonName(FinishReason reason);  // "length", "stop_sequence", ...

struct StoppingParams {
  int32_t max_new_tokens = 16;
  int32_t min_new_tokens = 0;  // EOS and stop tokens are masked out before this many tokens
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;    // finish with kStopSequence; the id is emitted
  std::vector<std::string> stop_strings;  // matched on the decoded text; needs a TextDecoder
  bool include_stop_str_in_output = false;
};

struct GeneratedToken {
  int32_t id = 0;
  double logprob = 0;                  // log softmax of the raw logits (when asked for)
  std::vector<TokenLogProbEntry> top;  // top_logprobs alternatives, most likely first
};

// One step's output for one sample of a Generate request.
struct SampleUpdate {
  int32_t sample = 0;
  std::vector<GeneratedToken> tokens;  // usually one
  std::string text;                    // text delta (stop-string hold-back applied)
  std::optional<FinishReason> finish;  // set on the sample's last update
  Clock::time_point time;              // when the engine emitted it
};

struct RequestTimings {
  Clock::time_point arrival;
  Clock::time_point admitted;     // got its slots (== arrival's clock; unset when never admitted)
  Clock::time_point first_token;  // first generated token / first scored row (unset when none)
  Clock::time_point done;
  bool was_admitted = false;
  bool has_first_token = false;
};

struct GenerateDone {
  absl::Status status;  // OK also for kCancelled finishes requested by the engine's own stops
  std::vector<FinishReason> finish;  // per sample (kCancelled for samples cut short)
  int32_t prompt_tokens = 0;
  int32_t generated_tokens = 0;  // over all samples
  RequestTimings timings;
};

struct GenerateRequest {
  std::vector<int32_t> prompt;  // >= 1 ids in [0, vocab)
  SamplingParams sampling;      // sample i > 0 uses a seed derived from (seed, i)
  StoppingParams stopping;
  int32_t n = 1;  // parallel samples: prefill once, copy the state n-1 times
  bool logprobs = false;
  int32_t top_logprobs = 0;  // 0..kMaxTopLogprobs (request_validation.h)
  // Makes one TextDecoder per sample; null: no text (stop_strings must then be empty).
  std::function<std::unique_ptr<TextDecoder>()> make_decoder;
  Clock::time_point arrival = Clock::now();
  std::optional<Clock::time_point> deadline;
  std::shared_ptr<GenerateSink> sink;  // required: receives the tokens and the end
};

struct ContinuationScore {
  std::vector<double> logprobs;  // one per continuation token
  double sum = 0;
  bool is_greedy = true;
  std::vector<std::vector<TokenLogProbEntry>> top;  // per position when top_logprobs > 0
};

struct ScoreDone {
  absl::Status status;
  std::vector<ContinuationScore> continuations;
  int32_t prompt_tokens = 0;  // context + all continuation tokens
  RequestTimings timings;
};

// log P(continuation | context) for each continuation; the context is prefilled once and its
// state copied for each continuation, so a request holds one slot per continuation.
struct ScoreRequest {
  std::vector<int32_t> context;                     // >= 1 ids
  std::vector<std::vector<int32_t>> continuations;  // >= 1, each >= 1 ids
  int32_t top_logprobs = 0;
  Clock::time_point arrival = Clock::now();
  std::optional<Clock::time_point> deadline;
  std::function<void(ScoreDone)> on_done;
};

// Which positions of an input an embedding keeps (of the hidden states after the final norm).
enum class Pooling { kLast, kMean, kAll };
const char* PoolingName(Pooling pooling);  // "last", "mean", "all"

struct EmbedDone {
  absl::Status status;
  // Row-major [positions, hidden_size] float32: one row for kLast and kMean, one per input
  // token for kAll; each row L2-normalised when asked. Empty unless status is OK.
  std::vector<float> values;
  int32_t positions = 0;
  int32_t prompt_tokens = 0;  // the input's tokens
  RequestTimings timings;
};

// The final hidden states of one input (HF xLSTMModel's last_hidden_state), pooled. Prefill
// only: the input is fed in chunks into one slot, released when it ends.
struct EmbedRequest {
  std::vector<int32_t> input;  // >= 1 ids in [0, vocab)
  Pooling pooling = Pooling::kLast;
  bool normalize = false;  // L2-normalise each returned row
  Clock::time_point arrival = Clock::now();
  std::optional<Clock::time_point> deadline;
  std::function<void(EmbedDone)> on_done;
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SERVING_REQUEST_H_
