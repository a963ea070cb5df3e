// What outside checks tried as an attacker or a careless operator would, against a real
// xlstm-server process: a malformed model directory is a start-up error naming the file (exit 1,
// never a crash or a hang), SIGTERM stops a server that is still loading, request bytes that do
// not parse get INVALID_ARGUMENT with a message (never UNIMPLEMENTED or log noise), /metrics
// stays on loopback unless asked, and GetModelInfo reveals no filesystem path.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>

#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/raw_call.h"
#include "tests/server/server_process.h"

namespace xlstm::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct Outcome {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs xlstm-server on `model` to completion; `timeout 30` turns a hang into exit 124.
Outcome RunServer(const std::string& model) {
  Outcome o;
  o.output = RunCommand("timeout 30 " + kServer + " --model " + ShellQuote(model) +
                            " --host 127.0.0.1 --port 0 --metrics-port -1 2>&1",
                        &o.exit_code);
  return o;
}

// A copy of the test model that a test may break.
class ModelCopy {
 public:
  ModelCopy() : tmp_("xlstm_hardening") {
    dir_ = tmp_.path() + "/model";
    std::filesystem::copy(kModel, dir_);
  }
  const std::string& dir() const { return dir_; }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }

 private:
  TempDir tmp_;
  std::string dir_;
};

TEST(MalformedModelTest, OverflowingNumberInConfigIsAStartUpError) {
  ModelCopy m;
  std::ofstream(m.file("config.json"), std::ios::trunc)
      << R"({"model_type": "xlstm", "chunk_size": 1e999})";
  const Outcome o = RunServer(m.dir());
  EXPECT_EQ(o.exit_code, 1) << o.output;
  EXPECT_THAT(o.output, HasSubstr("config.json: invalid JSON"));
}

TEST(MalformedModelTest, SymlinkLoopAtGenerationConfigIsAStartUpError) {
  ModelCopy m;
  std::filesystem::remove(m.file("generation_config.json"));
  std::filesystem::create_symlink("generation_config.json", m.file("generation_config.json"));
  const Outcome o = RunServer(m.dir());
  EXPECT_EQ(o.exit_code, 1) << o.output;
  EXPECT_THAT(o.output, HasSubstr("generation_config.json: cannot resolve: Too many levels"));
}

TEST(MalformedModelTest, FifoInPlaceOfWeightsIsAStartUpErrorNotAHang) {
  ModelCopy m;
  std::filesystem::remove(m.file("model.safetensors"));
  ASSERT_EQ(mkfifo(m.file("model.safetensors").c_str(), 0600), 0);
  const Outcome o = RunServer(m.dir());
  EXPECT_EQ(o.exit_code, 1) << "124 means it hung; output: " << o.output;
  EXPECT_THAT(o.output, HasSubstr("model.safetensors: is a FIFO; expected a regular file"));
}

TEST(MalformedModelTest, FifoInPlaceOfTokenizerIsAStartUpError) {
  ModelCopy m;
  ASSERT_EQ(mkfifo(m.file("tokenizer.json").c_str(), 0600), 0);
  const Outcome o = RunServer(m.dir());
  EXPECT_EQ(o.exit_code, 1) << "124 means it hung; output: " << o.output;
  EXPECT_THAT(o.output, HasSubstr("tokenizer.json: is a FIFO; expected a regular file"));
}

// The load is made slow with the server's test seam (XLSTM_TEST_LOAD_DELAY_MS); SIGTERM during
// it must stop the process at once rather than after the load (or never, for a load that hangs).
TEST(LoadingServerTest, SigtermStopsAServerThatIsStillLoading) {
  TempDir tmp("xlstm_loading_sigterm");
  const std::string log = tmp.path() + "/server.log";
  const std::string pid_file = tmp.path() + "/pid";
  // The shell starts the server in the background, waits for its "loading the model" line,
  // signals it and reports how it ended and how long that took.
  const std::string script = "XLSTM_TEST_LOAD_DELAY_MS=60000 " + kServer + " --model " +
                             ShellQuote(kModel) + " --host 127.0.0.1 --port 0 --metrics-port -1 >" +
                             ShellQuote(log) +
                             " 2>&1 & pid=$!; "
                             "for i in $(seq 200); do grep -q 'loading the model' " +
                             ShellQuote(log) +
                             " && break; sleep 0.05; done; "
                             "start=$(date +%s%N); kill -TERM $pid; "
                             "( sleep 20; kill -KILL $pid ) >/dev/null 2>&1 & killer=$!; "
                             "wait $pid; rc=$?; kill $killer 2>/dev/null; "
                             "echo \"rc=$rc ms=$(( ($(date +%s%N) - start) / 1000000 ))\"";
  const std::string result = RunCommand("bash -c " + ShellQuote(script));
  std::ifstream in(log);
  const std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_THAT(result, HasSubstr("rc=0 ")) << result << output;
  EXPECT_THAT(output, HasSubstr("while loading the model: stopped")) << output;
  const size_t ms_at = result.find("ms=");
  ASSERT_NE(ms_at, std::string::npos) << result;
  EXPECT_LT(std::stol(result.substr(ms_at + 3)), 5000) << "SIGTERM took too long to act";
}

