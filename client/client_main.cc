// xlstm-client: command-line client of xlstm-server.
//
//   xlstm-client --target HOST:PORT generate --ids 5,17,9 --max-new-tokens 24 --greedy --json
//   xlstm-client --target HOST:PORT generate --prompt "Hello" --stream
//   xlstm-client --target HOST:PORT score --context-ids 5 --continuation-ids 17,9,4 --json
//   xlstm-client --target HOST:PORT tokenize --prompt "Hello"
//   xlstm-client --target HOST:PORT embed --ids "5,17,9;4,8" --pooling mean --normalize --json
//   xlstm-client --target HOST:PORT generate --prompt "a, b" --stop "," --stop "."
//   xlstm-client --target HOST:PORT info | health
//
// --stop is repeatable and each value is taken literally, so a comma can be a stop string.
// Usage mistakes exit 2 with a message naming the flag; a failed RPC exits 1.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/bearer_token.h"
#include "client/channel_security.h"
#include "common/flag_names.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "xlstm/v1/inference.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "server HOST:PORT");
ABSL_FLAG(std::string, ids, "",
          "generate: prompt token ids, comma-separated (instead of --prompt); embed: the\n"
          "inputs' ids, inputs separated by ';' (\"5,17,9;4,8\")");
ABSL_FLAG(std::string, prompt, "",
          "generate, tokenize, embed: prompt text (the server tokenizes it and adds BOS)");
ABSL_FLAG(std::string, pooling, "last",
          "embed: positions kept of each input's final hidden states: last, mean or all");
ABSL_FLAG(bool, normalize, false, "embed: scale each returned row to unit L2 norm");
ABSL_FLAG(int32_t, max_new_tokens, 0,
          "generate: most tokens to generate per sample (0: the server's default)");
ABSL_FLAG(int32_t, min_new_tokens, 0,
          "generate: tokens generated before EOS or a stop can end a sample");
ABSL_FLAG(bool, greedy, false, "generate: always the most likely token (temperature 0)");
ABSL_FLAG(double, temperature, 1.0, "generate: sampling temperature (0: greedy)");
ABSL_FLAG(int32_t, top_k, 0, "generate: sample among the k most likely tokens (0: all)");
ABSL_FLAG(double, top_p, 1.0,
          "generate: sample among the most likely tokens holding this much probability (1: all)");
ABSL_FLAG(double, min_p, 0.0,
          "generate: drop tokens less likely than min_p times the most likely one (0: off)");
ABSL_FLAG(double, repetition_penalty, 1.0,
          "generate: divide the logits of tokens already in the sequence by this (1: off)");
ABSL_FLAG(int64_t, seed, -1, "generate: sampling seed, for repeatable samples (-1: server picks)");
ABSL_FLAG(int32_t, n, 1, "generate: parallel samples of the prompt");
ABSL_FLAG(bool, ignore_eos, false, "generate: keep generating after the end-of-sequence token");
// Declared for its name and help only: ParseFlags collects the repeated values (kStopFlag).
ABSL_FLAG(std::string, stop, "",
          "generate: a stop string; give the flag once per string (a comma is an ordinary\n"
          "character: --stop , --stop '.')");
ABSL_FLAG(bool, logprobs, false, "generate: print each chosen token's log-probability");
ABSL_FLAG(int32_t, top_logprobs, 0,
          "generate, score: also return this many most likely alternatives per position");
ABSL_FLAG(bool, stream, false, "generate: print the text as each stream message arrives");
ABSL_FLAG(bool, json, false, "print the result as JSON (with --stream: one object per message)");
ABSL_FLAG(int64_t, deadline_ms, 0, "gRPC deadline of the call in milliseconds (0: none)");
ABSL_FLAG(std::string, auth_token_file, "",
          "file whose first line is the bearer token to send (server --auth-token-file)");
ABSL_FLAG(std::string, context_ids, "", "score: context token ids, comma-separated");
ABSL_FLAG(std::string, continuation_ids, "", "score: continuation token ids, comma-separated");
ABSL_FLAG(std::string, context, "", "score: context text (tokenized by the server, with BOS)");
ABSL_FLAG(std::string, continuation, "", "score: continuation text");
ABSL_FLAG(std::string, service, "",
          "health: the service to check (empty: the whole server; or xlstm.v1.Inference)");

