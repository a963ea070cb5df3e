#include "common/untrusted_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace xlstm::files {
namespace {

const char* KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

absl::Status ErrnoError(const std::string& path, const char* what, int error) {
  const std::string message = absl::StrCat(path, ": ", what, ": ", std::strerror(error));
  return error == ENOENT ? absl::NotFoundError(message) : absl::InvalidArgumentError(message);
}

}  // namespace

absl::StatusOr<bool> Exists(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return true;
  const int error = errno;
  if (error == ENOENT || error == ENOTDIR) return false;
  return ErrnoError(path, "cannot resolve", error);
}

absl::StatusOr<int> OpenRegularFile(const std::string& path, uint64_t* size_bytes) {
  // O_NONBLOCK: opening a FIFO read-only otherwise waits for a writer. It has no effect on
  // reads of regular files, the only kind kept.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return ErrnoError(path, "cannot open", errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    return ErrnoError(path, "cannot stat", error);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": is ", KindOf(st.st_mode), "; expected a regular file"));
  }
  if (size_bytes != nullptr) *size_bytes = static_cast<uint64_t>(st.st_size);
  return fd;
}

absl::StatusOr<std::string> ReadRegularFile(const std::string& path, uint64_t max_bytes) {
  uint64_t size = 0;
  absl::StatusOr<int> fd = OpenRegularFile(path, &size);
  if (!fd.ok()) return fd.status();
  if (size > max_bytes) {
    ::close(*fd);
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", size, " bytes, over the limit of ", max_bytes, " bytes"));
  }
  std::string contents(size, '\0');
  uint64_t done = 0;
  // Reads until end of file; a file that grows while read is cut at its size when opened.
  while (done < size) {
    const ssize_t n = ::read(*fd, contents.data() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(*fd);
      return ErrnoError(path, "read failed", error);
    }
    if (n == 0) break;  // shrank since fstat
    done += static_cast<uint64_t>(n);
  }
  ::close(*fd);
  contents.resize(done);
  return contents;
}

}  // namespace xlstm::files