class UnparsableRequestTest : public ::testing::Test {
 protected:
  UnparsableRequestTest()
      : tmp_("xlstm_unparsable"),
        server_({"--num-slots", "2"}, kModel, tmp_.path() + "/stderr.log") {}
  std::string ServerStderr() {
    std::ifstream in(tmp_.path() + "/stderr.log");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  grpc::Status Call(const std::string& rpc, const std::string& bytes) {
    return CallWithRawBytes(server_.channel().get(), "/xlstm.v1.Inference/" + rpc, bytes);
  }

  TempDir tmp_;
  ServerProcess server_;
};

// Field 1, length-delimited, declared 5 bytes long with only 2 present.
const std::string kTruncated(
    "\x0a\x05"
    "ab",
    4);

TEST_F(UnparsableRequestTest, TruncatedProtobufIsInvalidArgumentInEveryRpc) {
  // Every method of the service, so that an RPC added to the .proto is covered too.
  for (const std::string& rpc : InferenceMethods()) {
    SCOPED_TRACE(rpc);
    const grpc::Status s = Call(rpc, kTruncated);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("is not a valid xlstm.v1."));
    EXPECT_THAT(s.error_message(), HasSubstr("truncated or malformed protobuf"));
  }
  // Zero bytes are a valid (empty) GetModelInfoRequest.
  EXPECT_TRUE(Call("GetModelInfo", "").ok());
  EXPECT_THAT(ServerStderr(), Not(HasSubstr("libprotobuf")));
}

// request_id and parameter keys are `bytes` on the wire (the same encoding as `string`), so
// protobuf parses them and our validation names the field.
TEST_F(UnparsableRequestTest, InvalidUtf8RequestIdNamesTheField) {
  v1::GenerateRequest generate;
  generate.set_request_id("\xff\xfe");
  generate.mutable_ids()->add_ids(1);
  grpc::Status s = Call("Generate", generate.SerializeAsString());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("request_id is not valid UTF-8 (byte offset 0)"));
  v1::ScoreRequest score;
  score.set_request_id("ok\xc3");  // a cut two-byte sequence
  s = Call("Score", score.SerializeAsString());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("request_id is not valid UTF-8 (byte offset 2)"));
  EXPECT_THAT(ServerStderr(), Not(HasSubstr("libprotobuf")));
}

TEST_F(UnparsableRequestTest, InvalidUtf8ParameterKeyNamesTheField) {
  v1::GenerateRequest generate;
  generate.mutable_ids()->add_ids(1);
  generate.add_parameters()->set_key("\xff");
  const grpc::Status s = Call("Generate", generate.SerializeAsString());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("parameters[0].key is not valid UTF-8"));
  EXPECT_THAT(ServerStderr(), Not(HasSubstr("libprotobuf")));
}

TEST_F(UnparsableRequestTest, ValidRequestsStillWork) {
  v1::GenerateRequest request;
  request.set_request_id("still-fine");
  request.mutable_ids()->add_ids(1);
  request.mutable_stopping()->set_max_new_tokens(2);
  request.mutable_stopping()->set_ignore_eos(true);
  grpc::ClientContext context;
  auto reader = server_.stub().Generate(&context, request);
  v1::GenerateResponse response;
  int tokens = 0;
  while (reader->Read(&response)) {
    EXPECT_EQ(response.request_id(), "still-fine");
    tokens += response.tokens_size();
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(tokens, 2);
}

// Whether a TCP connection to host:port is accepted.
bool Connects(const std::string& host, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// /metrics has no authentication: it listens on loopback unless --metrics-host says otherwise,
// whatever --host is. 127.0.0.2 is a second loopback address (all of 127/8 is loopback on
// Linux), so the test never listens beyond this machine.
TEST(MetricsHostTest, MetricsListenOnLoopbackByDefaultNotOnTheGrpcHost) {
  ServerProcess server({"--host", "127.0.0.2"});
  ASSERT_GT(server.metrics_port(), 0);
  EXPECT_TRUE(Connects("127.0.0.1", server.metrics_port()));
  EXPECT_FALSE(Connects("127.0.0.2", server.metrics_port()));
  EXPECT_TRUE(Connects("127.0.0.2", server.port()));
  EXPECT_FALSE(Connects("127.0.0.1", server.port()));
}

TEST(MetricsHostTest, MetricsHostFlagChoosesTheAddress) {
  ServerProcess server({"--metrics-host", "127.0.0.2"});
  ASSERT_GT(server.metrics_port(), 0);
  EXPECT_TRUE(Connects("127.0.0.2", server.metrics_port()));
  EXPECT_FALSE(Connects("127.0.0.1", server.metrics_port()));
}

// GetModelInfo tells clients the model's name, never the server's filesystem paths.
TEST(ModelInfoTest, NoFilesystemPaths) {
  ModelCopy m;
  nlohmann::json config = nlohmann::json::parse(std::ifstream(m.file("config.json")));
  config["_name_or_path"] = "/srv/secret/checkpoints/xlstm";
  std::ofstream(m.file("config.json"), std::ios::trunc) << config.dump();
  ServerProcess server({}, m.dir() + "/");
  grpc::ClientContext context;
  v1::GetModelInfoResponse info;
  ASSERT_TRUE(server.stub().GetModelInfo(&context, {}, &info).ok());
  EXPECT_EQ(info.model_name(), "model");
  const std::string all = info.DebugString();
  EXPECT_THAT(all, Not(HasSubstr(m.dir())));
  EXPECT_THAT(all, Not(HasSubstr("/srv/secret")));
  EXPECT_EQ(nlohmann::json::parse(info.config_json()).at("vocab_size"), config.at("vocab_size"));
}

}  // namespace
}  // namespace xlstm::testing