namespace {

using xlstm::v1::Inference;

constexpr char kStopFlag[] = "stop";
constexpr char kUsage[] =
    "xlstm-client --target HOST:PORT generate|score|embed|tokenize|info|health [flags]";

// The --stop values, each as given (set by main).
std::vector<std::string>& StopStrings() {
  static std::vector<std::string>* const stops = new std::vector<std::string>();
  return *stops;
}

[[noreturn]] void UsageError(const std::string& message) {
  xlstm::cli::ExitWithUsageError("xlstm-client", message);
}

bool ParseIds(const std::string& s, std::vector<int32_t>* out) {
  for (absl::string_view part : absl::StrSplit(s, ',', absl::SkipEmpty())) {
    int32_t v;
    if (!absl::SimpleAtoi(part, &v)) return false;
    out->push_back(v);
  }
  return true;
}

// The token from --auth-token-file, read once in main (empty: none).
std::string& BearerToken() {
  static std::string token;
  return token;
}

// Every call: the deadline (--deadline-ms) and the bearer token (--auth-token-file).
void PrepareCall(grpc::ClientContext& ctx) {
  xlstm::client::AddBearerToken(BearerToken(), &ctx);
  if (absl::GetFlag(FLAGS_deadline_ms) > 0) {
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(absl::GetFlag(FLAGS_deadline_ms)));
  }
}

int Fail(const grpc::Status& s) {
  std::fprintf(stderr, "xlstm-client: %d %s\n", static_cast<int>(s.error_code()),
               s.error_message().c_str());
  return 1;
}

const char* ReasonName(xlstm::v1::FinishReason r) {
  switch (r) {
    case xlstm::v1::FINISH_REASON_LENGTH:
      return "length";
    case xlstm::v1::FINISH_REASON_STOP_SEQUENCE:
      return "stop_sequence";
    case xlstm::v1::FINISH_REASON_EOS_TOKEN:
      return "eos_token";
    case xlstm::v1::FINISH_REASON_CANCELLED:
      return "cancelled";
    default:
      return "";
  }
}

// What one of a request's n samples has produced so far.
struct SampleOutput {
  std::vector<int32_t> ids;
  std::vector<double> logprobs;
  std::string text;
  std::string finish_reason;
};

std::string JoinIds(const std::vector<int32_t>& ids) {
  std::string joined;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) joined += ',';
    joined += std::to_string(ids[i]);
  }
  return joined;
}

nlohmann::json SampleJson(const SampleOutput& sample, bool with_logprobs) {
  nlohmann::json j = {
      {"ids", sample.ids}, {"text", sample.text}, {"finish_reason", sample.finish_reason}};
  if (with_logprobs) j["logprobs"] = sample.logprobs;
  return j;
}

