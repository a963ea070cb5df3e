// Read-only, memory-mapped access to one .safetensors file.
//
// Format: an 8-byte little-endian header length N, N bytes of JSON mapping tensor names to
// {dtype, shape, data_offsets: [begin, end]} (offsets relative to the byte after the header),
// then the tensor bytes. Open() validates all of it before any tensor is handed out, so every
// TensorView's bytes lie inside the mapping.
//
// Thread safety: immutable after Open(); views stay valid while the SafetensorsFile lives.
#ifndef XLSTM_ENGINE_WEIGHTS_SAFETENSORS_H_
#define XLSTM_ENGINE_WEIGHTS_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/weights/dtype.h"

namespace xlstm::engine {

struct TensorView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const std::byte* data;  // inside the file mapping; any alignment
  size_t num_bytes;

  int64_t num_elements() const;
};

class SafetensorsFile {
 public:
  // Maps and validates `path`. Errors name the file and, where one is at fault, the tensor.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // Tensors by name (sorted).
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const TensorView* Find(const std::string& name) const;

 private:
  SafetensorsFile() = default;

  std::string path_;
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  std::map<std::string, TensorView> tensors_;
};

// "[2, 3]" for error messages.
std::string ShapeToString(const std::vector<int64_t>& shape);

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_WEIGHTS_SAFETENSORS_H_
