#include "server/tls_credentials.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/untrusted_file.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace xlstm::server {
namespace {

// PEM files are a few KiB; a CA bundle may be a few hundred.
constexpr uint64_t kMaxPemBytes = uint64_t{4} << 20;

absl::Status CheckPemFile(const char* flag, const std::string& path) {
  absl::StatusOr<std::string> text = files::ReadRegularFile(path, kMaxPemBytes);
  if (!text.ok())
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", text.status().message()));
  if (!absl::StrContains(*text, "-----BEGIN ")) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, ": no PEM block"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerOptions& options) {
  if (options.tls_cert.empty()) return grpc::InsecureServerCredentials();
  XLSTM_RETURN_IF_ERROR(CheckPemFile("--tls-cert", options.tls_cert));
  XLSTM_RETURN_IF_ERROR(CheckPemFile("--tls-key", options.tls_key));
  const bool mutual = !options.tls_client_ca.empty();
  if (mutual) XLSTM_RETURN_IF_ERROR(CheckPemFile("--tls-client-ca", options.tls_client_ca));
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      options.tls_key, options.tls_cert, options.tls_client_ca,
      static_cast<unsigned int>(options.tls_reload_seconds));
  grpc::experimental::TlsServerCredentialsOptions tls(provider);
  tls.watch_identity_key_cert_pairs();
  if (mutual) {
    tls.watch_root_certs();
    tls.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    tls.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(tls);
}

}  // namespace xlstm::server