int Generate(Inference::Stub& stub) {
  xlstm::v1::GenerateRequest req;
  if (!absl::GetFlag(FLAGS_prompt).empty()) {
    req.set_text(absl::GetFlag(FLAGS_prompt));
    req.set_add_special_tokens(true);
  } else {
    if (absl::GetFlag(FLAGS_ids).empty()) {
      UsageError(
          "generate needs --prompt TEXT (not empty) or --ids LIST (for a prompt of BOS "
          "alone: --ids 0)");
    }
    std::vector<int32_t> ids;
    if (!ParseIds(absl::GetFlag(FLAGS_ids), &ids)) {
      UsageError("--ids: expected comma-separated integers");
    }
    req.mutable_ids()->mutable_ids()->Add(ids.begin(), ids.end());
  }
  auto* s = req.mutable_sampling();
  s->set_temperature(absl::GetFlag(FLAGS_greedy) ? 0.f : absl::GetFlag(FLAGS_temperature));
  s->set_top_k(absl::GetFlag(FLAGS_top_k));
  s->set_top_p(absl::GetFlag(FLAGS_top_p));
  s->set_min_p(absl::GetFlag(FLAGS_min_p));
  s->set_repetition_penalty(absl::GetFlag(FLAGS_repetition_penalty));
  if (absl::GetFlag(FLAGS_seed) >= 0) s->set_seed(absl::GetFlag(FLAGS_seed));
  auto* st = req.mutable_stopping();
  st->set_max_new_tokens(absl::GetFlag(FLAGS_max_new_tokens));
  st->set_min_new_tokens(absl::GetFlag(FLAGS_min_new_tokens));
  st->set_ignore_eos(absl::GetFlag(FLAGS_ignore_eos));
  for (const std::string& stop : StopStrings()) st->add_stop(stop);
  req.set_n(absl::GetFlag(FLAGS_n));
  req.set_logprobs(absl::GetFlag(FLAGS_logprobs));
  req.set_top_logprobs(absl::GetFlag(FLAGS_top_logprobs));
  grpc::ClientContext ctx;
  PrepareCall(ctx);
  auto reader = stub.Generate(&ctx, req);
  xlstm::v1::GenerateResponse msg;
  // Indexed by GenerateResponse.index; grows as samples show up (the server validated n).
  std::vector<SampleOutput> samples(1);
  const bool stream = absl::GetFlag(FLAGS_stream), json = absl::GetFlag(FLAGS_json);
  const bool several = absl::GetFlag(FLAGS_n) > 1;
  while (reader->Read(&msg)) {
    if (msg.index() < 0) continue;  // not a sample's message; nothing to show
    const size_t index = static_cast<size_t>(msg.index());
    if (index >= samples.size()) samples.resize(index + 1);
    SampleOutput& sample = samples[index];
    std::vector<int32_t> step;
    for (const auto& t : msg.tokens()) {
      step.push_back(t.id());
      sample.ids.push_back(t.id());
      sample.logprobs.push_back(t.logprob());
    }
    sample.text += msg.text();
    if (msg.finish_reason() != 0) sample.finish_reason = ReasonName(msg.finish_reason());
    if (stream && json) {
      nlohmann::json j = {{"index", msg.index()}, {"ids", step}, {"text", msg.text()}};
      if (msg.finish_reason() != 0) j["finish_reason"] = ReasonName(msg.finish_reason());
      if (msg.final()) {
        j["final"] = true;
        j["usage"] = {{"prompt_tokens", msg.usage().prompt_tokens()},
                      {"generated_tokens", msg.usage().generated_tokens()}};
        j["timings"] = {
            {"queue_seconds", msg.timings().queue_seconds()},
            {"time_to_first_token_seconds", msg.timings().time_to_first_token_seconds()},
            {"total_seconds", msg.timings().total_seconds()}};
      }
      std::printf("%s\n", j.dump().c_str());
      std::fflush(stdout);
    } else if (stream && several) {
      // Several samples arrive interleaved: one line per message, tagged with its sample.
      if (!msg.text().empty()) std::printf("[%d] %s\n", msg.index(), msg.text().c_str());
      std::fflush(stdout);
    } else if (stream) {
      std::printf("%s", msg.text().c_str());
      std::fflush(stdout);
    }
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) return Fail(status);
  const bool with_logprobs = absl::GetFlag(FLAGS_logprobs);
  if (json && !stream) {
    if (!several) {
      std::printf("%s\n", SampleJson(samples[0], with_logprobs).dump().c_str());
    } else {
      nlohmann::json all = nlohmann::json::array();
      for (const SampleOutput& sample : samples) all.push_back(SampleJson(sample, with_logprobs));
      std::printf("%s\n", nlohmann::json{{"samples", all}}.dump().c_str());
    }
  } else if (!json) {
    if (stream && !several) std::printf("\n");
    for (size_t i = 0; i < samples.size(); ++i) {
      const SampleOutput& sample = samples[i];
      if (several) std::printf("%s[sample %zu]\n", i > 0 ? "\n" : "", i);
      if (!stream) std::printf("%s\n", sample.text.c_str());  // streamed text is out already
      std::printf("ids: %s\n", JoinIds(sample.ids).c_str());
      if (with_logprobs) {
        std::string joined;
        for (size_t t = 0; t < sample.logprobs.size(); ++t) {
          if (t > 0) joined += ',';
          joined += absl::StrFormat("%.6f", sample.logprobs[t]);
        }
        std::printf("logprobs: %s\n", joined.c_str());
      }
      std::printf("finish_reason: %s\n", sample.finish_reason.c_str());
    }
  }
  return 0;
}

