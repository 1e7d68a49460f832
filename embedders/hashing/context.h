#pragma once
/// \file context.h
/// Incremental hashing embedding of a growing text, for routing token by token.
///
/// Keeps the signed count of every bucket the completed words touched (O(1) per word) and
/// the WordStream state (an unfinished trailing word, an incomplete UTF-8 character, an
/// undecided final sigma; so a word split across appends is counted once, whole).
/// current() adds the words a copy of the stream would still produce, recomputes the
/// embedding from the counts (in bucket order, as embed() does), and takes the tail words
/// back out: after append(p1) ... append(pn), current() equals embed({p1 + ... + pn}) up to
/// float rounding, at a cost of O(touched buckets x dims) and no re-tokenization.
///
/// \code
///   auto ctx = embedder.context();
///   ctx->append("The ker");  ctx->append("nel ");
///   std::vector<float> v(embedder.dim());
///   ctx->current(v.data());   // == embedder.embed({"The kernel "}).row(0)
/// \endcode
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cbtm/embedder.h"
#include "word_stream.h"

namespace cbtm::hashing {

class HashingEmbedder;

class HashingContext : public ContextEmbedder {
 public:
  /// `embedder` must be fitted and must outlive the context.
  explicit HashingContext(const HashingEmbedder& embedder);
  void append(std::string_view bytes) override;
  void current(float* out) override;

 private:
  /// Adds `delta` times each term of `words_` to counts_ (delta = +1 or -1).
  void count_words(int delta);

  const HashingEmbedder& e_;
  tfidf::WordStream stream_;
  std::unordered_map<int32_t, int32_t> counts_;      // bucket -> signed count
  std::vector<std::string> words_;                   // scratch
  std::vector<uint64_t> keys_;                       // scratch
  std::vector<std::pair<int32_t, int32_t>> sorted_;  // scratch of current()
  std::vector<double> sum_;                          // scratch of current()
};

}  // namespace cbtm::hashing
