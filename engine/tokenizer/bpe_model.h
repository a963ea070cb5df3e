// The BPE model of tokenizer.json ("model": {"type": "BPE", ...}) for byte-level tokenizers:
// vocabulary, ranked merges, and the per-word merge loop, with a bounded cache of the ids of
// words already seen.
//
// Words arrive as raw bytes (after the ByteLevel pre-tokenizer split); the model maps each byte
// to its vocabulary symbol through the GPT-2 byte map itself, so no mapped string is built.
//
// Thread-safety: immutable after FromJson except for the word cache, which is internally
// synchronized (sharded mutexes); TokenizeWord may be called from many threads at once.
#ifndef XLSTM_ENGINE_TOKENIZER_BPE_MODEL_H_
#define XLSTM_ENGINE_TOKENIZER_BPE_MODEL_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json_fwd.hpp"

namespace xlstm::tokenizer {

class BpeModel {
 public:
  // Parses the "model" object of tokenizer.json. Supported: type "BPE" with dropout null/0,
  // no continuing_subword_prefix / end_of_word_suffix, byte_fallback false; unk_token,
  // fuse_unk and ignore_merges are honoured. Merges may be "a b" strings or ["a", "b"] pairs.
  static absl::StatusOr<std::unique_ptr<BpeModel>> FromJson(const nlohmann::json& model);

  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // Appends the ids of one pre-tokenized word (raw bytes, non-empty) to `ids`.
  void TokenizeWord(std::string_view word, std::vector<int32_t>* ids) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;
  // The vocabulary string of `id`, or nullptr when the vocabulary has no such id.
  const std::string* IdToToken(int32_t id) const;
  // One more than the largest id in the vocabulary.
  int32_t id_limit() const { return static_cast<int32_t>(id_to_token_.size()); }
  size_t vocab_size() const { return vocab_.size(); }
  size_t num_merges() const { return merges_.size(); }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t PairKey(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }

  // Words of at most this many bytes are cached; the cache stops growing at kCacheCapacity.
  static constexpr size_t kMaxCachedWordBytes = 128;
  static constexpr size_t kCacheShards = 16;
  static constexpr size_t kCacheCapacityPerShard = 8192;
  struct CacheShard {
    mutable absl::Mutex mu;
    absl::flat_hash_map<std::string, std::vector<int32_t>> words;  // Guarded by mu.
  };

  BpeModel() = default;
  void MergeWord(std::string_view word, std::vector<int32_t>* ids) const;

  absl::flat_hash_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;  // Indexed by id; see has_id_.
  std::vector<bool> has_id_;
  absl::flat_hash_map<uint64_t, Merge> merges_;
  std::array<int32_t, 256> byte_ids_{};  // Vocabulary id of each byte's symbol, or -1.
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  mutable std::array<CacheShard, kCacheShards> cache_;
};

}  // namespace xlstm::tokenizer

#endif  // XLSTM_ENGINE_TOKENIZER_BPE_MODEL_H_
