// Element types of safetensors files and conversions between float32 and the 16-bit floats.
#ifndef XLSTM_ENGINE_WEIGHTS_DTYPE_H_
#define XLSTM_ENGINE_WEIGHTS_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"

namespace xlstm::engine {

// Every dtype the safetensors format defines, so that any valid file's offsets can be checked;
// only kF32, kBF16 and kF16 can hold model weights.
enum class DType {
  kBool,
  kU8,
  kI8,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kF64,
  kI64,
  kU64,
  kF8E4M3,
  kF8E5M2,
};

std::optional<DType> ParseDType(absl::string_view name);  // "F32" -> kF32
absl::string_view DTypeName(DType dtype);                 // kF32 -> "F32"
size_t DTypeSize(DType dtype);                            // bytes per element
bool IsWeightDType(DType dtype);                          // F32, BF16 or F16

float BF16ToFloat(uint16_t bits);
float F16ToFloat(uint16_t bits);
uint16_t FloatToBF16(float value);  // round to nearest even, NaN kept
uint16_t FloatToF16(float value);   // round to nearest even, overflow to inf

// Converts `count` little-endian elements of a weight dtype at `src` (any alignment) to float32.
void ConvertToFloat(DType dtype, const std::byte* src, size_t count, float* dst);

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_WEIGHTS_DTYPE_H_
