// Bearer-token authentication of RPCs (--auth-token-file).
//
// The token file holds one token a line (surrounding whitespace ignored; empty lines and lines
// starting with '#' skipped). A call is allowed when its `authorization` metadata is
// "Bearer <token>" for one of them. The file is watched: at most once a second a call re-checks
// its modification time, size and inode, and re-reads it when they changed, so tokens are
// rotated without a restart. A rewrite that leaves the file unreadable or without tokens keeps
// the previous tokens (and logs a warning) rather than locking every client out or letting
// everyone in.
//
// Tokens are kept only as SHA-256 digests and compared with CRYPTO_memcmp against the digest of
// the presented token, all of them every time: the time a check takes does not depend on how
// much of a token matched, nor on which token did. Tokens never appear in logs or errors.
//
// Thread safety: Allows may be called from any thread (gRPC callback threads) concurrently.
#ifndef XLSTM_SERVER_TOKEN_AUTH_H_
#define XLSTM_SERVER_TOKEN_AUTH_H_

#include <sys/types.h>

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace xlstm::server {

class TokenAuthenticator {
 public:
  // Reads `path`; an error (naming the file) when it cannot be read or holds no token.
  static absl::StatusOr<std::unique_ptr<TokenAuthenticator>> Create(const std::string& path);

  // Whether `authorization` (the metadata value, empty when absent) carries a valid token.
  bool Allows(absl::string_view authorization);

 private:
  using Digest = std::array<unsigned char, 32>;
  struct FileStamp {
    ino_t inode = 0;
    off_t size = -1;
    int64_t mtime_ns = -1;
    bool operator==(const FileStamp&) const = default;
  };

  explicit TokenAuthenticator(std::string path) : path_(std::move(path)) {}
  // Re-reads the file when its stamp changed; keeps the old tokens when the new file is bad.
  void MaybeReload() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static absl::StatusOr<std::vector<Digest>> ReadTokens(const std::string& path);
  // All fields zero/-1 when the file cannot be stat'ed.
  static FileStamp StampOf(const std::string& path);

  const std::string path_;
  absl::Mutex mu_;
  std::vector<Digest> digests_ ABSL_GUARDED_BY(mu_);
  FileStamp stamp_ ABSL_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point next_check_ ABSL_GUARDED_BY(mu_);
};

}  // namespace xlstm::server

#endif  // XLSTM_SERVER_TOKEN_AUTH_H_
