// xlstm-loadgen against a real xlstm-server (hf/default model): a short run at concurrency 4
// whose JSON report must add up, and the load generator's usage errors.
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/server_process.h"

namespace {

using xlstm::testing::kLoadgen;
using xlstm::testing::RunCommand;
using xlstm::testing::ServerProcess;
using xlstm::testing::TempDir;

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
}

// `count` samples; or between `count` and `max_count` when max_count is given.
void ExpectOrderedDistribution(const nlohmann::json& d, int64_t count, const std::string& name,
                               int64_t max_count = -1) {
  SCOPED_TRACE(name);
  if (max_count < 0) {
    EXPECT_EQ(d["count"].get<int64_t>(), count);
  } else {
    EXPECT_GE(d["count"].get<int64_t>(), count);
    EXPECT_LE(d["count"].get<int64_t>(), max_count);
  }
  const double min = d["min"], p50 = d["p50"], p90 = d["p90"], p99 = d["p99"], max = d["max"],
               mean = d["mean"];
  EXPECT_GT(min, 0);
  EXPECT_LE(min, p50);
  EXPECT_LE(p50, p90);
  EXPECT_LE(p90, p99);
  EXPECT_LE(p99, max);
  EXPECT_GE(mean, min);
  EXPECT_LE(mean, max);
}

