// The server process's contract with its operators: a port in use is a start-up error (never a
// second server sharing the port), the /metrics page passes promtool, log lines parse (JSON one
// object per line) and carry each request, and reflection can describe every service it lists.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/unknown_field_set.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/server_process.h"

namespace xlstm::testing {
namespace {

// A TCP socket listening on 127.0.0.1 (a free port), as any other program holding the port
// would: no SO_REUSEPORT.
class OccupiedPort {
 public:
  OccupiedPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(fd_, 4), 0);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~OccupiedPort() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

struct Outcome {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs xlstm-server to completion with `args` (after --model and --host). `timeout` stops a
// server that (wrongly) starts: it then exits 124 and its output has the ready line.
Outcome RunServer(const std::string& args) {
  Outcome o;
  o.output = RunCommand("timeout 30 " + kServer + " --model " + ShellQuote(kModel) +
                            " --host 127.0.0.1 " + args + " 2>&1",
                        &o.exit_code);
  return o;
}

void ExpectStartFailureNaming(const Outcome& o, const std::string& flag, int port) {
  EXPECT_EQ(o.exit_code, 1) << o.output;
  EXPECT_NE(o.output.find(flag + " " + std::to_string(port) +
                          ": cannot listen on 127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << o.output;
  EXPECT_EQ(o.output.find("ready grpc_port"), std::string::npos) << o.output;
}

TEST(ProcessTest, GrpcPortHeldByAnotherProgramIsAStartUpError) {
  OccupiedPort occupied;
  const Outcome o = RunServer("--port " + std::to_string(occupied.port()) + " --metrics-port -1");
  ExpectStartFailureNaming(o, "--port", occupied.port());
  EXPECT_NE(o.output.find("Address already in use"), std::string::npos) << o.output;
}

TEST(ProcessTest, GrpcPortHeldByAnotherServerIsAStartUpError) {
  // gRPC's SO_REUSEPORT default let a second server bind the same port and share its traffic.
  ServerProcess first({});
  ASSERT_GT(first.port(), 0);
  const Outcome o = RunServer("--port " + std::to_string(first.port()) + " --metrics-port -1");
  ExpectStartFailureNaming(o, "--port", first.port());
}

TEST(ProcessTest, MetricsPortInUseIsAStartUpError) {
  OccupiedPort occupied;
  const Outcome o = RunServer("--port 0 --metrics-port " + std::to_string(occupied.port()));
  ExpectStartFailureNaming(o, "--metrics-port", occupied.port());
  EXPECT_EQ(o.output.find("null context"), std::string::npos) << o.output;
}

TEST(ProcessTest, MetricsPortHeldByAnotherServerIsAStartUpError) {
  ServerProcess first({});
  ASSERT_GT(first.metrics_port(), 0);
  const Outcome o = RunServer("--port 0 --metrics-port " + std::to_string(first.metrics_port()));
  ExpectStartFailureNaming(o, "--metrics-port", first.metrics_port());
}

void SendTraffic(ServerProcess& server, const std::string& request_id) {
  xlstm::v1::GenerateRequest req;
  req.set_request_id(request_id);
  req.mutable_ids()->add_ids(5);
  req.mutable_ids()->add_ids(17);
  req.mutable_stopping()->set_max_new_tokens(6);
  req.mutable_stopping()->set_ignore_eos(true);
  req.mutable_sampling()->set_temperature(0);
  grpc::ClientContext ctx;
  auto reader = server.stub().Generate(&ctx, req);
  xlstm::v1::GenerateResponse msg;
  while (reader->Read(&msg)) {
  }
  ASSERT_TRUE(reader->Finish().ok());

  xlstm::v1::ScoreRequest score;
  auto* item = score.add_items();
  item->mutable_context_ids()->add_ids(5);
  item->add_continuation_ids()->add_ids(17);
  grpc::ClientContext score_ctx;
  xlstm::v1::ScoreResponse score_resp;
  ASSERT_TRUE(server.stub().Score(&score_ctx, score, &score_resp).ok());

  // A refused request, so that the failure counter has a sample too.
  xlstm::v1::GenerateRequest bad;
  grpc::ClientContext bad_ctx;
  auto bad_reader = server.stub().Generate(&bad_ctx, bad);
  while (bad_reader->Read(&msg)) {
  }
  EXPECT_FALSE(bad_reader->Finish().ok());
}

TEST(ProcessTest, MetricsPagePassesPromtool) {
  const std::string promtool = RunCommand("command -v promtool");
  if (promtool.empty()) {
    GTEST_SKIP() << "promtool is not installed (Debian package 'prometheus'; tools/bootstrap.sh "
                    "installs it)";
  }
  ServerProcess server({});
  ASSERT_GT(server.port(), 0);
  SendTraffic(server, "promtool-1");
  // The generate request's tokens are counted when its call has ended.
  ASSERT_TRUE(server.WaitMetric("xlstm_generation_tokens_total", 6));
  const std::string page = server.Scrape();
  const size_t body = page.find("\r\n\r\n");
  ASSERT_NE(body, std::string::npos) << page;
  TempDir dir("promtool");
  const std::string path = dir.path() + "/metrics.txt";
  std::ofstream(path) << page.substr(body + 4);
  // The step histograms are filled off the engine thread, at scrape time.
  EXPECT_NE(page.find("xlstm_step_duration_seconds_count{phase=\"forward\"}"), std::string::npos);
  EXPECT_NE(page.find("xlstm_state_slots_capacity "), std::string::npos) << page;
  EXPECT_EQ(page.find("xlstm_state_slots_total"), std::string::npos) << page;
  // The router-facing names (vllm:...) need their colon, the one thing promtool remarks on
  // (exit 3: lint findings only; a malformed page exits 1). Anything else it says fails.
  for (const char* name :
       {"vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"}) {
    EXPECT_NE(page.find(std::string("\n# TYPE ") + name + " gauge\n"), std::string::npos) << name;
  }
  int code = -1;
  const std::string out = RunCommand("promtool check metrics < " + path + " 2>&1", &code);
  EXPECT_EQ(code, 3) << out;
  std::istringstream lines(out);
  int colon_remarks = 0;
  for (std::string line; std::getline(lines, line);) {
    const bool vllm_colon = line.rfind("vllm:", 0) == 0 &&
                            line.find(" metric names should not contain ':'") != std::string::npos;
    EXPECT_TRUE(vllm_colon) << line;
    colon_remarks += vllm_colon;
  }
  EXPECT_EQ(colon_remarks, 3) << out;
}

TEST(ProcessTest, StepHistogramsCountEveryStep) {
  ServerProcess server({});
  ASSERT_GT(server.port(), 0);
  SendTraffic(server, "steps-1");
  // Generate: prefill + 6 decode steps at least; every step lands in all three phases.
  const double forward = server.Metric("xlstm_step_duration_seconds_count{phase=\"forward\"}");
  EXPECT_GE(forward, 6);
  EXPECT_EQ(server.Metric("xlstm_step_duration_seconds_count{phase=\"schedule\"}"), forward);
  EXPECT_EQ(server.Metric("xlstm_batch_size_count"), forward);
}

std::vector<nlohmann::json> JsonLines(const std::string& path, std::string* bad_line) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      *bad_line = line;
      continue;
    }
    lines.push_back(std::move(j));
  }
  return lines;
}

TEST(ProcessTest, JsonLogHasOneObjectPerLineWithTheRequestsFields) {
  TempDir dir("jsonlog");
  const std::string log_path = dir.path() + "/stderr.log";
  ServerProcess server({"--log-format", "json", "--stats-interval-seconds", "0.05"}, kModel,
                       log_path);
  ASSERT_GT(server.port(), 0);
  SendTraffic(server, "json-log \"1\"\n");
  // Long enough (~0.5 s on the CPU backend) for stats lines at a 50 ms interval.
  xlstm::v1::GenerateRequest req;
  req.set_request_id("json-log-long");
  req.mutable_ids()->add_ids(5);
  req.mutable_stopping()->set_max_new_tokens(2000);
  req.mutable_stopping()->set_ignore_eos(true);
  grpc::ClientContext ctx;
  auto reader = server.stub().Generate(&ctx, req);
  xlstm::v1::GenerateResponse msg;
  while (reader->Read(&msg)) {
  }
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_EQ(server.Terminate(), 0);

  std::string bad_line;
  const std::vector<nlohmann::json> lines = JsonLines(log_path, &bad_line);
  EXPECT_EQ(bad_line, "") << "not a JSON object";
  const nlohmann::json* request = nullptr;
  bool has_stats = false;
  for (const nlohmann::json& j : lines) {
    EXPECT_TRUE(j.contains("time") && j["time"].is_string()) << j.dump();
    EXPECT_TRUE(j.contains("level") && j["level"].is_string()) << j.dump();
    if (j.value("event", "") == "request" && j.value("id", "") == "json-log \"1\"\n") request = &j;
    if (j.value("event", "") == "stats") {
      has_stats = true;
      for (const char* key : {"running", "waiting", "slots_used", "slots_total", "tokens_per_s"}) {
        EXPECT_TRUE(j.contains(key)) << key << " in " << j.dump();
      }
    }
  }
  ASSERT_NE(request, nullptr) << "no request line for json-log-1";
  const nlohmann::json& r = *request;
  EXPECT_EQ(r["rpc"], "generate");
  EXPECT_EQ(r["status"], "OK");
  EXPECT_EQ(r["finish_reason"], "length");
  EXPECT_EQ(r["prompt_tokens"], 2);
  EXPECT_EQ(r["generated_tokens"], 6);
  for (const char* key : {"queue_s", "ttft_s", "total_s"}) {
    ASSERT_TRUE(r.contains(key) && r[key].is_number()) << key << " in " << r.dump();
    EXPECT_GE(r[key].get<double>(), 0) << key;
  }
  EXPECT_LE(r["ttft_s"].get<double>(), r["total_s"].get<double>());
  EXPECT_TRUE(has_stats) << "no stats line during a 2000-token generation";
}

TEST(ProcessTest, TextLogHasATimestampedLinePerRequest) {
  TempDir dir("textlog");
  const std::string log_path = dir.path() + "/stderr.log";
  ServerProcess server({}, kModel, log_path);
  ASSERT_GT(server.port(), 0);
  SendTraffic(server, "text-log-1");
  ASSERT_EQ(server.Terminate(), 0);
  std::ifstream in(log_path);
  std::stringstream text;
  text << in.rdbuf();
  const std::regex line(
      "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z info request rpc=generate "
      "id=text-log-1 engine_id=\\d+ status=OK finish_reason=length prompt_tokens=2 "
      "generated_tokens=6 queue_s=[0-9.]+ ttft_s=[0-9.]+ total_s=[0-9.]+");
  EXPECT_TRUE(std::regex_search(text.str(), line)) << text.str();
}

// Reflection, spoken on the wire without generated reflection stubs (Debian ships none): a
// ServerReflectionRequest{file_containing_symbol = symbol}, answered by a
// ServerReflectionResponse whose file_descriptor_response holds serialized FileDescriptorProtos.
std::vector<google::protobuf::FileDescriptorProto> DescribeSymbol(grpc::Channel* channel,
                                                                  const std::string& symbol,
                                                                  std::string* error) {
  constexpr int kFileContainingSymbolField = 4;
  constexpr int kFileDescriptorResponseField = 4;
  constexpr int kErrorResponseField = 7;
  std::string request;
  request.push_back(static_cast<char>(kFileContainingSymbolField << 3 | 2));
  request.push_back(static_cast<char>(symbol.size()));  // < 128: a one-byte varint
  request += symbol;

  grpc::GenericStub stub(channel->shared_from_this());
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto call =
      stub.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  auto step = [&cq](void* tag) {
    void* got = nullptr;
    bool ok = false;
    return cq.Next(&got, &ok) && got == tag && ok;
  };
  grpc::ByteBuffer response;
  grpc::Status status;
  int tags[5];
  call->StartCall(&tags[0]);
  bool ok = step(&tags[0]);
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1);
  if (ok) call->Write(request_buffer, &tags[1]);
  ok = ok && step(&tags[1]);
  if (ok) call->WritesDone(&tags[2]);
  ok = ok && step(&tags[2]);
  if (ok) call->Read(&response, &tags[3]);
  ok = ok && step(&tags[3]);
  call->Finish(&status, &tags[4]);
  void* got = nullptr;
  bool finished = false;
  cq.Next(&got, &finished);
  cq.Shutdown();
  while (cq.Next(&got, &finished)) {
  }
  if (!ok) {
    *error = "reflection call failed: " + status.error_message();
    return {};
  }
  std::vector<grpc::Slice> slices;
  (void)response.Dump(&slices);
  std::string bytes;
  for (const grpc::Slice& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());

