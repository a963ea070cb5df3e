// Opening and reading files whose paths come from input we do not trust (a model directory, a
// config file named on the command line). Two hazards the standard library does not guard:
//   - a FIFO (or a character device) in place of a file blocks open() until a writer appears,
//     and read() of it may never end, so a loader would hang forever;
//   - std::filesystem::exists(path) throws on a symlink loop (ELOOP), and the exception-free
//     overloads fold "loop" into "absent".
// These functions never block on open, never throw, accept regular files only (after following
// symlinks), and say what is wrong with the path in the error, which always starts "PATH: ".
//
// Thread safety: all functions are reentrant.
#ifndef XLSTM_COMMON_UNTRUSTED_FILE_H_
#define XLSTM_COMMON_UNTRUSTED_FILE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace xlstm::files {

// Whether `path` names anything at all: false when it (or a directory on the way) does not
// exist; an error when it cannot be resolved (a symlink loop, permission denied on the way).
// Says nothing about the kind of file: OpenRegularFile checks that.
absl::StatusOr<bool> Exists(const std::string& path);

// Opens `path` read-only without blocking and checks that it is a regular file: a FIFO,
// socket, device or directory is refused naming what it is. The caller owns the returned
// descriptor (close it); `size_bytes`, when given, receives the file's size.
absl::StatusOr<int> OpenRegularFile(const std::string& path, uint64_t* size_bytes = nullptr);

// The whole content of the regular file `path`, refused when larger than `max_bytes` (the
// error names the limit), so that a huge or growing file cannot exhaust memory.
absl::StatusOr<std::string> ReadRegularFile(const std::string& path, uint64_t max_bytes);

// The limit for the JSON files of a model directory (config.json, tokenizer.json, ...): the
// largest tokenizer.json we know of is ~20 MiB, config files are a few KiB.
inline constexpr uint64_t kMaxJsonFileBytes = uint64_t{256} << 20;

}  // namespace xlstm::files

#endif  // XLSTM_COMMON_UNTRUSTED_FILE_H_