int Score(Inference::Stub& stub) {
  xlstm::v1::ScoreRequest req;
  auto* item = req.add_items();
  std::vector<int32_t> ctx_ids, cont_ids;
  if (!absl::GetFlag(FLAGS_context).empty()) {
    item->set_context_text(absl::GetFlag(FLAGS_context));
    req.set_add_special_tokens(true);
  } else if (ParseIds(absl::GetFlag(FLAGS_context_ids), &ctx_ids)) {
    item->mutable_context_ids()->mutable_ids()->Add(ctx_ids.begin(), ctx_ids.end());
  } else {
    UsageError("--context-ids: expected comma-separated integers");
  }
  if (!absl::GetFlag(FLAGS_continuation).empty()) {
    item->add_continuation_texts(absl::GetFlag(FLAGS_continuation));
  } else if (ParseIds(absl::GetFlag(FLAGS_continuation_ids), &cont_ids)) {
    item->add_continuation_ids()->mutable_ids()->Add(cont_ids.begin(), cont_ids.end());
  } else {
    UsageError("--continuation-ids: expected comma-separated integers");
  }
  req.set_top_logprobs(absl::GetFlag(FLAGS_top_logprobs));
  grpc::ClientContext ctx;
  PrepareCall(ctx);
  xlstm::v1::ScoreResponse resp;
  grpc::Status status = stub.Score(&ctx, req, &resp);
  if (!status.ok()) return Fail(status);
  const auto& c = resp.items(0).continuations(0);
  std::vector<double> lps(c.logprobs().begin(), c.logprobs().end());
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json j = {{"logprobs", lps}, {"sum", c.sum()}, {"is_greedy", c.is_greedy()}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    for (int i = 0; i < c.ids_size(); ++i) std::printf("%d\t%.6f\n", c.ids(i), c.logprobs(i));
    std::printf("sum\t%.6f\nis_greedy\t%s\n", c.sum(), c.is_greedy() ? "true" : "false");
  }
  return 0;
}

xlstm::v1::Pooling PoolingFlag() {
  const std::string pooling = absl::GetFlag(FLAGS_pooling);
  if (pooling == "last") return xlstm::v1::POOLING_LAST;
  if (pooling == "mean") return xlstm::v1::POOLING_MEAN;
  if (pooling == "all") return xlstm::v1::POOLING_ALL;
  UsageError(absl::StrCat("--pooling: '", pooling, "' is not last, mean or all"));
}

// The Embed request of --prompt (one text input) or --ids (inputs separated by ';').
xlstm::v1::EmbedRequest EmbedRequestFromFlags() {
  xlstm::v1::EmbedRequest req;
  if (!absl::GetFlag(FLAGS_prompt).empty()) {
    req.add_inputs()->set_text(absl::GetFlag(FLAGS_prompt));
  } else {
    for (absl::string_view input : absl::StrSplit(absl::GetFlag(FLAGS_ids), ';')) {
      std::vector<int32_t> ids;
      if (!ParseIds(std::string(input), &ids) || ids.empty()) {
        UsageError("--ids: expected inputs of comma-separated integers, separated by ';'");
      }
      req.add_inputs()->mutable_ids()->mutable_ids()->Add(ids.begin(), ids.end());
    }
  }
  req.set_pooling(PoolingFlag());
  req.set_normalize(absl::GetFlag(FLAGS_normalize));
  return req;
}

