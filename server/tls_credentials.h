// The server's transport credentials: insecure, TLS (--tls-cert, --tls-key) or mutual TLS
// (--tls-client-ca: clients must present a certificate that chains to it). Certificate, key and
// client CA are watched by gRPC's FileWatcherCertificateProvider, which re-reads them every
// --tls-reload-seconds, so rotated files apply to new connections without a restart
// (connections already open keep the certificates they were made with).
//
// Thread safety: called once, from main, before the server starts.
#ifndef XLSTM_SERVER_TLS_CREDENTIALS_H_
#define XLSTM_SERVER_TLS_CREDENTIALS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "grpcpp/security/server_credentials.h"
#include "server/server_options.h"

namespace xlstm::server {

// An error naming the flag and the file when a file cannot be read or holds no PEM block: the
// watcher itself would only fail handshakes later, silently.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerOptions& options);

}  // namespace xlstm::server

#endif  // XLSTM_SERVER_TLS_CREDENTIALS_H_
