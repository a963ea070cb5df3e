// End-to-end tests over loopback: a real xlstm-server process (CPU backend, hf/default model)
// driven through the generated C++ stubs, checked against xlstm-run and the metrics endpoint.
// The server process helper is tests/server/server_process.h.
#include <signal.h>
#include <sys/wait.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/server_process.h"
#include "xlstm/v1/inference.grpc.pb.h"

namespace {

using xlstm::v1::Inference;

using xlstm::testing::kModel;
using xlstm::testing::kRun;
using xlstm::testing::RunCommand;
using xlstm::testing::ServerProcess;

struct GenResult {
  grpc::Status status;
  std::vector<int32_t> ids;
  xlstm::v1::FinishReason reason = xlstm::v1::FINISH_REASON_UNSPECIFIED;
  int messages = 0;
};

xlstm::v1::GenerateRequest IdsRequest(std::vector<int32_t> ids, int32_t max_new, bool greedy,
                                      uint64_t seed = 0) {
  xlstm::v1::GenerateRequest r;
  r.mutable_ids()->mutable_ids()->Add(ids.begin(), ids.end());
  r.mutable_sampling()->set_temperature(greedy ? 0.f : 0.8f);
  r.mutable_sampling()->set_seed(seed);
  r.mutable_stopping()->set_max_new_tokens(max_new);
  r.mutable_stopping()->set_ignore_eos(true);
  return r;
}

GenResult Generate(Inference::Stub& stub, const xlstm::v1::GenerateRequest& req,
                   int deadline_ms = 0) {
  grpc::ClientContext ctx;
  if (deadline_ms > 0) {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
  }
  GenResult out;
  auto reader = stub.Generate(&ctx, req);
  xlstm::v1::GenerateResponse msg;
  while (reader->Read(&msg)) {
    ++out.messages;
    for (const auto& t : msg.tokens()) out.ids.push_back(t.id());
    if (msg.final()) out.reason = msg.finish_reason();
  }
  out.status = reader->Finish();
  return out;
}

TEST(ServerE2ETest, StreamedGreedyAndScoreEqualXlstmRun) {
  ServerProcess server({"--num-slots", "4"});
  const std::vector<int32_t> prompt = {5, 17, 9};
  GenResult g = Generate(server.stub(), IdsRequest(prompt, 24, true));
  ASSERT_TRUE(g.status.ok()) << g.status.error_message();
  EXPECT_EQ(g.reason, xlstm::v1::FINISH_REASON_LENGTH);
  // Tokens pending when a write can start travel in one message: at least one token message
  // plus the final one, never more than one per token plus the final one.
  EXPECT_GE(g.messages, 2);
  EXPECT_LE(g.messages, 25);
  auto expected = nlohmann::json::parse(RunCommand(kRun + " generate --model " + kModel +
                                                   " --ids 5,17,9 --max-new-tokens 24 --greedy "
                                                   "--ignore-eos --json"));
  EXPECT_EQ(g.ids, expected["ids"].get<std::vector<int32_t>>());

  xlstm::v1::ScoreRequest sreq;
  auto* item = sreq.add_items();
  item->mutable_context_ids()->add_ids(5);
  auto* cont = item->add_continuation_ids();
  for (int id : {17, 9, 4}) cont->add_ids(id);
  xlstm::v1::ScoreResponse sresp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(server.stub().Score(&ctx, sreq, &sresp).ok());
  auto ref = nlohmann::json::parse(RunCommand(kRun + " score --model " + kModel +
                                              " --context-ids 5 --continuation-ids 17,9,4 --json"));
  const auto& c = sresp.items(0).continuations(0);
  ASSERT_EQ(c.logprobs_size(), 3);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(c.logprobs(i), ref["logprobs"][i].get<double>(), 1e-4);
  EXPECT_NEAR(c.sum(), ref["sum"].get<double>(), 1e-3);
  EXPECT_EQ(c.is_greedy(), ref["is_greedy"].get<bool>());
}

// Seeded sampling through the server (the backend draws: on the device with --backend cuda)
// gives the tokens xlstm-run's host sampler gives, for several parameter mixes. The values are
// exact in float (the wire type) and in decimal (xlstm-run's flags), so both sides sample with
// the same parameters.
TEST(ServerE2ETest, SeededSamplingEqualsXlstmRun) {
  ServerProcess server({"--num-slots", "4"});
  struct Mix {
    float temperature;
    int32_t top_k;
    float top_p, min_p, repetition_penalty;
    uint64_t seed;
    const char* flags;
  };
  const Mix mixes[] = {
      {0.75f, 0, 1.0f, 0.0f, 1.0f, 7, "--temperature 0.75 --seed 7"},
      {1.25f, 20, 0.875f, 0.0f, 1.0f, 3, "--temperature 1.25 --top-k 20 --top-p 0.875 --seed 3"},
      {0.75f, 0, 1.0f, 0.0625f, 1.25f, 11,
       "--temperature 0.75 --min-p 0.0625 --repetition-penalty 1.25 --seed 11"},
  };
  for (const Mix& m : mixes) {
    SCOPED_TRACE(m.flags);
    xlstm::v1::GenerateRequest req = IdsRequest({5, 17, 9}, 20, false, m.seed);
    auto* sp = req.mutable_sampling();
    sp->set_temperature(m.temperature);
    sp->set_top_k(m.top_k);
    sp->set_top_p(m.top_p);
    sp->set_min_p(m.min_p);
    sp->set_repetition_penalty(m.repetition_penalty);
    GenResult g = Generate(server.stub(), req);
    ASSERT_TRUE(g.status.ok()) << g.status.error_message();
    auto expected = nlohmann::json::parse(RunCommand(kRun + " generate --model " + kModel +
                                                     " --ids 5,17,9 --max-new-tokens 20 " +
                                                     m.flags + " --ignore-eos --json"));
    EXPECT_EQ(g.ids, expected["ids"].get<std::vector<int32_t>>());
  }
}

TEST(ServerE2ETest, SixtyFourConcurrentStreamsEqualAloneAndMetricsCount) {
  ServerProcess server({"--num-slots", "32", "--step-token-budget", "64"});
  constexpr int kN = 64;
  std::vector<xlstm::v1::GenerateRequest> reqs;
  int64_t prompt_tokens = 0, gen_tokens = 0;
  for (int i = 0; i < kN; ++i) {
    std::vector<int32_t> p;
    for (int k = 0; k < 1 + (i * 29) % 40; ++k) p.push_back((i * 13 + k * 7 + 1) % 256);
    reqs.push_back(IdsRequest(p, 1 + (i * 7) % 20, i % 2 == 0, 1000 + i));
    prompt_tokens += p.size();
    gen_tokens += 1 + (i * 7) % 20;
  }
  std::vector<std::vector<int32_t>> alone(kN);
  for (int i = 0; i < kN; ++i) {
    GenResult r = Generate(server.stub(), reqs[i]);
    ASSERT_TRUE(r.status.ok());
    alone[i] = r.ids;
  }
  std::vector<GenResult> together(kN);
  std::vector<std::thread> threads;
  for (int i = 0; i < kN; ++i) {
    threads.emplace_back([&, i] { together[i] = Generate(server.stub(), reqs[i]); });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(together[i].status.ok()) << i;
    EXPECT_EQ(together[i].ids, alone[i]) << "request " << i;
  }
  EXPECT_EQ(server.Metric("xlstm_request_success_total{finished_reason=\"length\"}"), 2 * kN);
  EXPECT_EQ(server.Metric("xlstm_prompt_tokens_total"), 2 * prompt_tokens);
  EXPECT_EQ(server.Metric("xlstm_generation_tokens_total"), 2 * gen_tokens);
  EXPECT_EQ(server.Metric("xlstm_time_to_first_token_seconds_count"), 2 * kN);
  EXPECT_EQ(server.Metric("xlstm_state_slots_capacity"), 32);
  EXPECT_EQ(server.Metric("xlstm_state_slots_used"), 0);
  const std::string text = server.Scrape();
  for (const char* name :
       {"xlstm_requests_running", "xlstm_requests_waiting", "xlstm_inter_token_latency_seconds",
        "xlstm_e2e_request_latency_seconds", "xlstm_request_queue_time_seconds",
        "xlstm_request_prefill_time_seconds", "xlstm_step_duration_seconds", "xlstm_batch_size",
        "xlstm_request_prompt_tokens", "xlstm_request_generation_tokens"}) {
    EXPECT_NE(text.find(std::string("\n") + name), std::string::npos) << name;
  }
}

TEST(ServerE2ETest, CancelDeadlineAndFullQueueReleaseSlots) {
  // Requests long enough to still run when their deadline or cancel comes on every backend (the
  // tiny model decodes ~10k tokens/s on a GPU); they never run to the end.
  constexpr int kLong = 100000;
  ServerProcess server(
      {"--num-slots", "1", "--max-queue", "1", "--max-new-tokens-limit", "100000"});
  // A long request holds the only slot; a second waits; a third is refused at once.
  grpc::ClientContext long_ctx;
  auto long_reader = server.stub().Generate(&long_ctx, IdsRequest({1, 2, 3}, kLong, true));
  xlstm::v1::GenerateResponse msg;
  ASSERT_TRUE(long_reader->Read(&msg));  // running
  std::thread waiter([&] {
    GenResult r = Generate(server.stub(), IdsRequest({4, 5}, kLong, true), 300);
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  });
  ASSERT_TRUE(server.WaitMetric("xlstm_requests_waiting", 1));
  const auto t0 = std::chrono::steady_clock::now();
  GenResult refused = Generate(server.stub(), IdsRequest({6}, 4, true));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.status.error_message().find("max_queue = 1"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
  // The refusal is counted by reason; the router-facing gauges mirror the engine's: one running,
  // one waiting, the only slot in use (usage 1.0).
  EXPECT_EQ(server.Metric("xlstm_request_rejected_total{reason=\"queue_full\"}"), 1);
  EXPECT_EQ(server.Metric("xlstm_request_rejected_total{reason=\"draining\"}"), 0);
  EXPECT_EQ(server.Metric("xlstm_request_failure_total{reason=\"rejected\"}"), 1);
  EXPECT_EQ(server.Metric("vllm:num_requests_running"), 1);
  EXPECT_EQ(server.Metric("vllm:num_requests_waiting"), 1);
  EXPECT_EQ(server.Metric("vllm:kv_cache_usage_perc"), 1.0);
  waiter.join();
  EXPECT_EQ(server.Metric("xlstm_state_slots_used"), 1);
  long_ctx.TryCancel();
  while (long_reader->Read(&msg)) {
  }
  EXPECT_EQ(long_reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(server.WaitMetric("xlstm_state_slots_used", 0));
  // A request past its deadline while running also frees its slot.
  GenResult late = Generate(server.stub(), IdsRequest({7, 8}, kLong, true), 200);
  EXPECT_EQ(late.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(server.WaitMetric("xlstm_state_slots_used", 0));
  EXPECT_TRUE(server.WaitMetric("xlstm_requests_running", 0));
  EXPECT_EQ(server.Metric("vllm:num_requests_running"), 0);
  EXPECT_EQ(server.Metric("vllm:num_requests_waiting"), 0);
  EXPECT_EQ(server.Metric("vllm:kv_cache_usage_perc"), 0);
  EXPECT_GE(server.Metric("xlstm_request_failure_total{reason=\"cancelled\"}"), 1);
  EXPECT_GE(server.Metric("xlstm_request_failure_total{reason=\"deadline\"}"), 1);
  // Still serving normally.
  EXPECT_TRUE(Generate(server.stub(), IdsRequest({6}, 4, true)).status.ok());
}

TEST(ServerE2ETest, BadRequestsGetPreciseErrors) {
  ServerProcess server({"--num-slots", "4", "--max-prompt-tokens", "8", "--max-stop-strings", "2"});
  struct Case {
    std::string name;
    std::function<void(xlstm::v1::GenerateRequest&)> edit;
    grpc::StatusCode code;
    std::string message;
  };
  std::vector<Case> cases = {
      {"no prompt", [](auto& r) { r.clear_prompt(); }, grpc::StatusCode::INVALID_ARGUMENT,
       "prompt is empty"},
      {"empty ids", [](auto& r) { r.mutable_ids()->clear_ids(); },
       grpc::StatusCode::INVALID_ARGUMENT, "prompt.ids is empty"},
      {"id outside vocab", [](auto& r) { r.mutable_ids()->add_ids(256); },
       grpc::StatusCode::INVALID_ARGUMENT,
       "prompt.ids[1] = 256 is outside the vocabulary [0, 256)"},
      {"prompt too long",
       [](auto& r) {
         for (int i = 0; i < 8; ++i) r.mutable_ids()->add_ids(1);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "the limit (max_prompt_tokens) is 8"},
      {"negative temperature", [](auto& r) { r.mutable_sampling()->set_temperature(-1); },
       grpc::StatusCode::INVALID_ARGUMENT, "sampling.temperature = -1 must be >= 0"},
      {"top_p zero", [](auto& r) { r.mutable_sampling()->set_top_p(0); },
       grpc::StatusCode::INVALID_ARGUMENT, "sampling.top_p = 0 is outside (0, 1]"},
      {"n too large", [](auto& r) { r.set_n(5); }, grpc::StatusCode::INVALID_ARGUMENT,
       "n = 5 is outside [1, 4]"},
      {"top_logprobs too large", [](auto& r) { r.set_top_logprobs(21); },
       grpc::StatusCode::INVALID_ARGUMENT, "top_logprobs = 21 is outside [0, 20]"},
      {"too many stop strings",
       [](auto& r) {
         // An rvalue string: GCC 12 at -O3 raises a false -Werror=restrict on the const char*
         // overload of add_stop (basic_string::_M_replace).
         for (int i = 0; i < 3; ++i) r.mutable_stopping()->add_stop(std::string("x"));
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       "stopping.stop has 3 strings; the limit (max_stop_strings) is 2"},
      {"invalid UTF-8", [](auto& r) { r.set_text(std::string("ab\xff", 3)); },
       grpc::StatusCode::INVALID_ARGUMENT, "prompt.text is not valid UTF-8 (byte offset 2)"},
      {"max_new_tokens over limit",
       [](auto& r) { r.mutable_stopping()->set_max_new_tokens(1 << 20); },
       grpc::StatusCode::INVALID_ARGUMENT, "stopping.max_new_tokens"},
  };
  for (const Case& c : cases) {
    xlstm::v1::GenerateRequest r = IdsRequest({5}, 3, true);
    c.edit(r);
    GenResult g = Generate(server.stub(), r);
    EXPECT_EQ(g.status.error_code(), c.code) << c.name << ": " << g.status.error_message();
    EXPECT_NE(g.status.error_message().find(c.message), std::string::npos)
        << c.name << ": " << g.status.error_message();
  }
  EXPECT_TRUE(Generate(server.stub(), IdsRequest({5}, 3, true)).status.ok());
  EXPECT_EQ(server.Metric("xlstm_request_failure_total{reason=\"invalid\"}"), cases.size());
}

TEST(ServerE2ETest, HealthAndDrainFinishInFlightAndRefuseNew) {
  ServerProcess server({"--num-slots", "2", "--drain-grace-seconds", "20"});
  auto health = grpc::health::v1::Health::NewStub(server.channel());
  auto check = [&](const std::string& service) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status s = health->Check(&ctx, req, &resp);
    return s.ok() ? resp.status() : grpc::health::v1::HealthCheckResponse::UNKNOWN;
  };
  EXPECT_EQ(check(""), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(check("xlstm.v1.Inference"), grpc::health::v1::HealthCheckResponse::SERVING);

  grpc::ClientContext ctx;
  auto reader = server.stub().Generate(&ctx, IdsRequest({1, 2, 3}, 300, true));
  xlstm::v1::GenerateResponse msg;
  ASSERT_TRUE(reader->Read(&msg));
  int tokens = msg.tokens_size();  // the first message may carry several (coalesced)
  server.Signal(SIGTERM);
  bool not_serving = false;
  for (int i = 0; i < 200 && !not_serving; ++i) {
    not_serving = check("xlstm.v1.Inference") == grpc::health::v1::HealthCheckResponse::NOT_SERVING;
    if (!not_serving) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(not_serving);
  GenResult refused = Generate(server.stub(), IdsRequest({4}, 3, true));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  // Still draining (the stream above is unread): the refusal is counted as a drain rejection.
  EXPECT_EQ(server.Metric("xlstm_request_rejected_total{reason=\"draining\"}"), 1);
  EXPECT_EQ(server.Metric("xlstm_engine_draining"), 1);
  EXPECT_EQ(server.Metric("xlstm_engine_failed"), 0);
  bool final = false;
  while (reader->Read(&msg)) {
    tokens += msg.tokens_size();
    final = final || msg.final();
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_TRUE(final);
  EXPECT_EQ(tokens, 300);
  const int status = server.WaitExit();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
