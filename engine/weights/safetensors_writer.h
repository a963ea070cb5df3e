// Writes .safetensors files in the layout Hugging Face's `safetensors` writes (header padded with
// spaces to a multiple of 8 bytes, tensors packed in header order).
#ifndef XLSTM_ENGINE_WEIGHTS_SAFETENSORS_WRITER_H_
#define XLSTM_ENGINE_WEIGHTS_SAFETENSORS_WRITER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/weights/dtype.h"

namespace xlstm::engine {

struct TensorSpec {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;

  size_t num_bytes() const;
};

// Fills the bytes of tensor `index` (of `specs`) into `out` (exactly num_bytes()). Called once
// per tensor, in order, so a writer never holds more than one tensor in memory.
using TensorFiller = std::function<void(size_t index, absl::Span<std::byte> out)>;

// Writes `path` atomically (a temporary file renamed into place).
absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorSpec>& specs,
                              const TensorFiller& fill,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_WEIGHTS_SAFETENSORS_WRITER_H_
