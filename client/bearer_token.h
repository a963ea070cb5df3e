// The bearer token a client sends (--auth-token-file): the first line of the file that is not
// empty and does not start with '#', without surrounding whitespace, so that the server's token
// file itself (one token a line) works as a client's token file.
//
// Thread safety: free functions without state.
#ifndef XLSTM_CLIENT_BEARER_TOKEN_H_
#define XLSTM_CLIENT_BEARER_TOKEN_H_

#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/client_context.h"

namespace xlstm::client {

// An error naming the file when it cannot be read or holds no token.
absl::StatusOr<std::string> ReadBearerToken(const std::string& path);

// Adds "authorization: Bearer <token>" to `context`; nothing when `token` is empty.
void AddBearerToken(const std::string& token, grpc::ClientContext* context);

}  // namespace xlstm::client

#endif  // XLSTM_CLIENT_BEARER_TOKEN_H_