  google::protobuf::UnknownFieldSet fields;
  if (!fields.ParseFromString(bytes)) {
    *error = "unparsable ServerReflectionResponse";
    return {};
  }
  std::vector<google::protobuf::FileDescriptorProto> files;
  for (int i = 0; i < fields.field_count(); ++i) {
    const google::protobuf::UnknownField& f = fields.field(i);
    if (f.number() == kErrorResponseField) {
      *error = "error_response (" + std::to_string(f.length_delimited().size()) +
               " bytes): " + f.length_delimited();
    }
    if (f.number() != kFileDescriptorResponseField) continue;
    google::protobuf::UnknownFieldSet inner;
    inner.ParseFromString(f.length_delimited());
    for (int j = 0; j < inner.field_count(); ++j) {
      google::protobuf::FileDescriptorProto file;
      if (file.ParseFromString(inner.field(j).length_delimited())) files.push_back(file);
    }
  }
  return files;
}

TEST(ProcessTest, ReflectionDescribesTheHealthService) {
  ServerProcess server({});
  ASSERT_GT(server.port(), 0);
  for (const std::string& symbol :
       {std::string("grpc.health.v1.Health"), std::string("xlstm.v1.Inference")}) {
    std::string error;
    const std::vector<google::protobuf::FileDescriptorProto> files =
        DescribeSymbol(server.channel().get(), symbol, &error);
    EXPECT_EQ(error, "") << symbol;
    bool found = false;
    for (const auto& file : files) {
      for (const auto& service : file.service()) {
        if (file.package() + "." + service.name() == symbol) found = true;
      }
    }
    EXPECT_TRUE(found) << symbol << " not described (" << files.size() << " files)";
  }
}

}  // namespace
}  // namespace xlstm::testing
