// xlstm-loadgen: closed-loop load generator for xlstm-server.
//
//   xlstm-loadgen --target HOST:PORT --concurrency 8 --duration-s 30 --prompt-tokens 128
//                 --max-new-tokens 64 --greedy [--warmup-s 5] [--json results.json]
//
// --concurrency workers each issue streaming Generate calls back to back. Requests that start
// during the warm-up are left out of the statistics; workers stop issuing at the end of the
// window and the requests in flight then finish (after --tail-timeout-s they are cancelled).
// Reports TTFT, inter-token latency and end-to-end latency percentiles, throughput and errors by
// gRPC status code (see client/loadgen_stats.h for the exact definitions).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/bearer_token.h"
#include "client/channel_security.h"
#include "client/loadgen_stats.h"
#include "common/flag_names.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "xlstm/v1/inference.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "server HOST:PORT");
ABSL_FLAG(int32_t, concurrency, 1, "workers, each with one request in flight at a time");
ABSL_FLAG(double, duration_s, 10, "length of the measurement window, seconds");
ABSL_FLAG(double, warmup_s, 0, "seconds of load before the window; those requests are not counted");
ABSL_FLAG(std::string, prompt, "", "prompt text (tokenized by the server, with BOS)");
ABSL_FLAG(std::string, prompt_ids, "", "prompt token ids, comma-separated");
ABSL_FLAG(int32_t, prompt_tokens, 0,
          "random prompt of this many ids (a fresh one per request, from --seed); the default "
          "when no prompt flag is given is 32");
ABSL_FLAG(int32_t, max_new_tokens, 64, "tokens to generate per request");
ABSL_FLAG(bool, greedy, false, "temperature 0");
ABSL_FLAG(double, temperature, 1.0, "sampling temperature (0: greedy)");
ABSL_FLAG(int32_t, top_k, 0, "0: off");
ABSL_FLAG(double, top_p, 1.0, "1: off");
ABSL_FLAG(bool, ignore_eos, true,
          "keep generating after EOS so that every request has max-new-tokens tokens "
          "(--no-ignore-eos: stop at EOS)");
ABSL_FLAG(uint64_t, seed, 0, "seeds the random prompts and the per-request sampling seeds");
ABSL_FLAG(int64_t, deadline_ms, 0, "per-request gRPC deadline (0: none)");
ABSL_FLAG(std::string, auth_token_file, "",
          "file whose first line is the bearer token to send (server --auth-token-file)");
ABSL_FLAG(std::string, json, "", "also write the results as JSON to this file");
ABSL_FLAG(int32_t, channels, 1, "gRPC connections to open; workers are spread over them");
ABSL_FLAG(double, connect_timeout_s, 10, "how long to wait for the server before giving up");
ABSL_FLAG(double, tail_timeout_s, 60,
          "after the window, requests still in flight get this long before they are cancelled");

