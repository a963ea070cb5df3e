#include "engine/weights/dtype.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"

namespace xlstm::engine {
namespace {

TEST(DTypeTest, NamesAndSizes) {
  EXPECT_EQ(ParseDType("BF16"), DType::kBF16);
  EXPECT_EQ(DTypeSize(DType::kF64), 8u);
  EXPECT_EQ(DTypeName(DType::kF8E4M3), "F8_E4M3");
  EXPECT_FALSE(ParseDType("bf16").has_value());  // safetensors names are upper case
}

TEST(DTypeTest, HalfFormatsDecodeIeeeBitPatterns) {
  EXPECT_EQ(BF16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(BF16ToFloat(0xc000), -2.0f);
  EXPECT_EQ(F16ToFloat(0x3c00), 1.0f);
  EXPECT_EQ(F16ToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(F16ToFloat(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_TRUE(std::isinf(F16ToFloat(0x7c00)));
  EXPECT_TRUE(std::isnan(F16ToFloat(0x7e00)));
}

TEST(DTypeTest, EveryHalfValueRoundTrips) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const float f16 = F16ToFloat(static_cast<uint16_t>(bits));
    const float bf16 = BF16ToFloat(static_cast<uint16_t>(bits));
    if (!std::isnan(f16)) {
      ASSERT_EQ(FloatToF16(f16), bits) << bits;
    }
    if (!std::isnan(bf16)) {
      ASSERT_EQ(FloatToBF16(bf16), bits) << bits;
    }
  }
}

TEST(DTypeTest, RoundsToNearestEven) {
  // 1 + 2^-8 lies halfway between two bf16 values; even mantissa (1.0) wins.
  EXPECT_EQ(FloatToBF16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(FloatToBF16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(FloatToF16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(FloatToF16(70000.0f), 0x7c00);  // overflow to inf
}

}  // namespace
}  // namespace xlstm::engine
