#include "engine/tokenizer/bpe_model.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "engine/tokenizer/absl_compat.h"
#include "engine/tokenizer/byte_level.h"
#include "nlohmann/json.hpp"

namespace xlstm::tokenizer {
namespace {

using json = nlohmann::json;

absl::Status ModelError(std::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("\"model\": ", ToAbsl(message)));
}

// A queued merge candidate: the pair starting at symbol `pos`. Ordered by (rank, pos), lowest
// first, like HF's BinaryHeap<Merge>.
struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
};
struct CandidateAfter {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  bool alive;
};

}  // namespace

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::FromJson(const json& model) {
  if (!model.is_object()) return ModelError("must be an object");
  const std::string type =
      model.contains("type") && model["type"].is_string() ? model["type"].get<std::string>() : "";
  if (type != "BPE") {
    return ModelError(absl::StrCat("unsupported model type \"", type.empty() ? "(missing)" : type,
                                   "\" (supported: BPE)"));
  }
  auto is_unset = [&](const char* key) {
    return !model.contains(key) || model[key].is_null() ||
           (model[key].is_string() && model[key].get<std::string>().empty());
  };
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      !(model["dropout"].is_number() && model["dropout"].get<double>() == 0.0)) {
    return ModelError("BPE dropout is not supported (encoding would not be deterministic)");
  }
  if (!is_unset("continuing_subword_prefix")) {
    return ModelError("continuing_subword_prefix is not supported");
  }
  if (!is_unset("end_of_word_suffix")) return ModelError("end_of_word_suffix is not supported");
  if (model.contains("byte_fallback") && model["byte_fallback"].is_boolean() &&
      model["byte_fallback"].get<bool>()) {
    return ModelError("byte_fallback is not supported");
  }

  std::unique_ptr<BpeModel> bpe(new BpeModel());
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    return ModelError("\"vocab\" must be an object of token -> id");
  }
  const json& vocab = model["vocab"];
  bpe->vocab_.reserve(vocab.size());
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > (int64_t{1} << 30)) {
      return ModelError(absl::StrCat("vocab entry \"", it.key(), "\" has an invalid id"));
    }
    const auto id = static_cast<int32_t>(it.value().get<int64_t>());
    bpe->vocab_[it.key()] = id;
    max_id = std::max(max_id, id);
  }
  bpe->id_to_token_.resize(static_cast<size_t>(max_id + 1));
  bpe->has_id_.assign(static_cast<size_t>(max_id + 1), false);
  for (const auto& [token, id] : bpe->vocab_) {
    if (bpe->has_id_[id]) {
      return ModelError(absl::StrCat("vocab id ", id, " is used by two tokens (\"",
                                     bpe->id_to_token_[id], "\" and \"", token, "\")"));
    }
    bpe->id_to_token_[id] = token;
    bpe->has_id_[id] = true;
  }

  if (!model.contains("merges") || !model["merges"].is_array()) {
    return ModelError("\"merges\" must be an array");
  }
  const json& merges = model["merges"];
  bpe->merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const json& merge = merges[rank];
    std::string left, right;
    if (merge.is_string()) {
      const std::string& line = merge.get_ref<const std::string&>();
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
        return ModelError(absl::StrCat("merge ", rank, " \"", line,
                                       "\" is not two tokens separated by one space"));
      }
      left = line.substr(0, space);
      right = line.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      left = merge[0].get<std::string>();
      right = merge[1].get<std::string>();
    } else {
      return ModelError(absl::StrCat("merge ", rank, " must be \"a b\" or [\"a\", \"b\"]"));
    }
    auto find = [&](const std::string& token) -> std::optional<int32_t> {
      auto it = bpe->vocab_.find(token);
      if (it == bpe->vocab_.end()) return std::nullopt;
      return it->second;
    };
    const std::optional<int32_t> left_id = find(left), right_id = find(right),
                                 new_id = find(left + right);
    if (!left_id || !right_id || !new_id) {
      const std::string& missing = !left_id ? left : !right_id ? right : left + right;
      return ModelError(absl::StrCat("merge ", rank, " (\"", left, "\", \"", right, "\"): token \"",
                                     missing, "\" is not in the vocab"));
    }
    // Like HF (collecting into a map), a later duplicate of a pair overrides the earlier one.
    bpe->merges_[PairKey(*left_id, *right_id)] = Merge{static_cast<int32_t>(rank), *new_id};
  }

  if (!is_unset("unk_token")) {
    if (!model["unk_token"].is_string()) return ModelError("\"unk_token\" must be a string");
    auto unk = bpe->TokenToId(model["unk_token"].get<std::string>());
    if (!unk) return ModelError("\"unk_token\" is not in the vocab");
    bpe->unk_id_ = *unk;
  }
  if (model.contains("fuse_unk") && model["fuse_unk"].is_boolean()) {
    bpe->fuse_unk_ = model["fuse_unk"].get<bool>();
  }
  if (model.contains("ignore_merges") && model["ignore_merges"].is_boolean()) {
    bpe->ignore_merges_ = model["ignore_merges"].get<bool>();
  }
  const std::array<std::string, 256>& byte_chars = ByteToUnicode();
  for (int b = 0; b < 256; ++b) {
    bpe->byte_ids_[b] = bpe->TokenToId(byte_chars[b]).value_or(-1);
  }
  return bpe;
}

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  auto it = vocab_.find(ToAbsl(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || id >= id_limit() || !has_id_[id]) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::TokenizeWord(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.size() == 1) {  // Single bytes never need merging or caching.
    const int32_t id = byte_ids_[static_cast<uint8_t>(word[0])];
    if (id >= 0) {
      ids->push_back(id);
    } else if (unk_id_) {
      ids->push_back(*unk_id_);
    }
    return;
  }
  if (word.size() > kMaxCachedWordBytes) {
    MergeWord(word, ids);
    return;
  }
  const size_t hash = absl::Hash<absl::string_view>()(ToAbsl(word));
  CacheShard& shard = cache_[hash % kCacheShards];
  {
    absl::ReaderMutexLock lock(&shard.mu);
    auto it = shard.words.find(ToAbsl(word));
    if (it != shard.words.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = ids->size();
  MergeWord(word, ids);
  absl::MutexLock lock(&shard.mu);
  if (shard.words.size() < kCacheCapacityPerShard) {
    shard.words.try_emplace(std::string(word), ids->begin() + first, ids->end());
  }
}

void BpeModel::MergeWord(std::string_view word, std::vector<int32_t>* ids) const {
  if (ignore_merges_) {
    std::string mapped;
    for (const char c : word) mapped += ByteToUnicode()[static_cast<uint8_t>(c)];
    if (std::optional<int32_t> id = TokenToId(mapped)) {
      ids->push_back(*id);
      return;
    }
  }
  // Scratch space reused across calls on this thread.
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> queue;
  symbols.clear();
  queue.clear();

  // Initial symbols: one per byte (HF: one per character of the byte-mapped word). Bytes
  // missing from the vocabulary become unk (fused if fuse_unk) or are dropped, as in HF.
  bool last_was_unk = false;
  for (const char c : word) {
    const int32_t id = byte_ids_[static_cast<uint8_t>(c)];
    if (id < 0) {
      if (!unk_id_) continue;
      if (fuse_unk_ && last_was_unk) continue;
      last_was_unk = true;
      symbols.push_back(Symbol{*unk_id_, 0, 0, true});
      continue;
    }
    last_was_unk = false;
    symbols.push_back(Symbol{id, 0, 0, true});
  }
  const auto n = static_cast<int32_t>(symbols.size());
  for (int32_t i = 0; i < n; ++i) {
    symbols[i].prev = i - 1;
    symbols[i].next = i + 1 < n ? i + 1 : -1;
  }
  auto find_merge = [&](int32_t left, int32_t right) -> const Merge* {
    auto it = merges_.find(PairKey(left, right));
    return it == merges_.end() ? nullptr : &it->second;
  };
  for (int32_t i = 0; i + 1 < n; ++i) {
    if (const Merge* m = find_merge(symbols[i].id, symbols[i + 1].id)) {
      queue.push_back(Candidate{m->rank, i, m->new_id});
    }
  }
  std::make_heap(queue.begin(), queue.end(), CandidateAfter());
  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), CandidateAfter());
    const Candidate top = queue.back();
    queue.pop_back();
    Symbol& current = symbols[top.pos];
    if (!current.alive || current.next < 0) continue;
    Symbol& right = symbols[current.next];
    // Skip stale candidates: the pair at `pos` must still merge into the same token.
    const Merge* m = find_merge(current.id, right.id);
    if (m == nullptr || m->new_id != top.new_id) continue;
    current.id = top.new_id;
    right.alive = false;
    current.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (current.prev >= 0) {
      if (const Merge* pm = find_merge(symbols[current.prev].id, current.id)) {
        queue.push_back(Candidate{pm->rank, current.prev, pm->new_id});
        std::push_heap(queue.begin(), queue.end(), CandidateAfter());
      }
    }
    if (current.next >= 0) {
      if (const Merge* nm = find_merge(current.id, symbols[current.next].id)) {
        queue.push_back(Candidate{nm->rank, top.pos, nm->new_id});
        std::push_heap(queue.begin(), queue.end(), CandidateAfter());
      }
    }
  }
  for (int32_t i = 0; i >= 0 && i < n; i = symbols[i].next) ids->push_back(symbols[i].id);
}

}  // namespace xlstm::tokenizer