namespace xlstm::loadgen {
namespace {

using Clock = std::chrono::steady_clock;
using xlstm::v1::Inference;

constexpr int32_t kDefaultPromptTokens = 32;
constexpr int32_t kMaxConcurrency = 4096;
constexpr int64_t kMaxDeadlineMs = int64_t{1000} * 86400 * 365;

int UsageError(const std::string& message) {
  std::fprintf(stderr, "xlstm-loadgen: %s\n", message.c_str());
  return 2;
}

struct Prompt {
  enum Kind { kText, kIds, kRandom } kind = kRandom;
  std::string text;
  std::vector<int32_t> ids;
  int32_t random_tokens = kDefaultPromptTokens;
};

struct Config {
  std::string target;
  int32_t concurrency = 1;
  double duration_s = 0;
  double warmup_s = 0;
  Prompt prompt;
  int32_t max_new_tokens = 0;
  double temperature = 1;
  int32_t top_k = 0;
  double top_p = 1;
  bool ignore_eos = true;
  uint64_t seed = 0;
  int64_t deadline_ms = 0;
  std::string auth_token;  // from --auth-token-file; empty: none (never printed or written)
  std::string json_path;
  int32_t channels = 1;
  double tail_timeout_s = 0;
  double connect_timeout_s = 0;
};

// Reads and checks the flags; the error names the flag.
std::optional<std::string> ConfigFromFlags(Config* c) {
  c->target = absl::GetFlag(FLAGS_target);
  if (c->target.empty()) return "--target: must be HOST:PORT";
  c->concurrency = absl::GetFlag(FLAGS_concurrency);
  if (c->concurrency < 1 || c->concurrency > kMaxConcurrency) {
    return absl::StrCat("--concurrency: ", c->concurrency, " is outside [1, ", kMaxConcurrency,
                        "]");
  }
  c->duration_s = absl::GetFlag(FLAGS_duration_s);
  if (!std::isfinite(c->duration_s) || c->duration_s <= 0 || c->duration_s > 1e6) {
    return absl::StrCat("--duration-s: ", c->duration_s, " is outside (0, 1e6] (seconds)");
  }
  c->warmup_s = absl::GetFlag(FLAGS_warmup_s);
  if (!std::isfinite(c->warmup_s) || c->warmup_s < 0 || c->warmup_s > 1e6) {
    return absl::StrCat("--warmup-s: ", c->warmup_s, " is outside [0, 1e6] (seconds)");
  }
  const std::string text = absl::GetFlag(FLAGS_prompt);
  const std::string ids = absl::GetFlag(FLAGS_prompt_ids);
  const int32_t random_tokens = absl::GetFlag(FLAGS_prompt_tokens);
  if (random_tokens < 0 || random_tokens > (1 << 20)) {
    return absl::StrCat("--prompt-tokens: ", random_tokens, " is outside [1, 1048576]");
  }
  if ((!text.empty()) + (!ids.empty()) + (random_tokens > 0) > 1) {
    return std::string("--prompt, --prompt-ids and --prompt-tokens: give only one");
  }
  if (!text.empty()) {
    c->prompt.kind = Prompt::kText;
    c->prompt.text = text;
  } else if (!ids.empty()) {
    c->prompt.kind = Prompt::kIds;
    for (absl::string_view part : absl::StrSplit(ids, ',')) {
      part = absl::StripAsciiWhitespace(part);
      int32_t id = 0;
      if (!absl::SimpleAtoi(part, &id) || id < 0) {
        return absl::StrCat("--prompt-ids: '", std::string(part.data(), part.size()),
                            "' is not a token id (expected comma-separated integers >= 0)");
      }
      c->prompt.ids.push_back(id);
    }
  } else {
    c->prompt.kind = Prompt::kRandom;
    c->prompt.random_tokens = random_tokens > 0 ? random_tokens : kDefaultPromptTokens;
  }
  c->max_new_tokens = absl::GetFlag(FLAGS_max_new_tokens);
  if (c->max_new_tokens < 1) {
    return absl::StrCat("--max-new-tokens: ", c->max_new_tokens, " must be >= 1");
  }
  c->temperature = absl::GetFlag(FLAGS_greedy) ? 0.0 : absl::GetFlag(FLAGS_temperature);
  if (!std::isfinite(c->temperature) || c->temperature < 0) {
    return absl::StrCat("--temperature: ", c->temperature, " must be >= 0");
  }
  c->top_k = absl::GetFlag(FLAGS_top_k);
  if (c->top_k < 0) return absl::StrCat("--top-k: ", c->top_k, " must be >= 0");
  c->top_p = absl::GetFlag(FLAGS_top_p);
  if (!(c->top_p > 0 && c->top_p <= 1)) {
    return absl::StrCat("--top-p: ", c->top_p, " is outside (0, 1]");
  }
  c->ignore_eos = absl::GetFlag(FLAGS_ignore_eos);
  c->seed = absl::GetFlag(FLAGS_seed);
  c->deadline_ms = absl::GetFlag(FLAGS_deadline_ms);
  if (c->deadline_ms < 0 || c->deadline_ms > kMaxDeadlineMs) {
    return absl::StrCat("--deadline-ms: ", c->deadline_ms, " is outside [0, ", kMaxDeadlineMs, "]");
  }
  c->json_path = absl::GetFlag(FLAGS_json);
  c->channels = absl::GetFlag(FLAGS_channels);
  if (c->channels < 1 || c->channels > c->concurrency) {
    return absl::StrCat("--channels: ", c->channels,
                        " is outside [1, --concurrency = ", c->concurrency, "]");
  }
  c->tail_timeout_s = absl::GetFlag(FLAGS_tail_timeout_s);
  if (!std::isfinite(c->tail_timeout_s) || c->tail_timeout_s < 0 || c->tail_timeout_s > 1e6) {
    return absl::StrCat("--tail-timeout-s: ", c->tail_timeout_s, " is outside [0, 1e6]");
  }
  c->connect_timeout_s = absl::GetFlag(FLAGS_connect_timeout_s);
  if (!std::isfinite(c->connect_timeout_s) || c->connect_timeout_s <= 0 ||
      c->connect_timeout_s > 1e6) {
    return absl::StrCat("--connect-timeout-s: ", c->connect_timeout_s, " is outside (0, 1e6]");
  }
  return std::nullopt;
}

std::string PromptDescription(const Prompt& p) {
  switch (p.kind) {
    case Prompt::kText:
      return absl::StrCat("text (", p.text.size(), " bytes)");
    case Prompt::kIds:
      return absl::StrCat(p.ids.size(), " given ids");
    case Prompt::kRandom:
      return absl::StrCat(p.random_tokens, " random ids");
  }
  return "";
}

// A shell-like rendering of argv (single quotes where needed), for the JSON record.
std::string CommandLine(int argc, char** argv) {
  std::string out;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    const bool plain = !a.empty() && a.find_first_not_of(
                                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789-_=.,:/@+%") == std::string::npos;
    if (i > 0) out += ' ';
    if (plain) {
      out += a;
    } else {
      out += '\'';
      for (char ch : a) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
      out += '\'';
    }
  }
  return out;
}

std::string UtcTimestamp(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A SplitMix64 step: per-request sampling seeds from (seed, worker, request number).
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The shared state of a run: workers append records; the main thread may cancel the calls in
// flight after the tail timeout.
class Run {
 public:
  Run(const Config& config, int64_t vocab_size) : config_(config), vocab_size_(vocab_size) {}

  void Start(const std::vector<std::shared_ptr<grpc::Channel>>& channels) {
    t0_ = Clock::now();
    end_ = t0_ + ToDuration(config_.warmup_s + config_.duration_s);
    active_.assign(config_.concurrency, nullptr);
    running_ = config_.concurrency;
    for (int w = 0; w < config_.concurrency; ++w) {
      auto stub = Inference::NewStub(channels[w % channels.size()]);
      threads_.emplace_back([this, w, stub = std::shared_ptr<Inference::Stub>(std::move(stub))] {
        Worker(w, *stub);
      });
    }
  }

  // Waits for the workers; cancels what is still in flight `tail_timeout` after the window.
  // Prints progress to stderr every few seconds.
  void Wait() {
    const auto cancel_at = end_ + ToDuration(config_.tail_timeout_s);
    auto next_progress = t0_ + std::chrono::seconds(5);
    bool cancelled = false;
    std::unique_lock<std::mutex> lock(mu_);
    while (running_ > 0) {
      const auto wake = std::min(next_progress, cancelled ? Clock::time_point::max() : cancel_at);
      done_cv_.wait_until(lock, wake);
      const auto now = Clock::now();
      if (!cancelled && now >= cancel_at && running_ > 0) {
        std::fprintf(stderr,
                     "xlstm-loadgen: cancelling %d requests still running %gs after the "
                     "window\n",
                     running_, config_.tail_timeout_s);
        for (grpc::ClientContext* ctx : active_) {
          if (ctx != nullptr) ctx->TryCancel();
        }
        cancelled = true;
      }
      if (now >= next_progress && running_ > 0) {
        std::fprintf(stderr, "xlstm-loadgen: t=%.0fs requests=%lld tokens=%lld\n", Seconds(now),
                     static_cast<long long>(progress_requests_.load()),
                     static_cast<long long>(progress_tokens_.load()));
        next_progress += std::chrono::seconds(5);
      }
    }
    lock.unlock();
    for (std::thread& t : threads_) t.join();
  }

  double window_start() const { return config_.warmup_s; }
  double window_end() const { return config_.warmup_s + config_.duration_s; }
  const std::vector<RequestRecord>& records() const { return records_; }
  const std::map<std::string, std::string>& error_examples() const { return error_examples_; }

 private:
  static Clock::duration ToDuration(double seconds) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  }
  double Seconds(Clock::time_point t) const {
    return std::chrono::duration<double>(t - t0_).count();
  }

  xlstm::v1::GenerateRequest MakeRequest(std::mt19937_64& rng, int worker, uint64_t n) const {
    xlstm::v1::GenerateRequest req;
    req.set_request_id(absl::StrCat("loadgen-", worker, "-", n));
    switch (config_.prompt.kind) {
      case Prompt::kText:
        req.set_text(config_.prompt.text);
        req.set_add_special_tokens(true);
        break;
      case Prompt::kIds:
        req.mutable_ids()->mutable_ids()->Add(config_.prompt.ids.begin(), config_.prompt.ids.end());
        break;
      case Prompt::kRandom: {
        std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(vocab_size_ - 1));
        auto* ids = req.mutable_ids()->mutable_ids();
        for (int32_t i = 0; i < config_.prompt.random_tokens; ++i) ids->Add(id(rng));
        break;
      }
    }
    auto* s = req.mutable_sampling();
    s->set_temperature(static_cast<float>(config_.temperature));
    s->set_top_k(config_.top_k);
    s->set_top_p(static_cast<float>(config_.top_p));
    s->set_seed(Mix(config_.seed ^ Mix(static_cast<uint64_t>(worker) << 32 ^ n)));
    auto* st = req.mutable_stopping();
    st->set_max_new_tokens(config_.max_new_tokens);
    st->set_ignore_eos(config_.ignore_eos);
    return req;
  }

