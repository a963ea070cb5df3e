// Bearer-token authentication end to end (--auth-token-file), against a real xlstm-server:
// every xlstm.v1 RPC needs a valid token, health never does, reflection is off with auth unless
// --reflection public, a rotated token file takes effect without a restart, tokens never reach
// the log, and xlstm-client / xlstm-loadgen send the token from --auth-token-file.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/server/raw_call.h"
#include "tests/server/server_process.h"

namespace xlstm::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kTokenA[] = "tok-A-4b1d9e0c7a";
constexpr char kTokenB[] = "tok-B-93f2c6d18e";

// Replaces `path` atomically (write, then rename), as operators and secret managers do.
void WriteTokens(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp, std::ios::trunc) << text;
  std::filesystem::rename(tmp, path);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class AuthTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> extra = {}) {
    WriteTokens(token_file_,
                std::string("# comment lines and blank lines are skipped\n\n") + kTokenA + "\n");
    extra.insert(extra.begin(), {"--auth-token-file", token_file_});
    server_ = std::make_unique<ServerProcess>(extra, kModel, tmp_.path() + "/stderr.log");
  }

  grpc::Status ModelInfo(const std::string& authorization) {
    grpc::ClientContext context;
    if (!authorization.empty()) context.AddMetadata("authorization", authorization);
    v1::GetModelInfoResponse info;
    return server_->stub().GetModelInfo(&context, {}, &info);
  }

  TempDir tmp_{"xlstm_auth"};
  const std::string token_file_ = tmp_.path() + "/tokens";
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(AuthTest, MissingOrWrongTokenIsUnauthenticated) {
  Start();
  grpc::Status s = ModelInfo("");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), HasSubstr("missing 'authorization: Bearer <token>'"));
  for (const std::string& bad :
       {std::string("Bearer wrong"), std::string("Bearer ") + kTokenA + "x",
        std::string("Basic ") + kTokenA, std::string(kTokenA), std::string("Bearer ")}) {
    s = ModelInfo(bad);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << bad;
    EXPECT_EQ(s.error_message(), "the bearer token is not valid") << bad;
  }
  // Generate too, before anything about the request is looked at.
  v1::GenerateRequest request;
  request.mutable_ids()->add_ids(1);
  grpc::ClientContext context;
  auto reader = server_->stub().Generate(&context, request);
  v1::GenerateResponse response;
  EXPECT_FALSE(reader->Read(&response));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

// Every method of the service, read from its descriptor (Embed was once added to the .proto
// and served without the checked handler, so without a token check): no token, no answer.
TEST_F(AuthTest, EveryRpcOfTheServiceNeedsAToken) {
  Start();
  const std::vector<std::string> methods = InferenceMethods();
  EXPECT_GE(methods.size(), 6u);
  for (const std::string& method : methods) {
    const grpc::Status s =
        CallWithRawBytes(server_->channel().get(), "/xlstm.v1.Inference/" + method, "");
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << method << ": " << s.error_message();
    // With the token the call gets past authentication (an empty request may then be invalid).
    const grpc::Status with_token =
        CallWithRawBytes(server_->channel().get(), "/xlstm.v1.Inference/" + method, "",
                         std::string("Bearer ") + kTokenA);
    EXPECT_NE(with_token.error_code(), grpc::StatusCode::UNAUTHENTICATED) << method;
  }
}

