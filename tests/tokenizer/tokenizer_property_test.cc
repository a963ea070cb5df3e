// Properties over seeded random input: streaming deltas concatenate to Decode(ids) and never
// contain a broken character; Decode(Encode(s)) == NFC(s); concurrent use gives the same ids.
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/tokenizer/incremental_decoder.h"
#include "engine/tokenizer/normalizer.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/utf8.h"
#include "gtest/gtest.h"
#include "tests/tokenizer/reference_fixture.h"

namespace xlstm::tokenizer {
namespace {

using testing::NeoX;
using testing::Printable;
using testing::ReferenceTokenizer;

// Random valid UTF-8: code points drawn from a spread of scripts, combining marks, whitespace,
// emoji (with modifiers and ZWJ) and runs of spaces; optionally with special tokens inserted.
std::string RandomText(std::mt19937& rng, bool with_special_tokens) {
  static const std::vector<std::pair<char32_t, char32_t>> kRanges = {
      {0x20, 0x7E},     {0x20, 0x7E},       {0x09, 0x0D},       {0xA0, 0x24F},
      {0x300, 0x36F},   {0x370, 0x3FF},     {0x400, 0x4FF},     {0x5D0, 0x5EA},
      {0x620, 0x64A},   {0x900, 0x97F},     {0x1100, 0x11FF},   {0x2000, 0x206F},
      {0x3000, 0x30FF}, {0x4E00, 0x9FFF},   {0xAC00, 0xD7A3},   {0xE000, 0xE0FF},
      {0xFE00, 0xFE0F}, {0x1F300, 0x1F64F}, {0x1F3FB, 0x1F3FF}, {0x10000, 0x10FFFF}};
  std::string text;
  const int n = std::uniform_int_distribution<int>(0, 40)(rng);
  for (int i = 0; i < n; ++i) {
    const int kind = std::uniform_int_distribution<int>(0, 19)(rng);
    if (kind == 0) {
      text.append(std::uniform_int_distribution<int>(1, 30)(rng), ' ');
    } else if (kind == 1) {
      AppendUtf8(0x200D, &text);  // ZWJ
    } else if (kind == 2 && with_special_tokens) {
      text += std::uniform_int_distribution<int>(0, 1)(rng) ? "<|endoftext|>" : "<|unk|>";
    } else {
      const auto& [lo, hi] =
          kRanges[std::uniform_int_distribution<size_t>(0, kRanges.size() - 1)(rng)];
      char32_t cp = std::uniform_int_distribution<char32_t>(lo, hi)(rng);
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
      AppendUtf8(cp, &text);
    }
  }
  return text;
}

// Decodes `ids` one at a time; checks every delta is valid UTF-8 and returns their concatenation.
std::string Stream(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, bool skip) {
  IncrementalDecoder decoder(&tokenizer, skip);
  std::string streamed;
  for (const int32_t id : ids) {
    auto delta = decoder.Add(id);
    EXPECT_TRUE(delta.ok()) << delta.status();
    if (!delta.ok()) return streamed;
    EXPECT_FALSE(FindInvalidUtf8(*delta).has_value()) << Printable(*delta);
    EXPECT_LE(decoder.pending_bytes(), 3u);
    streamed += *delta;
  }
  const std::string tail = decoder.Finish();
  EXPECT_FALSE(FindInvalidUtf8(tail).has_value());
  EXPECT_EQ(decoder.pending_bytes(), 0u);
  return streamed + tail;
}

TEST(TokenizerPropertyTest, RoundTripIsNfc) {
  std::mt19937 rng(20240601);
  const Tokenizer& tokenizer = NeoX();
  for (int i = 0; i < 3000; ++i) {
    const std::string text = RandomText(rng, /*with_special_tokens=*/false);
    auto ids = tokenizer.Encode(text);
    ASSERT_TRUE(ids.ok()) << ids.status();
    auto decoded = tokenizer.Decode(*ids, /*skip_special_tokens=*/false);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, NormalizeNfc(text)) << "input " << Printable(text);
  }
}

TEST(TokenizerPropertyTest, StreamingEqualsDecodeForEncodedText) {
  std::mt19937 rng(7);
  for (const char* name : {"gpt-neox-20b", "neox-variant"}) {
    const Tokenizer& tokenizer = ReferenceTokenizer(name);
    for (int i = 0; i < 1500; ++i) {
      const std::string text = RandomText(rng, /*with_special_tokens=*/true);
      auto ids = tokenizer.Encode(text);
      ASSERT_TRUE(ids.ok()) << ids.status();
      for (const bool skip : {false, true}) {
        auto decoded = tokenizer.Decode(*ids, skip);
        ASSERT_TRUE(decoded.ok());
        EXPECT_EQ(Stream(tokenizer, *ids, skip), *decoded) << name << " " << Printable(text);
      }
    }
  }
}

// Arbitrary id sequences split characters anywhere (and form invalid byte sequences); streaming
// still equals Decode and never emits broken UTF-8.
TEST(TokenizerPropertyTest, StreamingEqualsDecodeForRandomIds) {
  std::mt19937 rng(99);
  const Tokenizer& tokenizer = NeoX();
  // Single-byte tokens are where characters get split: bias the draw toward ids 2..257.
  std::uniform_int_distribution<int32_t> any_id(0, tokenizer.vocab_size() - 1);
  std::uniform_int_distribution<int32_t> byte_id(2, 257);
  for (int i = 0; i < 3000; ++i) {
    std::vector<int32_t> ids(std::uniform_int_distribution<int>(0, 12)(rng));
    for (int32_t& id : ids)
      id = std::uniform_int_distribution<int>(0, 2)(rng) ? byte_id(rng) : any_id(rng);
    for (const bool skip : {false, true}) {
      auto decoded = tokenizer.Decode(ids, skip);
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      EXPECT_FALSE(FindInvalidUtf8(*decoded).has_value());
      EXPECT_EQ(Stream(tokenizer, ids, skip), *decoded);
    }
  }
}

TEST(TokenizerPropertyTest, ConcurrentEncodeMatchesSequential) {
  std::mt19937 rng(5);
  const Tokenizer& tokenizer = NeoX();
  std::vector<std::string> texts;
  for (int i = 0; i < 400; ++i) texts.push_back(RandomText(rng, true));
  std::vector<std::vector<int32_t>> expected;
  for (const std::string& text : texts) expected.push_back(*tokenizer.Encode(text));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 3; ++rep) {
        for (size_t i = t; i < texts.size() * 2; i += 3) {
          const size_t k = i % texts.size();
          auto ids = tokenizer.Encode(texts[k]);
          if (!ids.ok() || *ids != expected[k]) ++mismatches[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

TEST(TokenizerPropertyTest, LongInputsEncodeAndRoundTrip) {
  const Tokenizer& tokenizer = NeoX();
  // Long single words exercise the uncached merge path and the regex on long runs.
  for (const std::string& text :
       {std::string(100000, ' '), std::string(50000, 'a'), std::string(20000, '\n') + "x",
        std::string(30000, '9'), std::string(40000, '!')}) {
    auto ids = tokenizer.Encode(text);
    ASSERT_TRUE(ids.ok()) << ids.status();
    auto decoded = tokenizer.Decode(*ids, false);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, text);
  }
}

}  // namespace
}  // namespace xlstm::tokenizer