  void Worker(int worker, Inference::Stub& stub) {
    std::mt19937_64 rng(Mix(config_.seed + static_cast<uint64_t>(worker)));
    std::vector<RequestRecord> local;
    std::map<std::string, std::string> examples;
    for (uint64_t n = 0; Clock::now() < end_; ++n) {
      const xlstm::v1::GenerateRequest req = MakeRequest(rng, worker, n);
      grpc::ClientContext ctx;
      xlstm::client::AddBearerToken(config_.auth_token, &ctx);
      if (config_.deadline_ms > 0) {
        ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(config_.deadline_ms));
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        active_[worker] = &ctx;
      }
      RequestRecord rec;
      rec.start = Seconds(Clock::now());
      auto reader = stub.Generate(&ctx, req);
      xlstm::v1::GenerateResponse msg;
      while (reader->Read(&msg)) {
        if (msg.tokens_size() > 0) {
          rec.token_messages.emplace_back(Seconds(Clock::now()), msg.tokens_size());
          progress_tokens_ += msg.tokens_size();
        }
      }
      const grpc::Status status = reader->Finish();
      rec.end = Seconds(Clock::now());
      rec.status_code = static_cast<int>(status.error_code());
      {
        std::lock_guard<std::mutex> lock(mu_);
        active_[worker] = nullptr;
      }
      ++progress_requests_;
      local.push_back(std::move(rec));
      if (!status.ok()) {
        examples.emplace(StatusCodeName(status.error_code()), status.error_message());
        // A refused or failed call returns at once: do not spin on it.
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    records_.insert(records_.end(), std::make_move_iterator(local.begin()),
                    std::make_move_iterator(local.end()));
    for (auto& [code, message] : examples) error_examples_.emplace(code, message);
    --running_;
    done_cv_.notify_all();
  }

  const Config config_;
  const int64_t vocab_size_;
  Clock::time_point t0_;
  Clock::time_point end_;
  std::vector<std::thread> threads_;
  std::atomic<int64_t> progress_requests_{0};
  std::atomic<int64_t> progress_tokens_{0};

  std::mutex mu_;
  std::condition_variable done_cv_;
  int running_ = 0;                                    // guarded by mu_
  std::vector<grpc::ClientContext*> active_;           // guarded by mu_
  std::vector<RequestRecord> records_;                 // guarded by mu_ until Wait returns
  std::map<std::string, std::string> error_examples_;  // first message per status code
};

nlohmann::ordered_json DistributionMs(const Distribution& d) {
  return {{"count", d.count},   {"mean", d.mean * 1e3}, {"min", d.min * 1e3}, {"p50", d.p50 * 1e3},
          {"p90", d.p90 * 1e3}, {"p99", d.p99 * 1e3},   {"max", d.max * 1e3}};
}

void PrintTable(const Config& c, const Summary& s, const xlstm::v1::GetModelInfoResponse& info,
                const std::map<std::string, std::string>& examples) {
  std::printf(
      "xlstm-loadgen: target %s (%s backend, %d slots), concurrency %d, window %gs "
      "after %gs warm-up\n",
      c.target.c_str(), info.backend().c_str(), info.num_slots(), c.concurrency, c.duration_s,
      c.warmup_s);
  std::printf("prompt: %s; max_new_tokens %d; %s%s\n\n", PromptDescription(c.prompt).c_str(),
              c.max_new_tokens,
              c.temperature == 0 ? "greedy" : absl::StrCat("temperature ", c.temperature).c_str(),
              c.ignore_eos ? "; ignore_eos" : "");
  std::printf("  requests completed  %lld\n", static_cast<long long>(s.requests));
  std::printf("  errors              %lld\n", static_cast<long long>(s.errors));
  const double mean_tokens =
      s.requests > 0 ? static_cast<double>(s.output_tokens) / static_cast<double>(s.requests) : 0;
  std::printf("  output tokens       %lld (per request: min %lld, mean %.1f, max %lld)\n",
              static_cast<long long>(s.output_tokens),
              static_cast<long long>(s.min_tokens_per_request), mean_tokens,
              static_cast<long long>(s.max_tokens_per_request));
  std::printf("  throughput          %.1f output tok/s, %.2f req/s (over the %.2fs window)\n",
              s.output_tokens_per_second, s.requests_per_second, s.window_seconds);
  if (s.warmup_requests > 0) {
    std::printf("  warm-up requests    %lld (errors %lld), not counted\n",
                static_cast<long long>(s.warmup_requests), static_cast<long long>(s.warmup_errors));
  }
  std::printf("\n  %-10s %9s %9s %9s %9s %9s %9s\n", "ms", "mean", "p50", "p90", "p99", "max",
              "count");
  for (const auto& [name, d] : {std::pair<const char*, const Distribution&>{"TTFT", s.ttft},
                                {"ITL", s.itl},
                                {"E2E", s.e2e}}) {
    std::printf("  %-10s %9.2f %9.2f %9.2f %9.2f %9.2f %9lld\n", name, d.mean * 1e3, d.p50 * 1e3,
                d.p90 * 1e3, d.p99 * 1e3, d.max * 1e3, static_cast<long long>(d.count));
  }
  std::printf("  (percentiles: linear interpolation between closest ranks)\n");
  if (!s.errors_by_code.empty()) {
    std::printf("\n  errors by code:\n");
    for (const auto& [code, count] : s.errors_by_code) {
      auto it = examples.find(code);
      std::printf("    %-20s %lld  e.g. \"%s\"\n", code.c_str(), static_cast<long long>(count),
                  it == examples.end() ? "" : it->second.c_str());
    }
  }
  std::fflush(stdout);
}

int Main(int argc, char** argv) {
  const auto started_at = std::chrono::system_clock::now();
  const std::vector<std::string> positional = xlstm::cli::ParseFlags(argc, argv, 1);
  if (!positional.empty()) {
    return UsageError(absl::StrCat("unexpected argument '", positional[0], "' (flags only)"));
  }
  Config config;
  if (std::optional<std::string> error = ConfigFromFlags(&config)) return UsageError(*error);

  if (const std::string path = absl::GetFlag(FLAGS_auth_token_file); !path.empty()) {
    absl::StatusOr<std::string> token = xlstm::client::ReadBearerToken(path);
    if (!token.ok()) {
      std::fprintf(stderr, "xlstm-loadgen: --auth-token-file: %s\n",
                   std::string(token.status().message()).c_str());
      return 1;
    }
    config.auth_token = *std::move(token);
  }

  // Open the JSON file first, so that a bad path fails before the run, not after it.
  std::ofstream json_out;
  if (!config.json_path.empty()) {
    json_out.open(config.json_path, std::ios::trunc);
    if (!json_out) {
      std::fprintf(stderr, "xlstm-loadgen: --json: cannot write %s\n", config.json_path.c_str());
      return 1;
    }
  }

  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < config.channels; ++i) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    // A distinct argument per channel keeps gRPC from sharing one connection among them.
    args.SetInt("xlstm.loadgen_channel", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        xlstm::client::ChannelCredentialsFromFlags(&args);
    if (!credentials.ok()) {
      std::fprintf(stderr, "xlstm-loadgen: %s\n",
                   std::string(credentials.status().message()).c_str());
      return 1;
    }
    channels.push_back(grpc::CreateCustomChannel(config.target, *credentials, args));
  }

