#include "block_dataset.h"

#include <cstdio>
#include <filesystem>
#include <utility>

#include "cbtm/error.h"
#include "cbtm/token_shard.h"
#include "seed_mix.h"

namespace fs = std::filesystem;

namespace cbtm::lm {
namespace {

// Uniform in [0, n) without modulo bias.
uint64_t bounded(uint64_t& state, uint64_t n) {
  const uint64_t threshold = (0 - n) % n;
  for (;;) {
    const uint64_t r = splitmix64(state);
    if (r >= threshold) return r % n;
  }
}

// The permutation stream that orders documents (epochs use their index).
constexpr uint64_t kDocumentStream = ~0ull;

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

std::vector<int64_t> permutation(int64_t n, uint64_t seed, uint64_t stream) {
  uint64_t state = derive_seed(seed, stream);
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(bounded(state, static_cast<uint64_t>(i) + 1));
    std::swap(p[i], p[j]);
  }
  return p;
}

int64_t EpochOrder::block(int64_t sample) {
  const int64_t epoch = sample / blocks_;
  if (epoch != epoch_) {
    perm_ = permutation(blocks_, seed_, static_cast<uint64_t>(epoch));
    epoch_ = epoch;
  }
  return perm_[sample % blocks_];
}

BlockDataset::BlockDataset(std::vector<int32_t> stream, int64_t seq_len)
    : stream_(std::move(stream)), seq_len_(seq_len) {
  if (seq_len_ < 1) throw Error("block length must be positive");
  const auto n = static_cast<int64_t>(stream_.size());
  blocks_ = n > seq_len_ ? (n - 1) / seq_len_ : 0;
  if (blocks_ == 0)
    throw Error("token stream has " + std::to_string(n) + " tokens; one block needs " +
                std::to_string(seq_len_ + 1));
}

BlockDataset BlockDataset::load(const std::vector<std::string>& dirs, int32_t bos_id,
                                int64_t seq_len, uint64_t seed, int32_t eos_id) {
  const bool own_eos = eos_id >= 0 && eos_id != bos_id;  // else the next bos ends a document
  if (dirs.empty()) throw Error("training job has no token data directories");
  std::vector<TokenShard> shards;
  struct DocRef {
    uint32_t shard;
    int64_t doc;
  };
  std::vector<DocRef> docs;
  size_t total = 0;
  for (const auto& dir : dirs) {
    for (const auto& path : list_token_shards(dir)) {
      shards.push_back(read_token_shard(path));
      const TokenShard& s = shards.back();
      for (int64_t d = 0; d < s.docs(); ++d) {
        if (s.offsets[d + 1] == s.offsets[d]) continue;  // an empty document adds nothing
        docs.push_back({static_cast<uint32_t>(shards.size() - 1), d});
        total += static_cast<size_t>(s.offsets[d + 1] - s.offsets[d]) + 1 + (own_eos ? 1 : 0);
      }
    }
  }
  if (static_cast<int64_t>(total) < seq_len + 1)
    throw Error("token data in " + join(dirs) + " holds " + std::to_string(docs.size()) +
                " non-empty documents, " + std::to_string(total) +
                " tokens with separators; one training block needs seq_len+1 = " +
                std::to_string(seq_len + 1));
  std::vector<int32_t> stream;
  stream.reserve(total);
  for (int64_t i : permutation(static_cast<int64_t>(docs.size()), seed, kDocumentStream)) {
    const TokenShard& s = shards[docs[i].shard];
    stream.push_back(bos_id);
    stream.insert(stream.end(), s.tokens.begin() + s.offsets[docs[i].doc],
                  s.tokens.begin() + s.offsets[docs[i].doc + 1]);
    if (own_eos) stream.push_back(eos_id);
  }
  BlockDataset out(std::move(stream), seq_len);
  out.documents_ = static_cast<int64_t>(docs.size());
  return out;
}

void BlockDataset::copy_block(int64_t i, int64_t* out) const {
  const int32_t* src = stream_.data() + i * seq_len_;
  for (int64_t t = 0; t <= seq_len_; ++t) out[t] = src[t];
}

std::string BlockDataset::fingerprint(const std::vector<std::string>& dirs) {
  uint64_t h = fnv1a("");
  auto feed = [&h](const std::string& s) { h = fnv1a("\xff", fnv1a(s, h)); };
  for (size_t d = 0; d < dirs.size(); ++d) {
    feed("dir " + std::to_string(d));
    for (const auto& path : list_token_shards(dirs[d]))
      feed(fs::path(path).filename().string() + " " + std::to_string(fs::file_size(path)));
  }
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace cbtm::lm
