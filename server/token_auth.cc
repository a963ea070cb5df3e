#include "server/token_auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "common/untrusted_file.h"
#include "server/request_log.h"

namespace xlstm::server {
namespace {

// A token file is a short list; anything larger is a mistake (a wrong path).
constexpr uint64_t kMaxTokenFileBytes = uint64_t{1} << 20;
constexpr auto kCheckInterval = std::chrono::seconds(1);

std::array<unsigned char, 32> Sha256(absl::string_view text) {
  std::array<unsigned char, 32> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
  return digest;
}

}  // namespace

absl::StatusOr<std::vector<TokenAuthenticator::Digest>> TokenAuthenticator::ReadTokens(
    const std::string& path) {
  absl::StatusOr<std::string> text = files::ReadRegularFile(path, kMaxTokenFileBytes);
  if (!text.ok()) return text.status();
  std::vector<Digest> digests;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    digests.push_back(Sha256(line));
  }
  if (digests.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no token (one a line; empty lines and '#' lines are skipped)"));
  }
  return digests;
}

TokenAuthenticator::FileStamp TokenAuthenticator::StampOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return FileStamp{};
  return {st.st_ino, st.st_size, int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec};
}

absl::StatusOr<std::unique_ptr<TokenAuthenticator>> TokenAuthenticator::Create(
    const std::string& path) {
  // The stamp is taken before reading, so that a change during the read is seen next time.
  const FileStamp stamp = StampOf(path);
  XLSTM_ASSIGN_OR_RETURN(std::vector<Digest> digests, ReadTokens(path));
  std::unique_ptr<TokenAuthenticator> auth(new TokenAuthenticator(path));
  absl::MutexLock lock(&auth->mu_);
  auth->digests_ = std::move(digests);
  auth->stamp_ = stamp;
  auth->next_check_ = std::chrono::steady_clock::now() + kCheckInterval;
  return auth;
}

void TokenAuthenticator::MaybeReload() {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_check_) return;
  next_check_ = now + kCheckInterval;
  const FileStamp stamp = StampOf(path_);
  if (stamp == stamp_) return;
  stamp_ = stamp;  // a bad file is reported once per change, not once per call
  absl::StatusOr<std::vector<Digest>> digests = ReadTokens(path_);
  if (!digests.ok()) {
    LogMessage(LogLevel::kWarning, absl::StrCat("--auth-token-file: keeping the previous tokens: ",
                                                digests.status().message()));
    return;
  }
  digests_ = *std::move(digests);
  LogMessage(LogLevel::kInfo, absl::StrCat("--auth-token-file: reloaded ", digests_.size(),
                                           " token(s) from ", path_));
}

bool TokenAuthenticator::Allows(absl::string_view authorization) {
  // The scheme is case-insensitive (RFC 7235); exactly one space before the token.
  constexpr absl::string_view kScheme = "bearer ";
  const bool has_scheme = authorization.size() > kScheme.size() &&
                          absl::EqualsIgnoreCase(authorization.substr(0, kScheme.size()), kScheme);
  const Digest presented = Sha256(has_scheme ? authorization.substr(kScheme.size()) : "");
  absl::MutexLock lock(&mu_);
  MaybeReload();
  bool match = false;
  for (const Digest& digest : digests_) {
    match |= CRYPTO_memcmp(digest.data(), presented.data(), digest.size()) == 0;
  }
  return has_scheme && match;
}

}  // namespace xlstm::server