  // The server's model: the vocabulary for random prompts, and a reachability check.
  xlstm::v1::GetModelInfoResponse info;
  {
    grpc::ClientContext ctx;
    xlstm::client::AddBearerToken(config.auth_token, &ctx);
    ctx.set_wait_for_ready(true);
    ctx.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::milliseconds(static_cast<int64_t>(config.connect_timeout_s * 1e3)));
    auto stub = Inference::NewStub(channels[0]);
    const grpc::Status status = stub->GetModelInfo(&ctx, {}, &info);
    if (!status.ok()) {
      std::fprintf(stderr, "xlstm-loadgen: --target %s: GetModelInfo failed: %s %s\n",
                   config.target.c_str(), StatusCodeName(status.error_code()).c_str(),
                   status.error_message().c_str());
      return 1;
    }
  }
  if (config.prompt.kind == Prompt::kText && !info.has_tokenizer()) {
    return UsageError(
        "--prompt: the server's model has no tokenizer; use --prompt-ids or "
        "--prompt-tokens");
  }
  for (int32_t id : config.prompt.ids) {
    if (id >= info.vocab_size()) {
      return UsageError(absl::StrCat("--prompt-ids: ", id, " is outside the vocabulary [0, ",
                                     info.vocab_size(), ")"));
    }
  }
  if (info.vocab_size() < 1) return UsageError("the server reports an empty vocabulary");
  if (info.limits().max_new_tokens() > 0 &&
      config.max_new_tokens > info.limits().max_new_tokens()) {
    return UsageError(absl::StrCat("--max-new-tokens: ", config.max_new_tokens,
                                   " is over the server's limit ", info.limits().max_new_tokens()));
  }

