#pragma once
/// \file bpe_model.h
/// A byte-level BPE vocabulary and its encoder.
///
/// Ids 0..3 are the specials `<s>`, `<pad>`, `</s>`, `<unk>` (piece ""), ids 4..259 the 256
/// single bytes, and id 260+i the token made by merge i. Every piece is a distinct byte
/// string. Encoding pre-tokenises (pretokenizer.h), then applies the merges inside each
/// pre-token lowest rank first (left to right among equal ranks), exactly as if every merge
/// were applied to the pre-token in order.
///
/// \code
///   BpeModel m({{4 + 'a', 4 + 'b'}});          // one merge: "ab" = id 260
///   std::vector<int32_t> ids;
///   m.encode("abc ab", ids);  // pre-tokens "abc", " ab": {260, 4 + 'c', 4 + ' ', 260}
/// \endcode
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace cbtm::bpe {

constexpr int32_t kNumSpecials = 4;     ///< <s>, <pad>, </s>, <unk>
constexpr int32_t kFirstByteId = 4;     ///< id of byte 0
constexpr int32_t kFirstMergeId = 260;  ///< id of the token made by merge 0

/// Merge i joins the tokens (first, second) into token kFirstMergeId + i.
using Merge = std::pair<int32_t, int32_t>;

/// Packs a pair of ids into one hash key.
inline uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

class BpeModel {
 public:
  /// No merges: every byte is its own token.
  BpeModel();
  /// Throws cbtm::Error naming the first bad merge: an id that is a special or not yet
  /// defined (>= kFirstMergeId + i for merge i), or a piece that already exists.
  explicit BpeModel(std::vector<Merge> merges);
  ~BpeModel();
  BpeModel(BpeModel&&) noexcept;
  BpeModel& operator=(BpeModel&&) noexcept;

  const std::vector<Merge>& merges() const { return merges_; }
  int32_t vocab_size() const { return static_cast<int32_t>(pieces_.size()); }
  /// Bytes of token `id` ("" for specials); Error if id is out of range.
  const std::string& piece(int32_t id) const;

  /// Appends the ids of `text` (pre-tokenised here). Thread-safe; frequent pre-tokens are
  /// served from a sharded, mutex-protected cache.
  void encode(std::string_view text, std::vector<int32_t>& out) const;
  /// Appends the ids of one pre-token (no cache).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

 private:
  struct Cache;
  void encode_word_cached(std::string_view word, std::vector<int32_t>& out) const;

  std::vector<Merge> merges_;
  std::vector<std::string> pieces_;
  std::unordered_map<uint64_t, int32_t> rank_;  ///< pair_key -> merge index
  std::unique_ptr<Cache> cache_;
};

}  // namespace cbtm::bpe