// JSON: {"hidden_size", "prompt_tokens", "embeddings": [{"positions", "tokens", "values"}]}.
// Text: one line per returned row, "INPUT<TAB>ROW<TAB>v0 v1 ...", each float in %.9g (exact).
int Embed(Inference::Stub& stub) {
  const xlstm::v1::EmbedRequest req = EmbedRequestFromFlags();
  grpc::ClientContext ctx;
  PrepareCall(ctx);
  xlstm::v1::EmbedResponse resp;
  grpc::Status status = stub.Embed(&ctx, req, &resp);
  if (!status.ok()) return Fail(status);
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json embeddings = nlohmann::json::array();
    for (const xlstm::v1::Embedding& e : resp.embeddings()) {
      embeddings.push_back({{"positions", e.positions()},
                            {"tokens", e.tokens()},
                            {"values", std::vector<float>(e.values().begin(), e.values().end())}});
    }
    nlohmann::json j = {{"hidden_size", resp.hidden_size()},
                        {"prompt_tokens", resp.usage().prompt_tokens()},
                        {"embeddings", std::move(embeddings)}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  const int dim = resp.hidden_size();
  for (int i = 0; i < resp.embeddings_size(); ++i) {
    const xlstm::v1::Embedding& e = resp.embeddings(i);
    for (int row = 0; row < e.positions(); ++row) {
      std::string line = absl::StrCat(i, "\t", row, "\t");
      for (int d = 0; d < dim; ++d) {
        absl::StrAppend(&line, d == 0 ? "" : " ", absl::StrFormat("%.9g", e.values(row * dim + d)));
      }
      std::printf("%s\n", line.c_str());
    }
  }
  return 0;
}

int Tokenize(Inference::Stub& stub) {
  xlstm::v1::TokenizeRequest req;
  req.set_text(absl::GetFlag(FLAGS_prompt));
  grpc::ClientContext ctx;
  PrepareCall(ctx);
  xlstm::v1::TokenizeResponse resp;
  grpc::Status status = stub.Tokenize(&ctx, req, &resp);
  if (!status.ok()) return Fail(status);
  std::vector<int32_t> ids(resp.ids().begin(), resp.ids().end());
  std::printf("%s\n", nlohmann::json({{"ids", ids}}).dump().c_str());
  return 0;
}

int Info(Inference::Stub& stub) {
  grpc::ClientContext ctx;
  PrepareCall(ctx);
  xlstm::v1::GetModelInfoResponse resp;
  grpc::Status status = stub.GetModelInfo(&ctx, {}, &resp);
  if (!status.ok()) return Fail(status);
  nlohmann::json j = {{"backend", resp.backend()},
                      {"num_slots", resp.num_slots()},
                      {"slots_used", resp.slots_used()},
                      {"vocab_size", resp.vocab_size()},
                      {"has_tokenizer", resp.has_tokenizer()},
                      {"model_name", resp.model_name()},
                      {"max_prompt_tokens", resp.limits().max_prompt_tokens()},
                      {"max_new_tokens", resp.limits().max_new_tokens()},
                      {"max_queue", resp.limits().max_queue()}};
  std::printf("%s\n", j.dump(2).c_str());
  return 0;
}

int Health(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  PrepareCall(ctx);
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(absl::GetFlag(FLAGS_service));
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status status = stub->Check(&ctx, req, &resp);
  if (!status.ok()) return Fail(status);
  const bool serving = resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  std::printf("%s\n", serving ? "SERVING" : "NOT_SERVING");
  return serving ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  xlstm::cli::ParseFlagsOptions parse_options;
  parse_options.repeatable[kStopFlag] = &StopStrings();
  std::vector<std::string> positional = xlstm::cli::ParseFlags(argc, argv, 1, parse_options);
  if (positional.size() != 1) {
    UsageError(positional.empty()
                   ? "missing command (generate, score, embed, tokenize, info or health)"
                   : absl::StrCat("unexpected argument '", positional[1], "'"));
  }
  if (const std::string path = absl::GetFlag(FLAGS_auth_token_file); !path.empty()) {
    absl::StatusOr<std::string> token = xlstm::client::ReadBearerToken(path);
    if (!token.ok()) {
      std::fprintf(stderr, "xlstm-client: --auth-token-file: %s\n",
                   std::string(token.status().message()).c_str());
      return 1;
    }
    BearerToken() = *std::move(token);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      xlstm::client::ChannelCredentialsFromFlags(&args);
  if (!credentials.ok()) {
    std::fprintf(stderr, "xlstm-client: %s\n", std::string(credentials.status().message()).c_str());
    return 1;
  }
  auto channel = grpc::CreateCustomChannel(absl::GetFlag(FLAGS_target), *credentials, args);
  auto stub = Inference::NewStub(channel);
  const std::string& cmd = positional[0];
  if (cmd == "generate") return Generate(*stub);
  if (cmd == "score") return Score(*stub);
  if (cmd == "embed") return Embed(*stub);
  if (cmd == "tokenize") return Tokenize(*stub);
  if (cmd == "info") return Info(*stub);
  if (cmd == "health") return Health(channel);
  UsageError(absl::StrCat("unknown command '", cmd,
                          "' (generate, score, embed, tokenize, info or health)"));
}