TEST(LoadgenE2ETest, TwoSecondsAtConcurrencyFourAddUp) {
  TempDir dir("xlstm_loadgen_e2e");
  ServerProcess server({"--num-slots", "8"});
  ASSERT_GT(server.port(), 0);
  const std::string json_path = dir.path() + "/result.json";
  constexpr int kMaxNew = 8;
  int code = -1;
  const std::string out = RunCommand(
      kLoadgen + " --target " + server.target() +
          " --concurrency 4 --duration-s 2 --warmup-s 0.3 --prompt-tokens 6 --max-new-tokens " +
          std::to_string(kMaxNew) + " --greedy --json " + json_path + " 2>&1",
      &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("requests completed"), std::string::npos) << out;
  EXPECT_NE(out.find("TTFT"), std::string::npos) << out;

  const nlohmann::json j = ReadJson(json_path);
  ASSERT_TRUE(j.is_object()) << "not JSON: " << json_path;
  const int64_t requests = j["requests"];
  EXPECT_GT(requests, 0);
  EXPECT_EQ(j["errors"].get<int64_t>(), 0);
  EXPECT_TRUE(j["errors_by_code"].empty()) << j["errors_by_code"].dump();
  // ignore_eos is the load generator's default: every request yields exactly max-new-tokens.
  EXPECT_EQ(j["output_tokens"].get<int64_t>(), requests * kMaxNew);
  EXPECT_EQ(j["tokens_per_request"]["min"].get<int64_t>(), kMaxNew);
  EXPECT_EQ(j["tokens_per_request"]["max"].get<int64_t>(), kMaxNew);
  ExpectOrderedDistribution(j["ttft_ms"], requests, "ttft");
  // The server coalesces what is pending into one message per write, so the first message may
  // carry more than the first token; tokens that arrive with the first have no inter-token gap.
  // Every request still has at least one later message.
  ExpectOrderedDistribution(j["itl_ms"], requests, "itl", requests * (kMaxNew - 1));
  ExpectOrderedDistribution(j["e2e_ms"], requests, "e2e");
  EXPECT_GE(j["e2e_ms"]["p50"].get<double>(), j["ttft_ms"]["p50"].get<double>());
  EXPECT_DOUBLE_EQ(j["window_seconds"].get<double>(), 2.0);
  EXPECT_GT(j["output_tokens_per_second"].get<double>(), 0);
  EXPECT_GT(j["requests_per_second"].get<double>(), 0);
  // Throughput inside the window cannot exceed what the measured and warm-up requests produced.
  const int64_t all_requests = requests + j["warmup"]["requests"].get<int64_t>();
  EXPECT_LE(j["output_tokens_per_second"].get<double>() * 2.0, all_requests * kMaxNew + 1e-9);
  EXPECT_EQ(j["target"], server.target());
  EXPECT_EQ(j["config"]["concurrency"], 4);
  EXPECT_EQ(j["config"]["max_new_tokens"], kMaxNew);
  EXPECT_EQ(j["config"]["prompt"]["kind"], "random");
  // The backend the server reported (cpu in CI; cuda when XLSTM_TEST_SERVER_ARGS selects it).
  EXPECT_THAT(j["server"]["backend"].get<std::string>(), ::testing::AnyOf("cpu", "cuda"));
  EXPECT_NE(j["command_line"].get<std::string>().find("--concurrency 4"), std::string::npos);
  EXPECT_TRUE(std::regex_match(j["timestamp"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << j["timestamp"];
  EXPECT_FALSE(j["percentile_method"].get<std::string>().empty());

  // The server saw at least every measured request finish by length.
  EXPECT_GE(server.Metric("xlstm_request_success_total{finished_reason=\"length\"}"),
            static_cast<double>(requests));
}

TEST(LoadgenE2ETest, DeadlineErrorsAreCountedByStatusCode) {
  // One slot and requests far longer than their deadline: the calls end DEADLINE_EXCEEDED.
  ServerProcess server({"--num-slots", "1"});
  ASSERT_GT(server.port(), 0);
  TempDir dir("xlstm_loadgen_deadline");
  const std::string json_path = dir.path() + "/result.json";
  int code = -1;
  const std::string out =
      RunCommand(kLoadgen + " --target " + server.target() +
                     " --concurrency 2 --duration-s 0.5 --prompt-ids 1,2,3 --max-new-tokens 4000 "
                     "--deadline-ms 100 --json " +
                     json_path + " 2>&1",
                 &code);
  EXPECT_EQ(code, 1) << out;  // no request completed
  EXPECT_NE(out.find("DEADLINE_EXCEEDED"), std::string::npos) << out;
  const nlohmann::json j = ReadJson(json_path);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["requests"].get<int64_t>(), 0);
  EXPECT_GT(j["errors"].get<int64_t>(), 0);
  EXPECT_EQ(j["errors_by_code"]["DEADLINE_EXCEEDED"], j["errors"]);
  EXPECT_TRUE(server.WaitMetric("xlstm_state_slots_used", 0));
}

TEST(LoadgenE2ETest, BadFlagsNameTheFlag) {
  struct Case {
    std::string args;
    int code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"--concurrency 0", 2, "--concurrency: 0 is outside [1, 4096]"},
      {"--duration-s -1", 2, "--duration-s"},
      {"--duration-s nan", 2, "--duration-s"},
      {"--max-new-tokens 0", 2, "--max-new-tokens: 0 must be >= 1"},
      {"--prompt-ids 1,x,3", 2, "--prompt-ids: 'x' is not a token id"},
      {"--prompt hi --prompt-tokens 4", 2, "give only one"},
      {"--top-p 0", 2, "--top-p"},
      {"--temperature -1", 2, "--temperature"},
      {"--channels 3 --concurrency 2", 2, "--channels"},
      {"--deadline-ms -5", 2, "--deadline-ms"},
      {"stray", 2, "unexpected argument 'stray'"},
      // Every usage mistake exits 2, as the flags' own range checks do.
      {"--no-such-flag 1", 2, "--no-such-flag: unknown flag"},
      {"--concurrency many", 2, "--concurrency: 'many' is not a valid value"},
  };
  for (const Case& c : cases) {
    int code = -1;
    const std::string out = RunCommand(kLoadgen + " " + c.args + " 2>&1", &code);
    EXPECT_EQ(code, c.code) << c.args << ": " << out;
    EXPECT_NE(out.find(c.message), std::string::npos) << c.args << ": " << out;
  }
}

TEST(LoadgenE2ETest, UnreachableTargetAndModelMismatchFailClearly) {
  int code = -1;
  // Port 1 on loopback: nothing listens there.
  std::string out = RunCommand(
      kLoadgen + " --target 127.0.0.1:1 --connect-timeout-s 0.5 --duration-s 1 2>&1", &code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("--target 127.0.0.1:1: GetModelInfo failed"), std::string::npos) << out;

  ServerProcess server({"--num-slots", "2"});
  ASSERT_GT(server.port(), 0);
  // hf/default has no tokenizer and a 256-id vocabulary.
  out = RunCommand(kLoadgen + " --target " + server.target() + " --prompt hello 2>&1", &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--prompt: the server's model has no tokenizer"), std::string::npos) << out;
  out = RunCommand(kLoadgen + " --target " + server.target() + " --prompt-ids 1,256 2>&1", &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--prompt-ids: 256 is outside the vocabulary [0, 256)"), std::string::npos)
      << out;
}

}  // namespace
