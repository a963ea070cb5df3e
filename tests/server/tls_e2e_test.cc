// TLS and mutual TLS end to end, with certificates made at test time by openssl: plaintext to a
// TLS server fails, a client that trusts another CA fails, mutual TLS refuses clients without a
// certificate of the client CA, health and the clients work over TLS, and a rotated server
// certificate and token file take effect without a restart.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/server/server_process.h"

namespace xlstm::testing {
namespace {

using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A CA and certificates it signs, in one directory; P-256 keys, so that making them is fast.
class TestPki {
 public:
  explicit TestPki(const std::string& dir) : dir_(dir) {
    std::ofstream(dir_ + "/server.ext") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
  }
  // `ca`.pem and `ca`.key: a self-signed CA.
  void MakeCa(const std::string& ca) {
    Run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "
        "/CN=" +
        ca + " -keyout " + Path(ca + ".key") + " -out " + Path(ca + ".pem"));
  }
  // `name`.pem and `name`.key signed by `ca`; server certificates name localhost and 127.0.0.1.
  void MakeCert(const std::string& name, const std::string& ca, bool server) {
    Run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=" + name +
        " -keyout " + Path(name + ".key") + " -out " + Path(name + ".csr"));
    Run("openssl x509 -req -days 2 -in " + Path(name + ".csr") + " -CA " + Path(ca + ".pem") +
        " -CAkey " + Path(ca + ".key") + " -CAcreateserial -out " + Path(name + ".pem") +
        (server ? " -extfile " + Path("server.ext") : ""));
  }
  std::string Path(const std::string& file) const { return dir_ + "/" + file; }
  std::string Pem(const std::string& name) const { return ReadAll(Path(name + ".pem")); }
  std::string Key(const std::string& name) const { return ReadAll(Path(name + ".key")); }

 private:
  void Run(const std::string& command) {
    int code = -1;
    const std::string out = RunCommand(command + " 2>&1", &code);
    ASSERT_EQ(code, 0) << command << "\n" << out;
  }
  std::string dir_;
};

// A fresh connection (its own subchannel pool) to `target` with `credentials`.
std::shared_ptr<grpc::Channel> Channel(const std::string& target,
                                       std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(target, credentials, args);
}

std::shared_ptr<grpc::ChannelCredentials> Tls(const std::string& roots,
                                              const std::string& cert = "",
                                              const std::string& key = "") {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = roots;
  ssl.pem_cert_chain = cert;
  ssl.pem_private_key = key;
  return grpc::SslCredentials(ssl);
}

grpc::Status ModelInfo(const std::shared_ptr<grpc::Channel>& channel,
                       const std::string& token = "") {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  v1::GetModelInfoResponse info;
  return v1::Inference::NewStub(channel)->GetModelInfo(&context, {}, &info);
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_.MakeCa("ca");
    pki_.MakeCa("other-ca");
    pki_.MakeCert("server", "ca", /*server=*/true);
    pki_.MakeCert("client", "ca", /*server=*/false);
    pki_.MakeCert("other-client", "other-ca", /*server=*/false);
  }
  void Start(std::vector<std::string> extra) {
    extra.insert(extra.begin(), {"--tls-cert", pki_.Path("server.pem"), "--tls-key",
                                 pki_.Path("server.key"), "--tls-reload-seconds", "1"});
    server_ = std::make_unique<ServerProcess>(extra, kModel, tmp_.path() + "/stderr.log");
  }

  TempDir tmp_{"xlstm_tls"};
  TestPki pki_{tmp_.path()};
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(TlsTest, TlsServerRefusesPlaintextAndUntrustedClients) {
  Start({});
  EXPECT_TRUE(ModelInfo(Channel(server_->target(), Tls(pki_.Pem("ca")))).ok());
  EXPECT_FALSE(ModelInfo(Channel(server_->target(), grpc::InsecureChannelCredentials())).ok())
      << "plaintext to a TLS server";
  EXPECT_FALSE(ModelInfo(Channel(server_->target(), Tls(pki_.Pem("other-ca")))).ok())
      << "a client that trusts another CA";
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificateOfTheClientCa) {
  Start({"--tls-client-ca", pki_.Path("ca.pem")});
  const std::string ca = pki_.Pem("ca");
  EXPECT_TRUE(
      ModelInfo(Channel(server_->target(), Tls(ca, pki_.Pem("client"), pki_.Key("client")))).ok());
  EXPECT_FALSE(ModelInfo(Channel(server_->target(), Tls(ca))).ok()) << "no client certificate";
  EXPECT_FALSE(ModelInfo(Channel(server_->target(),
                                 Tls(ca, pki_.Pem("other-client"), pki_.Key("other-client"))))
                   .ok())
      << "a client certificate of another CA";
}

