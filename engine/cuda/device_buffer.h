// Owning handles for device and pinned host memory. All of the engine's device memory is
// allocated through these at start (weights, workspace, state pool), never in the step loop.
//
// Thread safety: plain movable values with one owner.
#ifndef XLSTM_ENGINE_CUDA_DEVICE_BUFFER_H_
#define XLSTM_ENGINE_CUDA_DEVICE_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <utility>

#include "absl/status/statusor.h"

namespace xlstm::engine::cuda {

// The two kinds of memory a buffer can own (allocation and release; defined in the .cc).
struct DeviceMemory {
  static constexpr const char* kKind = "device";
  static absl::Status Allocate(void** data, size_t bytes, const char* what);
  static void Free(void* data);
};
struct PinnedHostMemory {  // page-locked: copies to and from the device are asynchronous
  static constexpr const char* kKind = "pinned host";
  static absl::Status Allocate(void** data, size_t bytes, const char* what);
  static void Free(void* data);
};

template <typename Memory>
class OwnedBuffer {
 public:
  OwnedBuffer() = default;
  // `bytes` of uninitialized memory. `what` names the buffer in the error message.
  static absl::StatusOr<OwnedBuffer> Allocate(size_t bytes, const char* what) {
    OwnedBuffer buffer;
    if (bytes == 0) return buffer;
    absl::Status status = Memory::Allocate(&buffer.data_, bytes, what);
    if (!status.ok()) return status;
    buffer.bytes_ = bytes;
    return buffer;
  }
  ~OwnedBuffer() {
    if (data_ != nullptr) Memory::Free(data_);
  }
  OwnedBuffer(OwnedBuffer&& other) noexcept { *this = std::move(other); }
  OwnedBuffer& operator=(OwnedBuffer&& other) noexcept {
    if (this != &other) {
      if (data_ != nullptr) Memory::Free(data_);
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  OwnedBuffer(const OwnedBuffer&) = delete;
  OwnedBuffer& operator=(const OwnedBuffer&) = delete;

  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

using DeviceBuffer = OwnedBuffer<DeviceMemory>;
using PinnedBuffer = OwnedBuffer<PinnedHostMemory>;

}  // namespace xlstm::engine::cuda

#endif  // XLSTM_ENGINE_CUDA_DEVICE_BUFFER_H_