TEST_F(AuthTest, ValidTokenIsAccepted) {
  Start();
  EXPECT_TRUE(ModelInfo(std::string("Bearer ") + kTokenA).ok());
  EXPECT_TRUE(ModelInfo(std::string("bearer ") + kTokenA).ok()) << "the scheme is case-insensitive";
  grpc::ClientContext context;
  context.AddMetadata("authorization", std::string("Bearer ") + kTokenA);
  v1::GenerateRequest request;
  request.mutable_ids()->add_ids(1);
  request.mutable_stopping()->set_max_new_tokens(2);
  request.mutable_stopping()->set_ignore_eos(true);
  auto reader = server_->stub().Generate(&context, request);
  v1::GenerateResponse response;
  while (reader->Read(&response)) {
  }
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_F(AuthTest, HealthNeedsNoToken) {
  Start();
  auto health = grpc::health::v1::Health::NewStub(server_->channel());
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(health->Check(&context, request, &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

// A ServerReflectionRequest{list_services: "*"} as a one-message call; the status says whether
// the reflection service is there.
grpc::Status ListServices(grpc::Channel* channel) {
  grpc::GenericStub stub(channel->shared_from_this());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice slice(std::string("\x3a\x01*", 3));
  grpc::ByteBuffer request(&slice, 1), response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status result;
  stub.UnaryCall(&context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                 grpc::StubOptions(), &request, &response, [&](grpc::Status status) {
                   std::lock_guard<std::mutex> lock(mu);
                   result = std::move(status);
                   done = true;
                   cv.notify_one();
                 });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  return result;
}

TEST_F(AuthTest, ReflectionIsOffWithAuthUnlessPublic) {
  Start();
  EXPECT_EQ(ListServices(server_->channel().get()).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  server_.reset();
  Start({"--reflection", "public"});
  EXPECT_TRUE(ListServices(server_->channel().get()).ok());
}

TEST_F(AuthTest, RotatedTokenFileTakesEffectWithoutRestart) {
  Start();
  ASSERT_TRUE(ModelInfo(std::string("Bearer ") + kTokenA).ok());
  WriteTokens(token_file_, std::string(kTokenB) + "\n");
  // The file is re-checked at most once a second.
  bool rotated = false;
  for (int i = 0; i < 50 && !rotated; ++i) {
    rotated = ModelInfo(std::string("Bearer ") + kTokenB).ok();
    if (!rotated) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(rotated);
  EXPECT_EQ(ModelInfo(std::string("Bearer ") + kTokenA).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // A rewrite without any token keeps the previous tokens instead of locking everyone out.
  WriteTokens(token_file_, "# nothing\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_TRUE(ModelInfo(std::string("Bearer ") + kTokenB).ok());
  // Tokens never reach the log, whatever was tried.
  const std::string log = ReadAll(tmp_.path() + "/stderr.log");
  EXPECT_THAT(log, HasSubstr("keeping the previous tokens"));
  EXPECT_THAT(log, Not(HasSubstr(kTokenA)));
  EXPECT_THAT(log, Not(HasSubstr(kTokenB)));
}

TEST_F(AuthTest, ClientAndLoadgenSendTheToken) {
  Start();
  const std::string target = " --target " + server_->target();
  int code = -1;
  std::string out = RunCommand(kClient + target + " info 2>&1", &code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("xlstm-client: 16 "));  // UNAUTHENTICATED
  out = RunCommand(
      kClient + target + " --auth-token-file " + ShellQuote(token_file_) + " info 2>&1", &code);
  EXPECT_EQ(code, 0) << out;
  out = RunCommand(kLoadgen + target + " --auth-token-file " + ShellQuote(token_file_) +
                       " --concurrency 1 --duration-s 0.5 --max-new-tokens 2 2>&1",
                   &code);
  EXPECT_EQ(code, 0) << out;
  out = RunCommand(kClient + target + " --auth-token-file /nonexistent/tokens info 2>&1", &code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("/nonexistent/tokens"));
}

TEST(AuthStartupTest, UnusableTokenFileIsAStartUpError) {
  TempDir tmp("xlstm_auth_startup");
  const std::string empty = tmp.path() + "/empty";
  std::ofstream(empty) << "\n# no token\n";
  for (const std::string& file : {empty, tmp.path() + "/missing"}) {
    int code = -1;
    const std::string out =
        RunCommand("timeout 30 " + kServer + " --model " + ShellQuote(kModel) +
                       " --host 127.0.0.1 --port 0 --metrics-port -1 --auth-token-file " +
                       ShellQuote(file) + " 2>&1",
                   &code);
    EXPECT_EQ(code, 1) << out;
    EXPECT_THAT(out, HasSubstr("--auth-token-file: " + file));
  }
}

}  // namespace
}  // namespace xlstm::testing
