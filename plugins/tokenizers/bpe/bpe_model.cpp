#include "bpe_model.h"

#include <algorithm>
#include <array>
#include <functional>
#include <mutex>
#include <unordered_set>

#include "cbtm/error.h"
#include "pretokenizer.h"

namespace cbtm::bpe {

// ---- cache of encoded pre-tokens ---------------------------------------------------------
// Sharded by hash so that concurrent encoders rarely contend; a full shard is cleared.
struct BpeModel::Cache {
  static constexpr size_t kShards = 64;
  static constexpr size_t kMaxEntriesPerShard = 4096;
  static constexpr size_t kMaxWordBytes = 64;  ///< longer pre-tokens are not cached
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>> map;
  };
  std::array<Shard, kShards> shards;
};

BpeModel::BpeModel() : BpeModel(std::vector<Merge>{}) {}

BpeModel::BpeModel(std::vector<Merge> merges) : merges_(std::move(merges)) {
  pieces_.assign(kNumSpecials, std::string());
  for (int b = 0; b < 256; ++b) pieces_.emplace_back(1, static_cast<char>(b));
  std::unordered_set<std::string> seen(pieces_.begin() + kNumSpecials, pieces_.end());
  rank_.reserve(merges_.size() * 2);
  for (size_t i = 0; i < merges_.size(); ++i) {
    const auto [a, b] = merges_[i];
    const int32_t defined = kFirstMergeId + static_cast<int32_t>(i);
    for (int32_t id : {a, b})
      if (id < kFirstByteId || id >= defined)
        throw Error("bpe merge " + std::to_string(i) + " (" + std::to_string(a) + ", " +
                    std::to_string(b) + "): id " + std::to_string(id) +
                    " is not a byte or an earlier merge (valid: " +
                    std::to_string(kFirstByteId) + ".." + std::to_string(defined - 1) + ")");
    std::string piece = pieces_[a] + pieces_[b];
    if (!seen.insert(piece).second)
      throw Error("bpe merge " + std::to_string(i) + " (" + std::to_string(a) + ", " +
                  std::to_string(b) + ") makes a piece that already exists");
    pieces_.push_back(std::move(piece));
    rank_.emplace(pair_key(a, b), static_cast<int32_t>(i));
  }
  cache_ = std::make_unique<Cache>();
}

BpeModel::~BpeModel() = default;
BpeModel::BpeModel(BpeModel&&) noexcept = default;
BpeModel& BpeModel::operator=(BpeModel&&) noexcept = default;

const std::string& BpeModel::piece(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    throw Error("bpe tokenizer: token id " + std::to_string(id) + " out of range [0, " +
                std::to_string(vocab_size()) + ")");
  return pieces_[static_cast<size_t>(id)];
}

// ---- encoding one pre-token ----------------------------------------------------------------
// Symbols form a linked list over byte positions; candidate pairs wait in a min-heap keyed by
// (rank, position). Merges only create pairs of higher rank than their own, so popping by
// (rank, position) applies the merges in rank order, left to right: O(n log n) per word.
void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  const int32_t n = static_cast<int32_t>(word.size());
  if (n == 0) return;
  if (n == 1 || rank_.empty()) {
    for (unsigned char c : word) out.push_back(kFirstByteId + c);
    return;
  }
  struct Candidate {
    int32_t rank, pos, left, right;  // left/right: the ids the pair had when pushed
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  thread_local std::vector<int32_t> id, next, prev;
  thread_local std::vector<Candidate> heap;
  id.resize(n);
  next.resize(n);
  prev.resize(n);
  for (int32_t i = 0; i < n; ++i) {
    id[i] = kFirstByteId + static_cast<unsigned char>(word[i]);
    next[i] = i + 1;  // n = end
    prev[i] = i - 1;
  }
  heap.clear();
  const std::greater<Candidate> later;  // heap order: smallest (rank, pos) on top
  auto push = [&](int32_t pos) {
    const int32_t r = next[pos];
    if (r >= n) return;
    auto it = rank_.find(pair_key(id[pos], id[r]));
    if (it == rank_.end()) return;
    heap.push_back({it->second, pos, id[pos], id[r]});
    std::push_heap(heap.begin(), heap.end(), later);
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Candidate c = heap.back();
    heap.pop_back();
    const int32_t r = next[c.pos];
    if (id[c.pos] != c.left || r >= n || id[r] != c.right) continue;  // stale
    id[c.pos] = kFirstMergeId + c.rank;
    id[r] = -1;
    next[c.pos] = next[r];
    if (next[r] < n) prev[next[r]] = c.pos;
    if (prev[c.pos] >= 0) push(prev[c.pos]);
    push(c.pos);
  }
  for (int32_t i = 0; i < n; i = next[i]) out.push_back(id[i]);
}

void BpeModel::encode_word_cached(std::string_view word, std::vector<int32_t>& out) const {
  if (word.size() == 1 || word.size() > Cache::kMaxWordBytes) {
    encode_word(word, out);
    return;
  }
  const size_t h = std::hash<std::string_view>()(word);
  Cache::Shard& shard = cache_->shards[h % Cache::kShards];
  std::string key(word);
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.map.find(key);
    if (it != shard.map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t begin = out.size();
  encode_word(word, out);
  std::vector<int32_t> ids(out.begin() + static_cast<std::ptrdiff_t>(begin), out.end());
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.map.size() >= Cache::kMaxEntriesPerShard) shard.map.clear();
  shard.map.emplace(std::move(key), std::move(ids));
}

void BpeModel::encode(std::string_view text, std::vector<int32_t>& out) const {
  thread_local std::vector<std::string_view> words;
  words.clear();
  pretokenize(text, words);
  for (std::string_view w : words) encode_word_cached(w, out);
}

}  // namespace cbtm::bpe
