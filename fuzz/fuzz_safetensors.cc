// libFuzzer target: a whole .safetensors file (8-byte length, JSON header, data) ->
// SafetensorsFile::Open. The input is put in a memfd and opened through /proc/self/fd, so the
// real open/fstat/mmap path runs without touching the disk.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/weights/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = memfd_create("fuzz.safetensors", MFD_CLOEXEC);
  if (fd < 0) return 0;
  for (size_t done = 0; done < size;) {
    const ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  auto file = xlstm::engine::SafetensorsFile::Open(path);
  if (file.ok()) {
    // Every tensor a successful Open reports must lie inside the mapping: touch its bytes.
    unsigned sum = 0;
    for (const auto& [name, view] : (*file)->tensors()) {
      for (size_t i = 0; i < view.num_bytes; i += 4096) sum += static_cast<unsigned>(view.data[i]);
      if (view.num_bytes > 0) sum += static_cast<unsigned>(view.data[view.num_bytes - 1]);
    }
    (void)sum;
  }
  close(fd);
  return 0;
}