  Run run(config, info.vocab_size());
  run.Start(channels);
  run.Wait();
  const Summary summary = Summarize(run.records(), run.window_start(), run.window_end());
  PrintTable(config, summary, info, run.error_examples());

  if (json_out.is_open()) {
    nlohmann::ordered_json prompt = {{"kind", config.prompt.kind == Prompt::kText  ? "text"
                                              : config.prompt.kind == Prompt::kIds ? "ids"
                                                                                   : "random"}};
    if (config.prompt.kind == Prompt::kText) prompt["text"] = config.prompt.text;
    if (config.prompt.kind == Prompt::kIds) prompt["ids"] = config.prompt.ids;
    if (config.prompt.kind == Prompt::kRandom) prompt["tokens"] = config.prompt.random_tokens;
    nlohmann::ordered_json errors_by_code = nlohmann::ordered_json::object();
    for (const auto& [code, count] : summary.errors_by_code) errors_by_code[code] = count;
    nlohmann::ordered_json error_examples = nlohmann::ordered_json::object();
    for (const auto& [code, message] : run.error_examples()) error_examples[code] = message;
    const nlohmann::ordered_json j = {
        {"tool", "xlstm-loadgen"},
        {"command_line", CommandLine(argc, argv)},
        {"target", config.target},
        {"timestamp", UtcTimestamp(started_at)},
        {"config",
         {{"concurrency", config.concurrency},
          {"duration_s", config.duration_s},
          {"warmup_s", config.warmup_s},
          {"prompt", prompt},
          {"max_new_tokens", config.max_new_tokens},
          {"temperature", config.temperature},
          {"top_k", config.top_k},
          {"top_p", config.top_p},
          {"ignore_eos", config.ignore_eos},
          {"seed", config.seed},
          {"deadline_ms", config.deadline_ms},
          {"channels", config.channels}}},
        {"server",
         {{"backend", info.backend()},
          {"num_slots", info.num_slots()},
          {"vocab_size", info.vocab_size()},
          {"model_name", info.model_name()}}},
        {"percentile_method", "linear interpolation between closest ranks (numpy 'linear')"},
        {"requests", summary.requests},
        {"errors", summary.errors},
        {"errors_by_code", errors_by_code},
        {"error_examples", error_examples},
        {"warmup", {{"requests", summary.warmup_requests}, {"errors", summary.warmup_errors}}},
        {"output_tokens", summary.output_tokens},
        {"tokens_per_request",
         {{"min", summary.min_tokens_per_request},
          {"max", summary.max_tokens_per_request},
          {"mean", summary.requests > 0 ? static_cast<double>(summary.output_tokens) /
                                              static_cast<double>(summary.requests)
                                        : 0.0}}},
        {"window_seconds", summary.window_seconds},
        {"output_tokens_per_second", summary.output_tokens_per_second},
        {"requests_per_second", summary.requests_per_second},
        {"ttft_ms", DistributionMs(summary.ttft)},
        {"itl_ms", DistributionMs(summary.itl)},
        {"e2e_ms", DistributionMs(summary.e2e)},
    };
    json_out << j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
    json_out.close();
    if (!json_out) {
      std::fprintf(stderr, "xlstm-loadgen: --json: writing %s failed\n", config.json_path.c_str());
      return 1;
    }
  }
  if (summary.requests == 0) {
    std::fprintf(stderr, "xlstm-loadgen: no request completed successfully\n");
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace xlstm::loadgen

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "xlstm-loadgen --target HOST:PORT --concurrency N --duration-s S "
      "[--prompt TEXT | --prompt-ids 1,2,3 | --prompt-tokens K] --max-new-tokens M "
      "[--greedy | --temperature T] [--warmup-s W] [--json PATH] [--deadline-ms D]");
  return xlstm::loadgen::Main(argc, argv);
}
