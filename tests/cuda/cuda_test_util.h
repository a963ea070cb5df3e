// Helpers for the GPU tests of the CUDA engine (tests/cuda/): skipping without a device, device
// arrays filled from and read back into host vectors (RAII over engine/cuda/device_buffer.h,
// synchronous cudaMemcpy), status assertions, and element-wise tolerance checks that report how
// many elements are off and the worst one.
//
// Every test of tests/cuda/ starts with XLSTM_SKIP_WITHOUT_CUDA(): without a usable device the
// test is skipped with the reason, unless XLSTM_REQUIRE_CUDA is set (non-empty, not "0") in the
// environment, which turns the skip into a failure (tools/gpu/run_gpu_tests.sh sets it, so a
// GPU run cannot pass by skipping everything).
#ifndef XLSTM_TESTS_CUDA_CUDA_TEST_UTIL_H_
#define XLSTM_TESTS_CUDA_CUDA_TEST_UTIL_H_

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/kernels.h"
#include "engine/weights/dtype.h"
#include "gtest/gtest.h"

namespace xlstm::testing {

// Empty when a CUDA device is usable; otherwise why not (for the skip message).
inline std::string NoCudaDeviceReason() {
  if (engine::cuda::CudaDeviceCount() > 0) return "";
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  cudaGetLastError();  // Do not leave the error behind for the next CUDA call.
  if (error != cudaSuccess) {
    return absl::StrCat("cudaGetDeviceCount failed with ", cudaGetErrorName(error), " (",
                        cudaGetErrorString(error), ")");
  }
  return absl::StrCat("CudaDeviceCount() is 0 (cudaGetDeviceCount reports ", count, ")");
}

// True when XLSTM_REQUIRE_CUDA asks for a device (a GPU run must not pass by skipping).
inline bool CudaRequired() {
  const char* value = std::getenv("XLSTM_REQUIRE_CUDA");
  return value != nullptr && *value != '\0' && std::string(value) != "0";
}

// Skips (or, with XLSTM_REQUIRE_CUDA, fails) the current test when no CUDA device is usable.
// Use it first in a fixture's SetUp() or a test body: it returns from the enclosing function.
#define XLSTM_SKIP_WITHOUT_CUDA()                                                                \
  do {                                                                                           \
    const std::string xlstm_no_cuda_reason_ = ::xlstm::testing::NoCudaDeviceReason();            \
    if (!xlstm_no_cuda_reason_.empty()) {                                                        \
      if (::xlstm::testing::CudaRequired()) {                                                    \
        FAIL() << "no CUDA device: " << xlstm_no_cuda_reason_ << " (XLSTM_REQUIRE_CUDA is set)"; \
      }                                                                                          \
      GTEST_SKIP() << "no CUDA device: " << xlstm_no_cuda_reason_;                               \
    }                                                                                            \
  } while (0)

#define XLSTM_TEST_CONCAT_INNER_(a, b) a##b
#define XLSTM_TEST_CONCAT_(a, b) XLSTM_TEST_CONCAT_INNER_(a, b)

// ASSERTs that an absl::Status is OK (usable only in functions returning void).
#define XLSTM_ASSERT_OK(expr)                                       \
  do {                                                              \
    const ::absl::Status xlstm_assert_status_ = (expr);             \
    ASSERT_TRUE(xlstm_assert_status_.ok()) << xlstm_assert_status_; \
  } while (0)

// `XLSTM_ASSERT_OK_AND_ASSIGN(auto x, MakeX());`: ASSERTs the StatusOr is OK, then assigns.
#define XLSTM_ASSERT_OK_AND_ASSIGN(lhs, expr) \
  XLSTM_ASSERT_OK_AND_ASSIGN_IMPL_(XLSTM_TEST_CONCAT_(xlstm_assert_statusor_, __LINE__), lhs, expr)
#define XLSTM_ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                     \
  ASSERT_TRUE(statusor.ok()) << statusor.status();            \
  lhs = std::move(statusor).value()

// Waits for all device work and returns the first error (launch or asynchronous fault).
inline absl::Status SyncDevice() {
  XLSTM_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
  XLSTM_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

// An owned array of `size` elements of T in device memory.
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;

  // Uninitialized contents.
  static absl::StatusOr<DeviceArray> Allocate(size_t size) {
    DeviceArray array;
    auto buffer = engine::cuda::DeviceBuffer::Allocate(size * sizeof(T), "test array");
    if (!buffer.ok()) return buffer.status();
    array.buffer_ = std::move(*buffer);
    array.size_ = size;
    return array;
  }

  // A copy of `host`.
  static absl::StatusOr<DeviceArray> FromHost(absl::Span<const T> host) {
    auto array = Allocate(host.size());
    if (!array.ok()) return array.status();
    absl::Status status = array->Upload(host);
    if (!status.ok()) return status;
    return array;
  }

  // Overwrites the whole array with `host` (same size).
  absl::Status Upload(absl::Span<const T> host) {
    if (host.size() != size_) {
      return absl::InvalidArgumentError(
          absl::StrCat("Upload of ", host.size(), " elements into an array of ", size_));
    }
    if (size_ == 0) return absl::OkStatus();
    XLSTM_CUDA_RETURN_IF_ERROR(
        cudaMemcpy(buffer_.data(), host.data(), size_ * sizeof(T), cudaMemcpyHostToDevice));
    return absl::OkStatus();
  }

  // The whole array, after all queued device work (cudaMemcpy waits for it).
  absl::StatusOr<std::vector<T>> Download() const {
    std::vector<T> host(size_);
    if (size_ == 0) return host;
    XLSTM_CUDA_RETURN_IF_ERROR(
        cudaMemcpy(host.data(), buffer_.data(), size_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

  T* get() const { return buffer_.as<T>(); }
  size_t size() const { return size_; }

 private:
  engine::cuda::DeviceBuffer buffer_;
  size_t size_ = 0;
};

// A CUDA stream owned by a test (kernels are launched on it, not on the legacy stream).
class TestStream {
 public:
  TestStream() = default;
  ~TestStream() {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  TestStream(const TestStream&) = delete;
  TestStream& operator=(const TestStream&) = delete;

  absl::Status Create() {
    XLSTM_CUDA_RETURN_IF_ERROR(cudaStreamCreate(&stream_));
    return absl::OkStatus();
  }
  absl::Status Synchronize() const {
    XLSTM_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
    XLSTM_CUDA_RETURN_IF_ERROR(cudaGetLastError());
    return absl::OkStatus();
  }
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

// ---- bf16 ----

inline uint16_t ToBf16Bits(float value) { return engine::FloatToBF16(value); }
inline float Bf16BitsToFloat(uint16_t bits) { return engine::BF16ToFloat(bits); }
inline float RoundToBf16(double value) {
  return engine::BF16ToFloat(engine::FloatToBF16(static_cast<float>(value)));
}
// One unit in the last place of a bf16 number of magnitude |value| (8 significant bits).
inline double Bf16Ulp(double value) {
  value = std::fabs(value);
  if (value == 0.0 || !std::isfinite(value)) return 0.0;
  return std::ldexp(1.0, std::max(std::ilogb(value), -126) - 7);
}

// The values of an activation array (ActType) downloaded as raw bytes.
inline std::vector<double> DecodeAct(engine::cuda::ActType type,
                                     const std::vector<unsigned char>& bytes) {
  const size_t size = engine::cuda::ActSize(type);
  std::vector<double> out(bytes.size() / size);
  for (size_t i = 0; i < out.size(); ++i) {
    if (type == engine::cuda::ActType::kF32) {
      float v;
      std::memcpy(&v, &bytes[i * 4], 4);
      out[i] = v;
    } else {
      uint16_t v;
      std::memcpy(&v, &bytes[i * 2], 2);
      out[i] = Bf16BitsToFloat(v);
    }
  }
  return out;
}

inline const char* ActName(engine::cuda::ActType type) {
  return type == engine::cuda::ActType::kF32 ? "f32" : "bf16";
}

// ---- tolerance checks ----

// Element-wise |got[i] - want[i]| <= tol[i] (NaN never passes). On failure the message gives
// the number of elements off and the worst one relative to its tolerance; `worst_ratio` (if
// given) receives max |got - want| / tol, for reporting how much margin there was.
inline ::testing::AssertionResult AllWithin(absl::Span<const double> got,
                                            absl::Span<const double> want,
                                            absl::Span<const double> tol,
                                            double* worst_ratio = nullptr) {
  if (got.size() != want.size() || got.size() != tol.size()) {
    return ::testing::AssertionFailure() << "size mismatch: got " << got.size() << ", want "
                                         << want.size() << ", tol " << tol.size();
  }
  size_t bad = 0, worst = 0;
  double worst_r = -1.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(got[i] - want[i]);
    const bool ok = err <= tol[i];  // false for NaN
    if (!ok) ++bad;
    // err / tol, with NaN as +inf and 0 / 0 as 0.
    double r = std::numeric_limits<double>::infinity();
    if (std::isfinite(err)) r = err == 0.0 ? 0.0 : err / std::max(tol[i], 1e-300);
    if (r > worst_r) {
      worst_r = r;
      worst = i;
    }
  }
  if (worst_ratio != nullptr) *worst_ratio = std::max(worst_r, 0.0);
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << got.size() << " elements outside tolerance; worst at index " << worst
         << ": got " << got[worst] << ", want " << want[worst] << ", |diff| "
         << std::fabs(got[worst] - want[worst]) << " > tol " << tol[worst];
}

// As AllWithin for an activation output of `type`: fp32 outputs must be within `tol` of the
// exact reference; bf16 outputs are compared with the reference rounded to bf16 and may differ
// from it by one bf16 ulp (the GPU rounds its own fp32 value, which is within `tol` of the
// reference, so the two roundings can land on neighbouring bf16 numbers) plus `tol`.
inline ::testing::AssertionResult ActWithin(engine::cuda::ActType type,
                                            absl::Span<const double> got,
                                            absl::Span<const double> want,
                                            absl::Span<const double> tol,
                                            double* worst_ratio = nullptr) {
  if (type == engine::cuda::ActType::kF32) return AllWithin(got, want, tol, worst_ratio);
  if (got.size() != want.size() || got.size() != tol.size()) {
    return ::testing::AssertionFailure() << "size mismatch";
  }
  std::vector<double> want_bf16(want.size()), tol_bf16(want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    want_bf16[i] = RoundToBf16(want[i]);
    tol_bf16[i] = tol[i] + Bf16Ulp(std::max(std::fabs(got[i]), std::fabs(want_bf16[i])));
  }
  return AllWithin(got, want_bf16, tol_bf16, worst_ratio);
}

// Bit-identical float arrays (NaN patterns included); names the first difference.
inline ::testing::AssertionResult BitIdentical(absl::Span<const float> got,
                                               absl::Span<const float> want) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure()
           << "size mismatch: " << got.size() << " vs " << want.size();
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) {
      size_t count = 0;
      for (size_t j = i; j < got.size(); ++j) {
        count += std::memcmp(&got[j], &want[j], sizeof(float)) != 0;
      }
      return ::testing::AssertionFailure()
             << count << " of " << got.size() << " floats differ; first at index " << i << ": "
             << got[i] << " vs " << want[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// A float that kernels never produce, for detecting writes outside an output.
inline float SentinelFloat() {
  const uint32_t bits = 0x7fc0dead;  // a quiet NaN with a recognisable payload
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

}  // namespace xlstm::testing

#endif  // XLSTM_TESTS_CUDA_CUDA_TEST_UTIL_H_
