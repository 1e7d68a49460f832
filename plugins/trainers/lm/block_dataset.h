#pragma once
/// \file block_dataset.h
/// The training stream of the "lm" trainer: every document of the token-shard directories,
/// each preceded by the beginning-of-document token, concatenated in a seeded order and cut
/// into fixed blocks of seq_len+1 tokens that overlap by one token:
///
///   stream  = [bos d1...] [bos d2...] ...        (document order: shuffle(seed))
///             ([bos d1... eos] ... when the tokenizer's end-of-document token is another one,
///             so that the model learns to end documents as the evaluation scores it)
///   block i = stream[i*seq_len, i*seq_len + seq_len]  (inputs = block[:-1], targets = block[1:])
///
/// so every stream position after the first is a target exactly once per epoch. The tail
/// that does not fill a whole block is dropped. EpochOrder maps the running sample index to
/// a block: epoch e visits the blocks in permutation(seed, e).
#include <cstdint>
#include <string>
#include <vector>

namespace cbtm::lm {

class BlockDataset {
 public:
  /// Reads every shard of `dirs` (list_token_shards order, dirs in the given order), shuffles
  /// the documents with `seed`, and packs them. Error naming the dirs when there are fewer
  /// than seq_len+1 tokens in the stream.
  static BlockDataset load(const std::vector<std::string>& dirs, int32_t bos_id, int64_t seq_len,
                           uint64_t seed, int32_t eos_id = -1);
  /// A dataset over an already packed stream (stream.size() >= seq_len+1).
  BlockDataset(std::vector<int32_t> stream, int64_t seq_len);

  int64_t seq_len() const { return seq_len_; }
  int64_t blocks() const { return blocks_; }
  int64_t documents() const { return documents_; }
  const std::vector<int32_t>& stream() const { return stream_; }
  /// Copies block i (seq_len+1 tokens) to `out`.
  void copy_block(int64_t i, int64_t* out) const;

  /// A cheap identity of the data a job reads: a hash of each directory's position and its
  /// shard file names and sizes (not of the paths, so a moved directory still matches).
  static std::string fingerprint(const std::vector<std::string>& dirs);

 private:
  std::vector<int32_t> stream_;
  int64_t seq_len_ = 0;
  int64_t blocks_ = 0;
  int64_t documents_ = 0;
};

/// A uniformly random permutation of 0..n-1 determined by (seed, stream) alone
/// (Fisher-Yates driven by splitmix64; identical on every platform).
std::vector<int64_t> permutation(int64_t n, uint64_t seed, uint64_t stream);

/// Sample index -> block: sample g lies in epoch g / blocks and takes block
/// permutation(blocks, seed, epoch)[g % blocks]. Caches the current epoch's permutation.
class EpochOrder {
 public:
  EpochOrder(int64_t blocks, uint64_t seed) : blocks_(blocks), seed_(seed) {}
  int64_t block(int64_t sample);

 private:
  int64_t blocks_;
  uint64_t seed_;
  int64_t epoch_ = -1;
  std::vector<int64_t> perm_;
};

}  // namespace cbtm::lm
