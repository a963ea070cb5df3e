// xlstm-tokenizer-bench: encode throughput of the tokenizer on text files, single-threaded.
//
//   xlstm-tokenizer-bench TOKENIZER_JSON TEXT_FILE...
//
// For each file prints one JSON line: MB/s of the first Encode of the whole text on a freshly
// loaded tokenizer (cold word cache), the best of several repeats (warm cache), and of encoding
// the file line by line (many short calls, as a server sees prompts).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

// FNV-1a over the ids (as little-endian uint32), to compare with HF's ids without storing them.
uint64_t Checksum(const std::vector<int32_t>& ids) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (const int32_t id : ids) {
    for (int k = 0; k < 4; ++k) {
      hash ^= (static_cast<uint32_t>(id) >> (8 * k)) & 0xFF;
      hash *= 0x100000001b3ULL;
    }
  }
  return hash;
}

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TOKENIZER_JSON TEXT_FILE...\n", argv[0]);
    return 2;
  }
  for (int f = 2; f < argc; ++f) {
    std::ifstream in(argv[f], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "cannot open %s\n", argv[f]);
      return 1;
    }
    std::ostringstream contents;
    contents << in.rdbuf();
    const std::string text = contents.str();
    const double mb = static_cast<double>(text.size()) / 1e6;

    // A fresh tokenizer per file, so the first encode runs with an empty word cache.
    auto tokenizer = xlstm::tokenizer::Tokenizer::FromFile(argv[1]);
    if (!tokenizer.ok()) {
      std::fprintf(stderr, "%s\n", tokenizer.status().ToString().c_str());
      return 1;
    }
    auto start = Clock::now();
    auto ids = (*tokenizer)->Encode(text);
    const double cold = Seconds(start);
    if (!ids.ok()) {
      std::fprintf(stderr, "%s\n", ids.status().ToString().c_str());
      return 1;
    }
    double best = cold;
    for (int rep = 0; rep < 5; ++rep) {
      start = Clock::now();
      auto again = (*tokenizer)->Encode(text);
      best = std::min(best, Seconds(start));
      if (!again.ok() || again->size() != ids->size()) return 1;
    }
    std::vector<std::string_view> lines;
    for (size_t pos = 0; pos < text.size();) {
      size_t end = text.find('\n', pos);
      end = end == std::string::npos ? text.size() : end + 1;
      lines.emplace_back(text.data() + pos, end - pos);
      pos = end;
    }
    double best_lines = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
      start = Clock::now();
      size_t count = 0;
      for (std::string_view line : lines) count += (*tokenizer)->Encode(line)->size();
      best_lines = std::min(best_lines, Seconds(start));
      if (count == 0) return 1;
    }
    std::printf(
        "{\"impl\": \"xlstm\", \"file\": \"%s\", \"bytes\": %zu, \"tokens\": %zu, \"checksum\": "
        "\"%016llx\", "
        "\"cold_mb_s\": %.2f, \"warm_mb_s\": %.2f, \"lines_mb_s\": %.2f}\n",
        argv[f], text.size(), ids->size(), static_cast<unsigned long long>(Checksum(*ids)),
        mb / cold, mb / best, mb / best_lines);
  }
  return 0;
}
