// The channel credentials both clients use, from flags defined here once for xlstm-client and
// xlstm-loadgen: --tls-ca (verify the server against this CA bundle; turns TLS on),
// --tls-cert and --tls-key (a client certificate, for a server with --tls-client-ca) and
// --tls-server-name (the name to verify instead of the target's host, e.g. "localhost" for
// a target of 127.0.0.1:50051). Without any of them the channel is plaintext.
//
// Thread safety: call from main, after flag parsing.
#ifndef XLSTM_CLIENT_CHANNEL_SECURITY_H_
#define XLSTM_CLIENT_CHANNEL_SECURITY_H_

#include <memory>

#include "absl/status/statusor.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace xlstm::client {

// An error naming the flag and the file for an unreadable file or an incomplete pair. Sets the
// server-name override on `args` when --tls-server-name is given.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFromFlags(
    grpc::ChannelArguments* args);

}  // namespace xlstm::client

#endif  // XLSTM_CLIENT_CHANNEL_SECURITY_H_
