#include "client/channel_security.h"

#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/untrusted_file.h"

ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA bundle to verify the server with; turns TLS on (server --tls-cert)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate chain, for mutual TLS (server --tls-client-ca); with --tls-key");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert");
ABSL_FLAG(std::string, tls_server_name, "",
          "name to verify the server's certificate against instead of the target's host");

namespace xlstm::client {
namespace {

absl::StatusOr<std::string> ReadPem(const char* flag, const std::string& path) {
  absl::StatusOr<std::string> text = files::ReadRegularFile(path, uint64_t{4} << 20);
  if (!text.ok())
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", text.status().message()));
  return text;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFromFlags(
    grpc::ChannelArguments* args) {
  const std::string ca = absl::GetFlag(FLAGS_tls_ca), cert = absl::GetFlag(FLAGS_tls_cert),
                    key = absl::GetFlag(FLAGS_tls_key), name = absl::GetFlag(FLAGS_tls_server_name);
  if (cert.empty() != key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key: give both or neither");
  }
  if (ca.empty() && cert.empty()) {
    if (!name.empty()) return absl::InvalidArgumentError("--tls-server-name: needs --tls-ca");
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions
      ssl;  // empty roots: the system's (or GRPC_DEFAULT_SSL_ROOTS_FILE_PATH)
  if (!ca.empty()) {
    absl::StatusOr<std::string> roots = ReadPem("--tls-ca", ca);
    if (!roots.ok()) return roots.status();
    ssl.pem_root_certs = *std::move(roots);
  }
  if (!cert.empty()) {
    absl::StatusOr<std::string> chain = ReadPem("--tls-cert", cert);
    if (!chain.ok()) return chain.status();
    absl::StatusOr<std::string> private_key = ReadPem("--tls-key", key);
    if (!private_key.ok()) return private_key.status();
    ssl.pem_cert_chain = *std::move(chain);
    ssl.pem_private_key = *std::move(private_key);
  }
  if (!name.empty()) args->SetSslTargetNameOverride(name);
  return grpc::SslCredentials(ssl);
}

}  // namespace xlstm::client