TEST_F(TlsTest, HealthAndClientsWorkOverMutualTlsWithTokens) {
  std::ofstream(tmp_.path() + "/tokens") << "tls-token-1\n";
  Start({"--tls-client-ca", pki_.Path("ca.pem"), "--auth-token-file", tmp_.path() + "/tokens"});
  auto channel =
      Channel(server_->target(), Tls(pki_.Pem("ca"), pki_.Pem("client"), pki_.Key("client")));
  EXPECT_EQ(ModelInfo(channel).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(ModelInfo(channel, "tls-token-1").ok());
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  EXPECT_TRUE(grpc::health::v1::Health::NewStub(channel)->Check(&context, request, &response).ok())
      << "health needs no token";
  const std::string tls = " --target " + server_->target() + " --tls-ca " + pki_.Path("ca.pem") +
                          " --tls-cert " + pki_.Path("client.pem") + " --tls-key " +
                          pki_.Path("client.key") + " --tls-server-name localhost" +
                          " --auth-token-file " + tmp_.path() + "/tokens";
  int code = -1;
  std::string out = RunCommand(kClient + tls + " info 2>&1", &code);
  EXPECT_EQ(code, 0) << out;
  out = RunCommand(kLoadgen + tls + " --concurrency 1 --duration-s 0.5 --max-new-tokens 2 2>&1",
                   &code);
  EXPECT_EQ(code, 0) << out;
  out = RunCommand(kClient + " --target " + server_->target() + " info 2>&1", &code);
  EXPECT_EQ(code, 1) << "plaintext xlstm-client to a TLS server: " << out;
}

// Rotation: the server's certificate moves to a new CA and its token file to a new token; new
// connections see both within a few seconds, without a restart.
TEST_F(TlsTest, RotatedCertificateAndTokenFileTakeEffectWithoutRestart) {
  pki_.MakeCa("ca2");
  pki_.MakeCert("server2", "ca2", /*server=*/true);
  const std::string tokens = tmp_.path() + "/tokens";
  std::ofstream(tokens) << "old-token\n";
  Start({"--auth-token-file", tokens});
  ASSERT_TRUE(ModelInfo(Channel(server_->target(), Tls(pki_.Pem("ca"))), "old-token").ok());
  EXPECT_FALSE(ModelInfo(Channel(server_->target(), Tls(pki_.Pem("ca2"))), "old-token").ok());

  // Key first, then the certificate, each renamed into place.
  std::filesystem::copy_file(pki_.Path("server2.key"), pki_.Path("server.key.new"));
  std::filesystem::copy_file(pki_.Path("server2.pem"), pki_.Path("server.pem.new"));
  std::filesystem::rename(pki_.Path("server.key.new"), pki_.Path("server.key"));
  std::filesystem::rename(pki_.Path("server.pem.new"), pki_.Path("server.pem"));
  std::ofstream(tokens + ".new") << "new-token\n";
  std::filesystem::rename(tokens + ".new", tokens);

  bool rotated = false;
  for (int i = 0; i < 100 && !rotated; ++i) {
    rotated = ModelInfo(Channel(server_->target(), Tls(pki_.Pem("ca2"))), "new-token").ok();
    if (!rotated) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(rotated) << "the new certificate and token were not in use after 10 s";
  EXPECT_FALSE(ModelInfo(Channel(server_->target(), Tls(pki_.Pem("ca"))), "new-token").ok())
      << "new connections still get the old certificate";
  EXPECT_EQ(ModelInfo(Channel(server_->target(), Tls(pki_.Pem("ca2"))), "old-token").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST(TlsStartupTest, BadTlsFlagsAreStartUpErrors) {
  TempDir tmp("xlstm_tls_startup");
  std::ofstream(tmp.path() + "/not.pem") << "not a certificate\n";
  const std::string base = "timeout 30 " + kServer + " --model " + ShellQuote(kModel) +
                           " --host 127.0.0.1 --port 0 --metrics-port -1 ";
  int code = -1;
  std::string out = RunCommand(base + "--tls-cert " + tmp.path() + "/not.pem 2>&1", &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_THAT(out, HasSubstr("--tls-cert and --tls-key: give both or neither"));
  out = RunCommand(
      base + "--tls-cert " + tmp.path() + "/not.pem --tls-key " + tmp.path() + "/missing.key 2>&1",
      &code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("--tls-cert: " + tmp.path() + "/not.pem: no PEM block"));
}

}  // namespace
}  // namespace xlstm::testing
